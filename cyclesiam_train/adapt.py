"""`cyclesiam-adapt`: fine-tune a tracker model on your own unlabeled footage within a time budget.

    cyclesiam-adapt --data BAG_OR_VIDEO_OR_FOLDER... [--topic T] [--checkpoint BASE] --out RUN_DIR
                    [--minutes M] [--seed-topic T | --seeds FILE] [--no-progress] [--device D] [--threads N]
                    [--trips N] [--length L] [--blend W]
                    [--set key=value ...]

BASE (default: the shipped model) is trained further with the cycle loss (label-free random seed
boxes, or `train.seeds` from a file or a recorded detection topic such as the node's own
~/detections; frozen backbone) on the first 80 % of every recording; the last 20 % is held out
(seeds there are not trained on: the check's round trips start from them instead of random boxes).
The adapted model, RUN_DIR/adapted.safetensors, is the fine-tuned weights blended halfway back
towards BASE (`--blend`, cyclesiam_train/blend.py: that keeps most of the gain and gives back less
elsewhere). On the held-out part the label-free check (cyclesiam_train/label_free_check.py:
forward-backward round trips of many seed boxes) runs for BASE and for the adapted model over the
same trips, and RUN_DIR/model.safetensors becomes the adapted model only when the check calls it
better; until then, and otherwise, it is a copy of BASE. RUN_DIR/report.md says which and why;
RUN_DIR/before_after.png shows it; RUN_DIR/train/ is the training run (its model.safetensors is the
fine-tuned model before the blend, kept either way; `cyclesiam-train --resume RUN_DIR/train --set
train.steps=N` continues it).

The budget covers the whole command: training stops when the time left is what the base model's
check took (the adapted model's check takes as long). Exit codes: 0 done, 2 bad input,
128 + N stopped by signal N (RUN_DIR/model.safetensors is BASE; RUN_DIR/train has the partial model).

`adapt()` runs in any process, also one that has already tracked (data-loader workers start from a
forkserver, never forked from it: cyclesiam_train/loader_workers.py); a script calling it needs the
`if __name__ == "__main__":` guard that every non-fork start method needs.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from cyclesiam.checkpoint import CheckpointError, read_checkpoint, write_atomically
from cyclesiam_train.config import Config, ConfigError, merge, parse_dotted
from cyclesiam.default_model import resolve_checkpoint
from cyclesiam.runtime.threads import torch_threads
from cyclesiam.sources import SourceError
from cyclesiam_train import label_free_check as check
from cyclesiam_train.blend import blend_checkpoints
from cyclesiam_train.train_state import STATE_FILE
from cyclesiam_train.trainer import MODEL_FILE, head_frames, train

REPORT_FILE = "report.md"
ADAPTED_FILE = "adapted.safetensors"
# share of the fine-tuned weights in the adapted model (0.5 chosen on the real validation clips by a
# rule written before its run: docs/MODEL.md, 2026-12-03 21:47)
DEFAULT_BLEND = 0.5
FIGURE_FILE = "before_after.png"
TRAIN_DIR = "train"

# over the base model's own training recipe (its checkpoint provenance): fine-tuning, not training
ADAPT_RECIPE: dict[str, Any] = {
    "lr": 5.0e-4, "warmup_steps": 5, "batch_size": 8, "steps": 1_000_000, "checkpoint_every": 10,
    "log_every": 5, "plot_every": 0, "freeze_backbone_steps": -1, "backbone_weights": "", "clip_length": 0,
    "seeds": {"source": "random", "file": "", "topic": ""},
}


@dataclass
class AdaptResult:
    model: Path  # RUN_DIR/model.safetensors
    adapted: bool  # True: it is the adapted model; False: a copy of BASE
    verdict: check.Verdict | None  # None when training was stopped by a signal
    steps: int
    train_seconds: float
    exit_code: int
    extra: dict[str, Any] = field(default_factory=dict)


def adapt_config(base_provenance: dict[str, Any], overrides: dict[str, Any], device: str) -> Config:
    """The base's training recipe (when its provenance holds a usable one) with ADAPT_RECIPE and `overrides` on top."""
    recipe = base_provenance.get("config", {}) if isinstance(base_provenance, dict) else {}
    train = dict(recipe.get("train", {}))
    # recipes written before train.context_amount existed kept the crops' context under tracker
    train.setdefault("context_amount", recipe.get("tracker", {}).get("context_amount", 0.5))
    layers = [{"train": train}, {"train": ADAPT_RECIPE, "runtime": {"device": device}}, overrides]
    try:
        cfg = merge(Config(), layers[0])
    except ConfigError:  # the base was trained by another version: its recipe's keys differ
        cfg = Config()
    return merge(merge(cfg, layers[1]), layers[2])


