"""Does the label-free check rank models like the annotated AUC? (issue 21 item 2; docs/MODEL.md,
"Label-free check against annotated AUC").

For every candidate (a checkpoint plus tracker overrides) and every real validation clip it measures
(a) the label-free signal of cyclesiam_train/label_free_check.py on the clip's frames: the mean
round-trip IoU of seed boxes tracked forward and back with a known shift on the way back, the same
trips for every candidate (paired), and (b) the annotated one-pass success AUC on the clip (the
eval library's run_ope/score_ope, as `cyclesiam-eval --format real --set eval.protocols=[ope]`).
Both use one tracker per candidate, built from the same config (masks off, `--backend`).

Prints the per (candidate, clip) figures, then the correlations: Spearman and Pearson over all
(candidate, clip) pairs, per clip the Kendall tau between the two rankings of the candidates (and
whether both pick the same best), their mean over clips, Spearman over the candidate means, and the
pooled paired verdicts of `compare` (all trips of all clips) for every pair of candidates.

    python probes/label_free_vs_auc.py \
        --candidate default models/cyclesiam_default.safetensors \
        --candidate ctx0.3 models/cyclesiam_default.safetensors tracker.context_amount=0.3 \
        --candidate random random \
        [--clips bikes city ...] [--trips 8] [--length 20] [--threads 1] [--json OUT.json]

Only `split: val` clips are accepted (test-once clips are never looked at).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cyclesiam.default_model import RANDOM_INIT, cli_checkpoint
from cyclesiam_train.config import Config, load_config, parse_dotted
from cyclesiam_train.eval.baselines import SiamTrackerAdapter
from cyclesiam_train.eval.datasets import Sequence as Clip, load_dataset
from cyclesiam_train.eval.runner import run_ope, score_ope
from cyclesiam_train.label_free_check import TripResult, compare, plan_trips, run_trips, seed_config, summary

ROOT = Path(__file__).resolve().parents[1]
VAL_CLIPS = ["bikes", "city", "idtrackerai_test_A", "mbt_cube", "mire2", "tree", "visp_line"]


@dataclasses.dataclass
class Candidate:
    name: str
    checkpoint: str  # a path or 'random'
    overrides: dict[str, Any]


class MemoryFrames:
    """A clip's frames decoded once (random access for the trips without re-seeking the video)."""

    def __init__(self, path: Path, frames: list[np.ndarray]) -> None:
        self.path, self._frames = path, frames

    def __len__(self) -> int:
        return len(self._frames)

    def __iter__(self) -> Any:
        return iter(self._frames)

    def frame(self, index: int) -> np.ndarray:
        return self._frames[index]


class StaticBox:
    """A 'tracker' that reports its start box on every frame: what staying put scores (reference row)."""

    name = "static"

    @dataclasses.dataclass
    class _Result:
        bbox: tuple[float, float, float, float]

    def __init__(self) -> None:
        self._box: tuple[float, float, float, float] | None = None

    # the eval harness's interface (run_ope)
    def init(self, frame: np.ndarray, box: Any, mask: Any = None) -> None:
        self._box = tuple(float(v) for v in box)

    def update(self, frame: np.ndarray) -> tuple[Any, float, None]:
        return self._box, 1.0, None

    # the SiamTracker calls the round trips use
    def clear(self) -> None:
        self._box = None

    def add_target(self, frame: np.ndarray, box: Any) -> str:
        self.init(frame, box)
        return "0"

    def track(self, frame: np.ndarray) -> list[Any]:
        return [self._Result(self._box)]


# --------------------------------------------------------------------------- rank statistics
# scipy is not a dependency: Spearman is Pearson on average ranks, Kendall tau-b counts concordant
# pairs; a few lines each, exact for the handful of values here.


def ranks(x: Sequence[float]) -> np.ndarray:
    """Average ranks (1-based; ties share their mean rank)."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tied = x == v
        r[tied] = r[tied].mean()
    return r


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    return pearson(ranks(a), ranks(b))


def kendall(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall tau-b (ties in either list count in neither the concordant nor the discordant pairs)."""
    s = n_a = n_b = 0
    for i, j in itertools.combinations(range(len(a)), 2):
        da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
        s += int(da * db)
        n_a += int(da != 0)
        n_b += int(db != 0)
    return float(s / np.sqrt(n_a * n_b)) if n_a and n_b else float("nan")


