"""`cyclesiam-train`: self-supervised cycle training from rosbags, videos and image folders.

    cyclesiam-train --config config/train.yaml --data PATH... --out RUN_DIR [--topic T ...]
                    [--seeds FILE | --seed-topic T] [--backbone-weights F | --init-from CHECKPOINT]
                    [--resume RUN_DIR]
                    [--set key=value ...] [--device D]

Each PATH is a rosbag2 folder (MCAP or SQLite3), a ROS 1 .bag, a video file or an image folder.
Without --topic every image topic of every bag is used. Multi-process: `torchrun --nproc_per_node N
-m cyclesiam_train.cli ...` (or the `cyclesiam-train` script under torchrun).

--init-from starts from a tracker checkpoint (e.g. models/cyclesiam_default.safetensors) and takes
its model config. RUN_DIR/model.safetensors is rewritten at every checkpoint and when stopped, so a
stopped run always leaves a model `cyclesiam-track --checkpoint` loads.

Exit codes: 0 done, 2 bad input (message names the file/key), 128+N stopped by signal N
(checkpoint written; continue with --resume RUN_DIR).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from cyclesiam.checkpoint import CheckpointError
from cyclesiam_train.config import Config, ConfigError, from_dict, load_config, merge, parse_dotted
from cyclesiam.sources import SourceError
from cyclesiam_train.seeds import SeedError, apply_seed_flags
from cyclesiam_train.train_state import STATE_FILE, StateError, read_state


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cyclesiam-train", description="Self-supervised cycle training (CycleSiam).")
    p.add_argument("--config", help="training config YAML (merged over the defaults)")
    p.add_argument("--data", nargs="+", metavar="PATH", help="rosbag2 folders, ROS 1 .bag files, videos, image folders")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (checkpoint, metrics, plot, model.safetensors)")
    p.add_argument("--topic", action="append", default=[], metavar="T", help="image topic to use (repeatable)")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", metavar="FILE", help="seeds YAML (bag, topic, stamp|frame, box, mask)")
    seeds.add_argument("--seed-topic", metavar="T", help="recorded vision_msgs/Detection2DArray topic")
    init = p.add_mutually_exclusive_group()
    init.add_argument("--backbone-weights", metavar="F", help="ImageNet backbone weights (torchvision layout)")
    init.add_argument("--init-from", metavar="CHECKPOINT",
                      help="start from this tracker checkpoint's weights and model config (e.g. the shipped model)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="config overrides, e.g. train.steps=500 model.backbone=light")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs and metrics only)")
    return p


def cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config overrides the flags stand for (applied after --config and --set)."""
    out: dict[str, Any] = parse_dotted(args.set)
    train = out.setdefault("train", {})
    if args.topic:
        train["topics"] = list(args.topic)
    apply_seed_flags(train, args.seeds, args.seed_topic)
    if args.backbone_weights:
        train["backbone_weights"] = str(Path(args.backbone_weights).resolve())
    if args.device:
        out.setdefault("runtime", {})["device"] = args.device
    return out


def resolve_run(args: argparse.Namespace) -> tuple[Config, list[str], Path, bool]:
    """(config, data paths, run dir, resume?) from the arguments (and the checkpoint when resuming)."""
    overrides = cli_overrides(args)
    if args.resume:
        run_dir = Path(args.resume)
        if args.out and Path(args.out).resolve() != run_dir.resolve():
            raise ConfigError(f"--out {args.out} differs from --resume {args.resume}; a resumed run stays in its directory")
        _tensors, meta = read_state(run_dir / STATE_FILE)
        info = meta.get("info", {})
        cfg = merge(from_dict(Config, info.get("config", {})), overrides)
        if args.config:
            print("note: --config is ignored on --resume (the run's own config is used; change keys with --set)",
                  file=sys.stderr)
        data = list(args.data) if args.data else list(dict.fromkeys(d["path"] for d in info.get("data", [])))
        return cfg, data, run_dir, True
    if not args.data:
        raise ConfigError("--data PATH... is required (unless --resume RUN_DIR)")
    if not args.out:
        raise ConfigError("--out RUN_DIR is required (unless --resume RUN_DIR)")
    cfg = load_config(args.config, overrides)
    weights = cfg.train.backbone_weights
    if weights and not Path(weights).is_file():
        raise ConfigError(f"train.backbone_weights: file not found: {weights}")
    return cfg, list(args.data), Path(args.out), False


def init_checkpoint(args: argparse.Namespace) -> Path | None:
    """The --init-from checkpoint (checked to exist); not with --resume (the run's state has the weights)."""
    if not args.init_from:
        return None
    if args.resume:
        raise ConfigError("--init-from applies to a new run; --resume continues from the run's own checkpoint")
    path = Path(args.init_from)
    if not path.is_file():
        raise ConfigError(f"--init-from: checkpoint not found: {path}")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = "cyclesiam-train " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    from cyclesiam_train.data import DataError  # noqa: F401  (subclass of SourceError)
    from cyclesiam_train.trainer import train

    try:
        init_from = init_checkpoint(args)
        cfg, data, run_dir, resume = resolve_run(args)
        result = train(cfg, data, run_dir, resume=resume, command=command, progress=not args.no_progress,
                       init_from=init_from)
    except (ConfigError, SourceError, SeedError, StateError, CheckpointError, FileExistsError,
            FileNotFoundError) as exc:
        print(f"cyclesiam-train: error: {exc}", file=sys.stderr)
        return 2
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
