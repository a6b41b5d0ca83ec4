"""`cyclesiam-export`: ONNX models of a checkpoint (template, track, mask) for ONNX Runtime / TensorRT.

    cyclesiam-export --checkpoint F [--out DIR] [--opset N] [--check] [--frames DIR]

Without --out the files go to the checkpoint's ONNX cache (what `runtime.backend:
onnxruntime` uses). Every file is BN-folded, has dynamic batch (targets) and search size,
passes `onnx.checker` (full check) and has no Conv with run-time weights. --check also
compares ONNX Runtime against torch on real crops (1 and 2 targets, search 255 and
tracker.lost_search_size) and fails (exit 1) beyond |diff| <= atol + rtol * max|torch|.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from cyclesiam.checkpoint import CheckpointError, load_model
from cyclesiam.config import Config, ConfigError, load_config, parse_dotted
from cyclesiam.runtime.onnx_cache import ensure_exported, file_sha256
from cyclesiam.runtime.onnx_check import CHECK_ATOL, CHECK_RTOL, CheckRow, check_on_frames
from cyclesiam.runtime.onnx_export import export_model
from cyclesiam.runtime.onnx_format import DEFAULT_OPSET, OnnxError, read_metadata

DEFAULT_FRAMES = Path(__file__).resolve().parents[2] / "data" / "mbt_cube"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cyclesiam-export", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="model checkpoint (.safetensors)")
    p.add_argument("--out", type=Path, help="output directory (default: the checkpoint's ONNX cache)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    p.add_argument("--check", action="store_true", help="compare ONNX Runtime with torch on real crops")
    p.add_argument("--frames", type=Path, default=DEFAULT_FRAMES, help="frames for --check (folder/video/bag)")
    p.add_argument("--config", help="YAML config (runtime.providers/threads, tracker.lost_search_size for --check)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return p


def export(args: argparse.Namespace, cfg: Config) -> dict[str, Path]:
    model, model_cfg, _ = load_model(args.checkpoint)
    if args.out is None:
        cached = ensure_exported(args.checkpoint, model, model_cfg, opset=args.opset)
        print(f"{'exported to' if cached.exported else 'cache hit:'} {cached.directory}", file=sys.stderr)
        return cached.paths
    return export_model(model, model_cfg, args.out, checkpoint_sha256=file_sha256(args.checkpoint), opset=args.opset)


def run_check(args: argparse.Namespace, cfg: Config, paths: dict[str, Path]) -> list[CheckRow]:
    from cyclesiam.cli.bench import load_frames

    model, model_cfg, _ = load_model(args.checkpoint)
    frames = load_frames(args.frames, 2)
    sizes = sorted({model_cfg.search_size, cfg.tracker.lost_search_size})
    return check_on_frames(model, model_cfg, paths, frames, (1, 2), sizes, cfg.runtime)


def format_check(rows: list[CheckRow]) -> str:
    keys = [k for k in rows[0].report if not k.endswith("_ref")]
    lines = [f"max |onnx - torch| (tolerance: {CHECK_ATOL:g} + {CHECK_RTOL:g} * max|torch|)",
             f"{'targets':>8}{'search':>8}" + "".join(f"{k:>22}" for k in keys) + "  ok"]
    for r in rows:
        cells = "".join(f"{r.report[k]:>10.2e} / {r.report[k + '_ref']:<9.3g}" for k in keys)
        lines.append(f"{r.targets:>8}{r.search_size:>8}{cells}  {'yes' if not r.failures else 'NO: ' + '; '.join(r.failures)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config, parse_dotted(args.overrides))
        paths = export(args, cfg)
        for part, path in paths.items():
            meta = read_metadata(path)
            print(f"{part:<9} {path}  ({path.stat().st_size / 1e6:.1f} MB, opset {meta.get('opset')}, "
                  f"checkpoint sha256 {meta.get('checkpoint_sha256', '')[:16]})")
        print("verified: onnx.checker full check; every Conv weight is an initializer (no run-time kernels)")
        if args.check:
            rows = run_check(args, cfg, paths)
            print(format_check(rows))
            if any(r.failures for r in rows):
                return 1
    except (CheckpointError, OnnxError, ConfigError, ValueError, OSError) as exc:
        print(f"cyclesiam-export: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