# --------------------------------------------------------------------------- measuring


def candidate_config(c: Candidate, backend: str, threads: int) -> Config:
    """The candidate's overrides over the defaults, then the probe's fixed settings (masks off, one pass)."""
    cfg = load_config(None, c.overrides)
    cfg.tracker.mask_enabled, cfg.eval.protocols = False, ["ope"]
    cfg.runtime.backend, cfg.runtime.threads, cfg.runtime.device = backend, threads, "cpu"
    return cfg


def build(c: Candidate, backend: str, threads: int) -> tuple[SiamTrackerAdapter, Config]:
    cfg = candidate_config(c, backend, threads)
    resolved = cli_checkpoint(None if c.checkpoint == "default" else c.checkpoint)
    return SiamTrackerAdapter(None if resolved is None else str(resolved), cfg, name=c.name), cfg


def load_clip(name: str) -> tuple[Clip, MemoryFrames]:
    (clip,) = load_dataset(ROOT / "annotations" / "real" / name, "real")
    if clip.info.get("split") != "val":
        raise SystemExit(f"{name}: split {clip.info.get('split')!r}; only val clips may be used here")
    frames = MemoryFrames(Path(clip.info["frames"]), list(clip.frames))
    return dataclasses.replace(clip, frames=frames), frames


def one_pass_auc(tracker: SiamTrackerAdapter, clip: Clip, cfg: Config) -> float:
    summary_, _res = score_ope(run_ope(tracker, clip), clip, cfg.eval)
    return float(summary_["auc"])


# --------------------------------------------------------------------------- report


def report(cands: list[Candidate], clips: list[str], signal: np.ndarray, auc: np.ndarray,
           trips: dict[str, list[list[TripResult]]]) -> dict[str, Any]:
    """Prints the table and the correlations; returns them. signal/auc: [candidate, clip]."""
    print(f"\n{'candidate':<12}{'clip':<20}{'round-trip IoU':>15}{'AUC':>8}")
    for i, c in enumerate(cands):
        for j, clip in enumerate(clips):
            print(f"{c.name:<12}{clip:<20}{signal[i, j]:>15.3f}{auc[i, j]:>8.3f}")
    means_s, means_a = signal.mean(axis=1), auc.mean(axis=1)
    print(f"\n{'candidate':<12}{'mean round-trip IoU':>20}{'mean AUC':>10}")
    for i, c in enumerate(cands):
        print(f"{c.name:<12}{means_s[i]:>20.3f}{means_a[i]:>10.3f}")
    per_clip = []
    print(f"\n{'clip':<20}{'Kendall tau':>12}{'best by signal':>16}{'best by AUC':>13}")
    for j, clip in enumerate(clips):
        tau = kendall(signal[:, j], auc[:, j])
        bs, ba = cands[int(np.argmax(signal[:, j]))].name, cands[int(np.argmax(auc[:, j]))].name
        per_clip.append({"clip": clip, "kendall": tau, "best_signal": bs, "best_auc": ba})
        print(f"{clip:<20}{tau:>12.2f}{bs:>16}{ba:>13}")
    out = {
        "spearman_pairs": spearman(signal.ravel(), auc.ravel()), "pearson_pairs": pearson(signal.ravel(), auc.ravel()),
        "kendall_per_clip_mean": float(np.nanmean([p["kendall"] for p in per_clip])),
        "same_best_clips": int(sum(p["best_signal"] == p["best_auc"] for p in per_clip)),
        "spearman_means": spearman(means_s, means_a), "pearson_means": pearson(means_s, means_a),
        "kendall_means": kendall(means_s, means_a), "per_clip": per_clip, "verdicts": [],
    }
    print(f"\nover all {signal.size} (candidate, clip) pairs: Spearman {out['spearman_pairs']:.3f}, "
          f"Pearson {out['pearson_pairs']:.3f}")
    print(f"per clip: mean Kendall tau {out['kendall_per_clip_mean']:.3f}; same best candidate on "
          f"{out['same_best_clips']}/{len(clips)} clips")
    print(f"over the candidate means: Spearman {out['spearman_means']:.3f}, Pearson {out['pearson_means']:.3f}, "
          f"Kendall {out['kendall_means']:.3f}")
    print("\npooled paired verdicts (all trips of all clips; 'better' = gain > 1.645 standard errors):")
    for a, b in itertools.permutations(range(len(cands)), 2):
        v = compare([r for rs in trips[cands[a].name] for r in rs], [r for rs in trips[cands[b].name] for r in rs])
        wrong = bool(v.better and means_a[b] < means_a[a] - 0.01)
        out["verdicts"].append({"base": cands[a].name, "candidate": cands[b].name, "gain": v.gain, "stderr": v.stderr,
                                "better": v.better, "auc_gain": float(means_a[b] - means_a[a]), "contradicts_auc": wrong})
        if v.better or wrong:
            print(f"  {cands[b].name} better than {cands[a].name}: IoU gain {v.gain:+.3f} (se {v.stderr:.3f}), "
                  f"AUC gain {means_a[b] - means_a[a]:+.3f}{'  <- CONTRADICTS the AUC' if wrong else ''}")
    print(f"verdicts contradicting the AUC (AUC lower by > 0.01): {sum(v['contradicts_auc'] for v in out['verdicts'])}")
    return out


