"""`cyclesiam-bench`: per-frame latency of the whole tracking path (crop, network, post-processing, mask).

For each {box only, box + mask} x target counts, a tracker is run over real 640x480 frames
(data/mbt_cube by default) on the chosen device, and ms/frame (mean, p50, p95) and fps are
printed as a table. The model is the shipped default unless --checkpoint names another;
`--checkpoint random` benchmarks untrained random-init networks of every --backbones entry.

    cyclesiam-bench [--checkpoint F|random] [--backbones mobilenet_v2 light] [--targets 1 4]
                    [--iterations 30] [--warmup 5] [--modes box mask] [--frames DIR]
                    [--config YAML] [--set key=value ...] [--device D] [--json out.json]
                    [--backends torch onnxruntime]   (default: runtime.backend)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from cyclesiam.config import Config, ConfigError, load_config, merge, parse_dotted
from cyclesiam.default_model import RANDOM_INIT, cli_checkpoint, describe_model
from cyclesiam.sources import SourceError, open_source
from cyclesiam.build import build_tracker
from cyclesiam.tracker import SiamTracker

DEFAULT_FRAMES = Path(os.environ.get("CYCLESIAM_DATA", Path(__file__).resolve().parents[2] / "data")) / "mbt_cube"
MODES = ("box", "mask")


@dataclass
class BenchRow:
    backend: str
    backbone: str
    mode: str
    targets: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    fps: float
    stages: dict[str, float]  # mean ms per tracker stage


def target_boxes(width: int, height: int, count: int) -> list[tuple[float, float, float, float]]:
    """`count` boxes spread over the image (a grid of cells, one centred box per cell)."""
    cols = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / cols))
    cw, ch = width / cols, height / rows
    boxes = []
    for n in range(count):
        r, c = divmod(n, cols)
        w, h = 0.35 * cw, 0.35 * ch
        boxes.append((c * cw + (cw - w) / 2, r * ch + (ch - h) / 2, w, h))
    return boxes


def bench_tracker(tracker: SiamTracker, frames: Sequence[np.ndarray], targets: int, iterations: int, warmup: int) -> tuple[np.ndarray, dict[str, float]]:
    """Per-frame wall-clock ms of `tracker.track` over `iterations` frames after `warmup`."""
    tracker.clear()
    height, width = frames[0].shape[:2]
    for box in target_boxes(width, height, targets):
        tracker.add_target(frames[0], box)
    times, stages = [], {}
    for n in range(warmup + iterations):
        frame = frames[1 + n % (len(frames) - 1)] if len(frames) > 1 else frames[0]
        t0 = time.perf_counter()
        tracker.track(frame)
        elapsed = (time.perf_counter() - t0) * 1000.0
        if n >= warmup:
            times.append(elapsed)
            for key, value in tracker.timing.items():
                stages[key] = stages.get(key, 0.0) + value / iterations
    return np.asarray(times), stages


def run(cfg: Config, backbones: Sequence[str], modes: Sequence[str], target_counts: Sequence[int],
        frames: Sequence[np.ndarray], iterations: int, warmup: int, checkpoint: str | Path | None,
        backends: Sequence[str] = ()) -> list[BenchRow]:
    """Rows for `checkpoint`'s model, or (checkpoint None) random-init models of each backbone."""
    rows = []
    for backend in backends or [cfg.runtime.backend]:
        rows += _run_backend(merge(cfg, {"runtime": {"backend": backend}}), backbones, modes, target_counts,
                             frames, iterations, warmup, checkpoint)
    return rows