def seconds_per_step(run_dir: Path) -> float:
    """Wall time per training step from the run's metrics (nan when fewer than two steps were logged)."""
    from cyclesiam_train.metrics_log import read_metrics

    records = [r for r in read_metrics(run_dir) if "time" in r] if (run_dir / "metrics.jsonl").is_file() else []
    if len(records) < 2 or records[-1]["step"] == records[0]["step"]:
        return float("nan")
    return (records[-1]["time"] - records[0]["time"]) / (records[-1]["step"] - records[0]["step"])


def copy_model(src: Path, dst: Path) -> Path:
    return write_atomically(dst, lambda tmp: shutil.copyfile(src, tmp))


def held_out_trips(data: Sequence[str], topics: Sequence[str], holdout: float, trips: int, length: int,
                   seed: int, seeds: Any = None) -> tuple[list[Any], list[check.Trip]]:
    """Every recording's stream and the check's round trips on its held-out frames (the last `holdout` share).
    With training seeds (`seeds`: a SeedConfig whose source is file or topic) the trips start from the
    seeds that lie in the held-out tails, so the check measures the targets the adaptation is for."""
    from cyclesiam_train.data import discover_streams
    from cyclesiam_train.seeds import build_seeds

    streams = discover_streams(data, topics)
    ranges = [(head_frames(s.num_frames, holdout), s.num_frames) for s in streams]
    short = [s.name for s, (lo, hi) in zip(streams, ranges) if hi - lo < 2]
    if short:
        raise SourceError(f"too short to hold out {holdout:.0%} for the check (need >= 2 frames): {short}")
    sources, rng = [s.source for s in streams], np.random.default_rng(seed)
    given = build_seeds(seeds, streams)[0] if seeds is not None and seeds.source != "random" else None
    if given is None:
        return streams, check.plan_trips(sources, ranges, trips, length, rng, check.seed_config())
    boxes = [(g.stream, g.frame, g.box) for g in given]
    return streams, check.plan_seeded_trips(sources, ranges, boxes, trips, length, rng, check.seed_config())


# each of the two label-free checks (BASE, then the adapted model on the same trips) gets at most
# this share of --minutes: under load 16 trips took 4 minutes each and left 1 training step of 3 minutes
CHECK_SHARE = 0.2


def adapt(data: Sequence[str], out: str | Path, *, base: str | Path | None = None, topics: Sequence[str] = (),
          minutes: float = 10.0, device: str = "auto", threads: int = 0, trips: int = 16, length: int = 20,
          holdout: float = 0.2, seed: int = 0, overrides: dict[str, Any] | None = None, progress: bool = True, command: str = "",
          blend: float = DEFAULT_BLEND, log: Callable[[str], None] = print) -> AdaptResult:
    """Fine-tune `base` on `data` for about `minutes`, blend it back towards `base` (`blend`: share of the
    fine-tuned weights, 1 = as trained), check it on the held-out tails, pick the model to use.
    `threads` > 0: torch CPU threads for training and the check (restored on return)."""
    if not 0.0 < blend <= 1.0:
        raise ValueError(f"--blend must be in (0, 1], got {blend}")
    with torch_threads(threads):
        t0 = time.monotonic()
        out = Path(out)
        if (out / TRAIN_DIR / STATE_FILE).exists():  # before anything is written: its model.safetensors stays
            raise FileExistsError(f"{out} already holds an adaptation run; choose another --out")
        base_path = resolve_checkpoint(base)
        _state, _model_cfg, base_meta = read_checkpoint(base_path)
        cfg = adapt_config(base_meta.get("provenance", {}), overrides, device)
        if topics:
            cfg.train.topics = list(topics)
        model = copy_model(base_path, out / MODEL_FILE)  # the model to use is BASE until the adapted one is better
        streams, plan = held_out_trips(data, cfg.train.topics, holdout, trips, length, seed, cfg.train.seeds)
        sources = [s.source for s in streams]
        eval_cfg = check.eval_config({"runtime": {"threads": threads}}, device=cfg.runtime.device)
        log(f"label-free check: {len(plan)} round trips on the last {holdout:.0%} of {len(sources)} recording(s)"
            + (", from the seeds there (random boxes where there are none)" if cfg.train.seeds.source != "random" else ""))
        base_results = check.measure(base_path, sources, plan, eval_cfg,
                                     deadline=t0 + CHECK_SHARE * minutes * 60.0)
        if len(base_results) < len(plan):  # the adapted model is measured on the same, fewer trips
            log(f"label-free check: {len(base_results)} of {len(plan)} round trips fit in its "
                f"{CHECK_SHARE:.0%} share of the budget on this machine")
            plan = plan[:len(base_results)]
        check_seconds = time.monotonic() - t0
        log(f"base {base_path}: round-trip IoU {check.summary(base_results)['iou']:.3f} ({check_seconds:.0f} s)")
        deadline = t0 + minutes * 60.0 - check_seconds
        t_train = time.monotonic()
        result = train(cfg, data, out / TRAIN_DIR, command=command, log=log, progress=progress, init_from=base_path,
                       holdout=holdout, deadline=deadline)
        train_seconds = time.monotonic() - t_train
        if result.interrupted:
            log(f"stopped: {model} is still BASE; the partial fine-tuned model is {out / TRAIN_DIR / MODEL_FILE}")
            return AdaptResult(model, False, None, result.step, train_seconds, result.exit_code)
        tuned_path = out / TRAIN_DIR / MODEL_FILE
        adapted_path = tuned_path if blend == 1.0 else blend_checkpoints(base_path, tuned_path, out / ADAPTED_FILE, blend)
        adapted_results = check.measure(adapted_path, sources, plan, eval_cfg)
        verdict = check.compare(base_results, adapted_results)
        if verdict.better:
            copy_model(adapted_path, model)
        res = AdaptResult(model, verdict.better, verdict, result.step, train_seconds, 0,
                          {"base": base_path, "adapted_path": adapted_path, "tuned_path": tuned_path, "blend": blend,
                           "plan": plan, "streams": streams,
                           "base_results": base_results, "adapted_results": adapted_results, "cfg": cfg,
                           "minutes": minutes, "holdout": holdout, "command": command,
                           "seconds_per_step": seconds_per_step(out / TRAIN_DIR),
                           "total_seconds": time.monotonic() - t0})
        write_report(out, res)
        log(f"{'adapted model is better' if verdict.better else 'adapted model is not better: keeping BASE'} "
            f"(round-trip IoU {verdict.base:.3f} -> {verdict.candidate:.3f}); {model}; report {out / REPORT_FILE}")
        return res