def parse_candidates(specs: list[list[str]]) -> list[Candidate]:
    return [Candidate(s[0], s[1], parse_dotted(s[2:])) for s in specs]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidate", nargs="+", action="append", default=[], metavar="NAME CHECKPOINT [KEY=VALUE",
                    help=f"a name, a checkpoint ('default' = the shipped model, '{RANDOM_INIT}' = random init) and "
                         "tracker overrides (repeatable)")
    ap.add_argument("--clips", nargs="+", default=VAL_CLIPS, help="val clips under annotations/real/")
    ap.add_argument("--trips", type=int, default=8, help="round trips per clip")
    ap.add_argument("--length", type=int, default=20, help="frames forward (as many back)")
    ap.add_argument("--shift", type=float, default=0.5, help="known shift of the way back, x box size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", default="onnxruntime", help="runtime.backend of every candidate")
    ap.add_argument("--threads", type=int, default=1, help="runtime.threads (1 on a shared CPU)")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--static", action="store_true",
                    help="also a reference row (not in the correlations): the init box held still")
    args = ap.parse_args(argv)
    if any(len(s) < 2 for s in args.candidate) or not (args.candidate or args.static):
        ap.error("--candidate needs NAME CHECKPOINT [KEY=VALUE ...]")
    cands = parse_candidates(args.candidate or [])
    built = [build(c, args.backend, args.threads) for c in cands]
    signal, auc = np.zeros((len(cands), len(args.clips))), np.zeros((len(cands), len(args.clips)))
    trips: dict[str, list[list[TripResult]]] = {c.name: [] for c in cands}
    rng = np.random.default_rng(args.seed)
    for j, name in enumerate(args.clips):
        t0 = time.monotonic()
        clip, frames = load_clip(name)
        # one plan per clip, shared by every candidate: the comparison is paired
        plan = plan_trips([frames], [(0, len(frames))], args.trips, args.length, rng, seed_config())
        for i, (c, (tracker, cfg)) in enumerate(zip(cands, built)):
            results = run_trips(tracker._tracker, [frames], plan)
            trips[c.name].append(results)
            signal[i, j], auc[i, j] = summary(results)["iou"], one_pass_auc(tracker, clip, cfg)
            print(f"{name} {c.name}: round-trip IoU {signal[i, j]:.3f}, AUC {auc[i, j]:.3f}", flush=True)
        if args.static:
            static = StaticBox()
            s_iou = summary(run_trips(static, [frames], plan))["iou"]
            s_auc = float(score_ope(run_ope(static, clip), clip, load_config(None, {}).eval)[0]["auc"])
            print(f"{name} static (reference): round-trip IoU {s_iou:.3f}, AUC {s_auc:.3f}", flush=True)
        print(f"{name}: {time.monotonic() - t0:.0f} s", flush=True)
    if not cands:
        return 0
    out = report(cands, list(args.clips), signal, auc, trips)
    if args.json:
        out.update(candidates=[dataclasses.asdict(c) for c in cands], clips=list(args.clips),
                   signal=signal.tolist(), auc=auc.tolist(), trips=args.trips, length=args.length, shift=args.shift,
                   seed=args.seed, backend=args.backend)
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
