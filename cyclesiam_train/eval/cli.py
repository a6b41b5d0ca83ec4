"""``cyclesiam-eval``: run trackers/checkpoints over a dataset and write metrics, JSON and plots.

Example::

    cyclesiam-eval --checkpoint runs/a/last.safetensors --tracker csrt --tracker kcf \\
        --dataset gen/otb --format otb --out runs/eval --set eval.protocols=[ope]

Writes ``OUT/results.json`` (per sequence and overall, every tracker), ``OUT/success.png``,
``OUT/precision.png``, ``OUT/per_sequence_auc.png`` and ``OUT/predictions/TRACKER/SEQ.txt``
(the one-pass boxes, ``x,y,w,h`` per frame).

Without --checkpoint and --tracker (or with ``--tracker cyclesiam`` and no --checkpoint) the
shipped default model is evaluated; ``--checkpoint random`` = an untrained random-init network.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cyclesiam.default_model import RANDOM_INIT, cli_checkpoint, describe_model
from cyclesiam_train.config import Config, ConfigError, load_config, parse_dotted, to_dict

from . import plots
from .baselines import BASELINES, SiamTrackerAdapter, make_baseline
from .datasets import FORMATS, DatasetError, load_dataset
from .runner import TrackerResults, evaluate_tracker, init_shift, overall


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cyclesiam-eval", description="Evaluate trackers (OTB, VOT, DAVIS protocols).")
    p.add_argument("--checkpoint", action="append", default=[],
                   help=f"CycleSiam checkpoint (repeatable; '{RANDOM_INIT}' = untrained random-init network); "
                        "default: the shipped model when no --tracker is given either")
    p.add_argument("--tracker", action="append", default=[], choices=[*BASELINES, "cyclesiam"],
                   help="baseline tracker (repeatable; 'still' holds the first box); 'cyclesiam' = the --checkpoint files (the shipped model "
                        "without --checkpoint)")
    p.add_argument("--dataset", required=True, help="dataset root (bag: keyframe YAML or folder of them)")
    p.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    p.add_argument("--data", help="real format: folder the clips' `frames:` are under (default: $CYCLESIAM_DATA or data/)")
    p.add_argument("--split", help="real format: only the clips of this split (e.g. val)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--config", help="YAML config merged over the defaults")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. eval.protocols=[ope] or tracker.lr=0.3 (repeatable)")
    return p


def tracker_specs(args: argparse.Namespace) -> list[str]:
    """Checkpoint paths (or 'random') and baseline names, in the order given. No --checkpoint
    with no --tracker, or with --tracker cyclesiam, means the shipped default model."""
    checkpoints: list[str | None] = list(args.checkpoint)
    if not checkpoints and (not args.tracker or "cyclesiam" in args.tracker):
        checkpoints = [None]
    specs = []
    for ckpt in checkpoints:
        try:
            resolved = cli_checkpoint(ckpt)
        except FileNotFoundError as exc:
            raise ConfigError(str(exc)) from None
        print(f"cyclesiam-eval: {describe_model(ckpt, resolved)}", file=sys.stderr)
        specs.append(RANDOM_INIT if resolved is None else str(resolved))
    return specs + [t for t in args.tracker if t != "cyclesiam"]


def unique_name(base: str, taken: set[str]) -> str:
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def build_tracker(spec: str, cfg: Config, name: str) -> Any:
    if spec in BASELINES:
        tracker = make_baseline(spec)
        tracker.name = name
        return tracker
    return SiamTrackerAdapter(None if spec == RANDOM_INIT else spec, cfg, name=name)


def save_predictions(out: Path, result: TrackerResults) -> None:
    folder = out / "predictions" / result.name
    folder.mkdir(parents=True, exist_ok=True)
    for seq, boxes in result.predictions.items():
        np.savetxt(folder / f"{seq}.txt", boxes, fmt="%.2f", delimiter=",")


def write_outputs(out: Path, args: argparse.Namespace, cfg: Config, results: dict[str, TrackerResults],
                  summaries: dict[str, dict[str, Any]], backends: dict[str, str] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    backends = backends or {}
    doc = {
        "dataset": str(args.dataset), "format": args.fmt, "split": args.split, "eval_config": to_dict(cfg.eval),
        "tracker_config": to_dict(cfg.tracker),
        "trackers": {name: {"backend": backends.get(name, ""), "overall": summaries[name], "sequences": r.sequences}
                     for name, r in results.items()},
    }
    plots.write_results_json(out / "results.json", doc)
    if any("ope" in s for s in summaries.values()):
        plots.plot_success(summaries, out / "success.png", cfg.eval.success_thresholds)
        plots.plot_precision(summaries, out / "precision.png", cfg.eval.precision_max, cfg.eval.precision_threshold)
        per_seq = {name: {seq: e["ope"]["auc"] for seq, e in r.sequences.items() if "ope" in e}
                   for name, r in results.items()}
        plots.plot_per_sequence(per_seq, out / "per_sequence_auc.png", "AUC")
    for r in results.values():
        save_predictions(out, r)


def fps_cell(fps: float) -> str:
    """fps in 8 columns ('still' updates in microseconds: its fps has more digits than the column)."""
    return ">99999" if fps >= 1e5 else f"{fps:.1f}"


def print_table(summaries: dict[str, dict[str, Any]]) -> None:
    print(f"{'tracker':<24}{'AUC':>7}{'P@20':>7}{'NP@.2':>7}{'A':>7}{'fail':>6}{'EAO':>7}{'J':>7}{'Jbox':>7}{'F':>7}{'fps':>8}")
    for name, s in summaries.items():
        o, v, d = s.get("ope", {}), s.get("vot", {}), s.get("davis", {})

        def f(x: Any) -> str:
            return f"{x:7.3f}" if isinstance(x, float) else f"{'-':>7}"

        print(f"{name:<24}{f(o.get('auc'))}{f(o.get('precision'))}{f(o.get('norm_precision'))}"
              f"{f(v.get('accuracy'))}{v.get('failures', '-'):>6}{f(v.get('eao'))}"
              f"{f(d.get('J', {}).get('mean'))}{f(d.get('J_box'))}{f(d.get('F', {}).get('mean'))}"
              f"{fps_cell(o.get('fps', float('nan'))):>8}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config, parse_dotted(args.set))
        unknown = sorted(set(cfg.eval.protocols) - {"ope", "vot"})
        if unknown or not cfg.eval.protocols:
            raise ConfigError(f"eval.protocols must be a non-empty subset of [ope, vot], got {cfg.eval.protocols}")
        init_shift(cfg.eval.init_shift)
        specs = tracker_specs(args)
        sequences = load_dataset(args.dataset, args.fmt, davis_resolution=cfg.eval.davis_resolution,
                                 bag_tolerance_ns=cfg.eval.bag_stamp_tolerance_ns, names=cfg.eval.sequences,
                                 max_frames=cfg.eval.max_frames, data_root=args.data, split=args.split)
    except (ConfigError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(sequences)} sequences from {args.dataset} ({args.fmt})")
    taken: set[str] = set()
    results: dict[str, TrackerResults] = {}
    summaries: dict[str, dict[str, Any]] = {}
    backends: dict[str, str] = {}
    for spec in specs:
        name = unique_name(spec if spec in BASELINES else "cyclesiam-random" if spec == RANDOM_INIT
                           else Path(spec).stem, taken)
        tracker = build_tracker(spec, cfg, name)
        backends[name] = getattr(tracker, "backend", "")
        results[name] = evaluate_tracker(tracker, sequences, cfg.eval, log=print)
        summaries[name] = overall(results[name], cfg.eval)
    out = Path(args.out)
    write_outputs(out, args, cfg, results, summaries, backends)
    print_table(summaries)
    print(f"results: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