# --------------------------------------------------------------------------- report


def _per_recording(res: AdaptResult) -> list[tuple[str, dict[str, float], dict[str, float]]]:
    x = res.extra
    rows = []
    for k, s in enumerate(x["streams"]):
        pick = [i for i, t in enumerate(x["plan"]) if t.recording == k]
        rows.append((s.name, check.summary([x["base_results"][i] for i in pick]),
                     check.summary([x["adapted_results"][i] for i in pick])))
    return rows


def write_report(out: Path, res: AdaptResult) -> Path:
    """RUN_DIR/report.md and RUN_DIR/before_after.png."""
    x, v = res.extra, res.verdict
    b, a = check.summary(x["base_results"]), check.summary(x["adapted_results"])
    t = x["cfg"].train
    which = (f"**the adapted model** (copy of `{x['adapted_path']}`)" if res.adapted else
             f"**BASE** (copy of `{x['base']}`): the label-free check does not call the adapted model better; "
             f"the adapted model stays in `{x['adapted_path']}`")
    lines = [
        "# cyclesiam-adapt report", "",
        f"`{res.model}` is {which}.", "",
        f"Label-free check: {b['trips']} forward-backward round trips ({x['plan'][0].length} frames each way at most) "
        f"of seed boxes on the held-out last {x['holdout']:.0%} of each recording, the way back moved by a known "
        f"half box size (a tracker that stays put fails), the same trips for both models. "
        f"Better means a mean paired round-trip IoU gain above 1.645 standard errors.", "",
        "| | base | adapted |", "|---|---|---|",
        f"| mean round-trip IoU (higher is better) | {b['iou']:.3f} | {a['iou']:.3f} |",
        f"| failed round trips (IoU < 0.5) | {b['failed']:.2f} | {a['failed']:.2f} |",
        f"| median centre error / size | {b['centre_error']:.3f} | {a['centre_error']:.3f} |",
        f"| median log size ratio (< 0 shrank) | {b['median_log_size']:.3f} | {a['median_log_size']:.3f} |", "",
        f"Paired IoU gain {v.gain:+.3f} (standard error {v.stderr:.3f}): "
        f"{'better' if v.better else 'not clearly better'}.", "",
        "| recording | trips | base IoU | adapted IoU |", "|---|---|---|---|",
        *[f"| `{name}` | {bs['trips']} | {bs['iou']:.3f} | {as_['iou']:.3f} |" for name, bs, as_ in _per_recording(res)],
        "",
        f"Training: {res.steps} steps of batch {t.batch_size} in {res.train_seconds:.0f} s with start-up "
        f"({x['seconds_per_step']:.2f} s/step between logged steps), "
        f"lr {t.lr:g}, warm-up {t.warmup_steps}, backbone frozen, budget {x['minutes']:g} min "
        f"(whole command {x['total_seconds']:.0f} s), device {x['cfg'].runtime.device}. "
        + ("The adapted model is the fine-tuned one as trained." if x["blend"] == 1.0 else
           f"The adapted model is {x['blend']:g} x the fine-tuned weights (`{x['tuned_path']}`) + "
           f"{1 - x['blend']:g} x BASE's (`--blend`)."), "",
        f"Command: `{x['command']}`", "", f"![before/after]({FIGURE_FILE})", "",
    ]
    plot_before_after(out / FIGURE_FILE, res)
    path = out / REPORT_FILE
    path.write_text("\n".join(lines))
    return path