def _run_backend(cfg: Config, backbones: Sequence[str], modes: Sequence[str], target_counts: Sequence[int],
                 frames: Sequence[np.ndarray], iterations: int, warmup: int, checkpoint: str | Path | None) -> list[BenchRow]:
    rows = []
    for backbone in backbones:
        bcfg = merge(cfg, {"model": {"backbone": backbone}}) if not checkpoint else cfg
        for mode in modes:
            mcfg = merge(bcfg, {"tracker": {"mask_enabled": mode == "mask"}})
            tracker = build_tracker(mcfg, checkpoint=checkpoint)
            if mode == "mask" and not tracker.backend.has_mask:
                print(f"cyclesiam-bench: {backbone}: model has no mask head; skipping box+mask", file=sys.stderr)
                continue
            for count in target_counts:
                times, stages = bench_tracker(tracker, frames, count, iterations, warmup)
                mean = float(times.mean())
                rows.append(BenchRow(
                    backend=tracker.backend.name, backbone=tracker.model_cfg.backbone, mode="box+mask" if mode == "mask" else "box",
                    targets=count, mean_ms=mean, p50_ms=float(np.percentile(times, 50)),
                    p95_ms=float(np.percentile(times, 95)), fps=1000.0 / mean, stages=stages,
                ))
                print(format_row(rows[-1]), file=sys.stderr, flush=True)
    return rows


HEADER = f"{'backbone':<14}{'mode':<10}{'targets':>8}{'mean ms':>10}{'p50 ms':>10}{'p95 ms':>10}{'fps':>8}  {'backend':<12} stages (mean ms)"


def format_row(r: BenchRow) -> str:
    stages = " ".join(f"{k}={v:.1f}" for k, v in r.stages.items() if k != "total")
    return f"{r.backbone:<14}{r.mode:<10}{r.targets:>8}{r.mean_ms:>10.1f}{r.p50_ms:>10.1f}{r.p95_ms:>10.1f}{r.fps:>8.1f}  {r.backend:<12} {stages}"


def load_frames(path: Path, count: int, size: tuple[int, int] = (640, 480)) -> list[np.ndarray]:
    import cv2

    source = open_source(path)
    frames = []
    for i in range(min(count, len(source))):
        frame = source.frame(i)
        if (frame.shape[1], frame.shape[0]) != size:
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
        frames.append(frame)
    source.close()
    return frames


def build_parser() -> argparse.ArgumentParser:
    from cyclesiam.models.backbone import BACKBONES

    p = argparse.ArgumentParser(prog="cyclesiam-bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--backbones", nargs="+", default=sorted(BACKBONES), choices=sorted(BACKBONES),
                   help=f"random-init networks to compare (only with --checkpoint {RANDOM_INIT})")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES, help="box = box only, mask = box + mask")
    p.add_argument("--targets", nargs="+", type=int, default=[1, 4])
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--frames", type=Path, default=DEFAULT_FRAMES, help="frames (folder/video/bag), resized to 640x480")
    p.add_argument("--checkpoint", help=f"model to benchmark (default: the shipped model); '{RANDOM_INIT}' = "
                                        "untrained random-init networks of every --backbones entry")
    p.add_argument("--config", help="YAML config merged over the defaults")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--backends", nargs="+", choices=("torch", "onnxruntime"),
                   help="network backends to compare (default: runtime.backend)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = default)")
    p.add_argument("--json", dest="json_path", help="also write the rows as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.iterations < 1 or any(t < 1 for t in args.targets):
        print("cyclesiam-bench: error: --iterations and --targets must be >= 1", file=sys.stderr)
        return 2
    try:
        overrides = parse_dotted(args.overrides)
        if args.device:
            overrides.setdefault("runtime", {})["device"] = args.device
        cfg = load_config(args.config, overrides)
        threads = args.threads or cfg.runtime.threads
        if threads:
            torch.set_num_threads(threads)
        checkpoint = cli_checkpoint(args.checkpoint)
        print(f"cyclesiam-bench: {describe_model(args.checkpoint, checkpoint)}", file=sys.stderr)
        frames = load_frames(args.frames, args.warmup + args.iterations + 1)
        print(f"device {cfg.runtime.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"{len(frames)} frames 640x480 from {args.frames}", file=sys.stderr)
        rows = run(cfg, [args.backbones[0]] if checkpoint else args.backbones, args.modes, args.targets,
                   frames, args.iterations, args.warmup, checkpoint, args.backends or ())
    except (SourceError, ConfigError, ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"cyclesiam-bench: error: {exc}", file=sys.stderr)
        return 2
    print(HEADER)
    for r in rows:
        print(format_row(r))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps([r.__dict__ for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