def plot_before_after(path: Path, res: AdaptResult) -> Path:
    """Per-trip round-trip IoU (base against adapted) and the mean per recording, before and after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = res.extra
    base_iou = [r.iou for r in x["base_results"]]
    adapted_iou = [r.iou for r in x["adapted_results"]]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    ax1.scatter(base_iou, adapted_iou, s=18, alpha=0.7)
    ax1.plot([0, 1], [0, 1], color="grey", lw=1)
    ax1.set(xlim=(0, 1), ylim=(0, 1), xlabel="base: round-trip IoU", ylabel="adapted: round-trip IoU",
            title="each round trip (above the line: adapted better)")
    rows = _per_recording(res)
    pos = np.arange(len(rows))
    ax2.bar(pos - 0.2, [r[1]["iou"] for r in rows], 0.4, label="base")
    ax2.bar(pos + 0.2, [r[2]["iou"] for r in rows], 0.4, label="adapted")
    ax2.set_xticks(pos, [Path(r[0].split(":")[0]).name for r in rows], rotation=20)
    ax2.set(ylim=(0, 1), ylabel="mean round-trip IoU", title="held-out part of each recording")
    ax2.legend()
    chosen = "adapted" if res.adapted else "base (kept)"
    fig.suptitle(f"cyclesiam-adapt: {res.steps} steps; model.safetensors = {chosen}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cyclesiam-adapt", description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", required=True, metavar="PATH", help="bags, videos, image folders (unlabeled)")
    p.add_argument("--topic", action="append", default=[], metavar="T", help="image topic to use (repeatable)")
    p.add_argument("--checkpoint", metavar="BASE", help="model to adapt (default: the shipped model)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="model.safetensors, report.md, before_after.png, train/")
    p.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget of the whole command (default 10)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (0 = library default; 1 is much faster on a CPU shared with other work)")
    p.add_argument("--trips", type=int, default=16, help="round trips per recording for the check")
    p.add_argument("--length", type=int, default=20, help="frames of each round trip, each way")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seed-topic", metavar="T",
                       help="recorded vision_msgs/Detection2DArray topic (e.g. the node's /cyclesiam_tracker/detections) "
                            "whose boxes seed the cycle and the check, instead of random label-free boxes")
    seeds.add_argument("--seeds", metavar="FILE", help="seeds YAML (bag, topic, stamp|frame, box, mask), as cyclesiam-train")
    p.add_argument("--seed", type=int, default=0, help="seed of the check's trips")
    p.add_argument("--blend", type=float, default=DEFAULT_BLEND, metavar="W",
                   help="share of the fine-tuned weights in the adapted model, the rest BASE's (0 < W <= 1; "
                        f"1 = as trained; default {DEFAULT_BLEND})")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="training overrides, e.g. train.lr=1e-4 train.batch_size=4")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = "cyclesiam-adapt " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    from cyclesiam_train.seeds import SeedError, apply_seed_flags
    from cyclesiam_train.train_state import StateError

    try:
        if not args.minutes > 0:
            raise ConfigError(f"--minutes must be > 0, got {args.minutes}")
        overrides = parse_dotted(args.set)
        if args.seed_topic or args.seeds:
            apply_seed_flags(overrides.setdefault("train", {}), args.seeds, args.seed_topic)
        res = adapt(args.data, args.out, base=args.checkpoint, topics=args.topic, minutes=args.minutes,
                    device=args.device, threads=args.threads, trips=args.trips, length=args.length, seed=args.seed,
                    overrides=overrides, progress=not args.no_progress, command=command, blend=args.blend)
    except (ConfigError, SourceError, SeedError, StateError, CheckpointError, FileExistsError, FileNotFoundError,
            ValueError) as exc:
        print(f"cyclesiam-adapt: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside training (the check): RUN_DIR/model.safetensors is BASE
        print(f"cyclesiam-adapt: stopped; {Path(args.out) / MODEL_FILE} is the base model", file=sys.stderr)
        return 128 + 2
    return res.exit_code


if __name__ == "__main__":
    sys.exit(main())
