#!/usr/bin/env python3
"""Merge cyclesiam-eval results into ``OUT/table.md``, ``OUT/results.json`` and ``OUT/plots/``:
first the real validation set (``--real``: a ``cyclesiam-eval --format real`` folder), mean and
per clip; then the secondary sets (generated exact-gt composites, dev clips) with
cyclesiam-bench timings. Called by scripts/quality_table.sh; usable alone:

    scripts/quality_table.py --out outputs/quality [--real DIR] [--set generated=DIR --set dev=DIR] \\
        [--bench NAME=bench.json ...] [--speed-sequence mbt_cube] [--note TEXT ...]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path
from typing import Any


def num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(float(x)) else math.nan


def fmt(x: Any, digits: int = 3) -> str:
    v = num(x)
    return "-" if math.isnan(v) else f"{v:.{digits}f}"


def load_sets(specs: list[str]) -> dict[str, dict[str, Any]]:
    sets = {}
    for spec in specs:
        name, folder = spec.split("=", 1)
        path = Path(folder) / "results.json"
        if path.is_file():
            sets[name] = {"dir": folder, **json.loads(path.read_text())}
    return sets


def bench_ms(path: Path) -> dict[str, float]:
    """Mean ms/frame per mode ('box', 'box+mask') for one target, from a cyclesiam-bench JSON."""
    if not path.is_file():
        return {}
    return {r["mode"]: float(r["mean_ms"]) for r in json.loads(path.read_text()) if int(r["targets"]) == 1}


def harness_ms(sets: dict[str, dict[str, Any]], tracker: str, sequence: str) -> float:
    """ms per update() measured by the eval harness on ``sequence`` (one-pass run)."""
    for data in sets.values():
        seq = data["trackers"].get(tracker, {}).get("sequences", {}).get(sequence)
        if seq and "ope" in seq:
            fps = num(seq["ope"].get("fps"))
            return 1000.0 / fps if fps > 0 else math.nan
    return math.nan


def row_values(sets: dict[str, dict[str, Any]], tracker: str) -> dict[str, dict[str, Any]]:
    out = {}
    for name, data in sets.items():
        o = data["trackers"].get(tracker, {}).get("overall", {})
        ope, vot, davis = o.get("ope", {}), o.get("vot", {}), o.get("davis", {})
        out[name] = {
            "auc": num(ope.get("auc")), "precision20": num(ope.get("precision")),
            "vot_accuracy": num(vot.get("accuracy")), "failures": vot.get("failures"),
            "eao": num(vot.get("eao")), "J": num(davis.get("J", {}).get("mean")),
            "J_from_box": bool(davis.get("mask_from_box", False)) if davis else None,
            "harness_fps": num(ope.get("fps")),
        }
    return out


def pair(values: dict[str, dict[str, Any]], key: str, names: list[str], digits: int = 3) -> str:
    cells = []
    for n in names:
        v = values.get(n, {}).get(key)
        cells.append(str(v) if key == "failures" and v is not None else fmt(v, digits))
    return " / ".join(cells)


def tracker_label(name: str, backend: str) -> str:
    return f"{name} ({backend})" if backend not in ("", "opencv") else name


def clip_info(dataset: str, clip: str) -> dict[str, str]:
    """source.txt of a real clip (empty when the annotation folder is not at hand)."""
    from cyclesiam_train.eval.datasets import read_key_values

    path = Path(dataset) / clip / "source.txt"
    return read_key_values(path) if path.is_file() else {}


def load_real(folders: list[str]) -> dict[str, Any] | None:
    """One or more `cyclesiam-eval --format real` folders (e.g. one per clip, or per tracker) merged:
    every tracker's clips together, with the mean over clips recomputed (`clip_summary`)."""
    runs = [r for r in load_sets([f"{k}={f}" for k, f in enumerate(folders)]).values()]
    if not runs:
        return None
    trackers: dict[str, dict[str, Any]] = {}
    for run in runs:
        for name, data in run["trackers"].items():
            t = trackers.setdefault(name, {"backend": data.get("backend", ""), "sequences": {}})
            t["sequences"].update(data["sequences"])
    for t in trackers.values():
        t["overall"] = clip_summary(t["sequences"])
    # a run over one clip folder names that folder: the set is its parent
    datasets = sorted({str(Path(r["dataset"]).parent) if (Path(r["dataset"]) / "source.txt").is_file() else r["dataset"]
                       for r in runs})
    return {"dataset": datasets[0] if len(datasets) == 1 else ", ".join(datasets), "split": runs[0].get("split"),
            "dir": ", ".join(r["dir"] for r in runs), "tracker_config": runs[0].get("tracker_config"),
            "trackers": trackers}


def clip_summary(sequences: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean over clips (AUC, precision: the OTB per-sequence average; J, own-box J, fps), sums of
    failures and absent-keyframe counts: the same keys as one clip's entry."""
    def mean(values: list[Any]) -> float:
        vals = [num(v) for v in values]
        vals = [v for v in vals if not math.isnan(v)]
        return sum(vals) / len(vals) if vals else math.nan

    entries = list(sequences.values())
    out: dict[str, Any] = {}
    ope = [e["ope"] for e in entries if "ope" in e]
    if ope:
        out["ope"] = {k: mean([o.get(k) for o in ope]) for k in ("auc", "precision", "fps")}
    vot = [e["vot"] for e in entries if "vot" in e]
    if vot:
        out["vot"] = {"failures": sum(int(v["failures"]) for v in vot)}
    davis = [e["davis"] for e in entries if "davis" in e]
    if davis:
        out["davis"] = {"J": {"mean": mean([d["J"]["mean"] for d in davis])}, "J_box": mean([d["J_box"] for d in davis]),
                        "mask_from_box": all(d["mask_from_box"] for d in davis), "clips": len(davis)}
    absent = [e["absent"] for e in entries if "absent" in e]
    if absent:
        out["absent"] = {k: sum(a[k] for a in absent) for k in ("keyframes", "box", "lost")}
    return out


def real_cells(entry: dict[str, Any]) -> dict[str, str]:
    """Table cells of one tracker on one clip, or of its overall summary (same keys)."""
    ope, vot, davis, absent = (entry.get(k, {}) for k in ("ope", "vot", "davis", "absent"))
    j = davis.get("J", {}).get("mean") if davis else None
    return {
        "auc": fmt(ope.get("auc")), "p20": fmt(ope.get("precision")),
        "fail": str(vot["failures"]) if "failures" in vot else "-",
        "absent": f"{absent['box']} / {absent['lost']}" if absent else "-",
        "J": "-" if not davis else fmt(j) + (" (box)" if davis.get("mask_from_box") else ""),
        "Jbox": fmt(davis.get("J_box")) if davis else "-",
        "fps": fmt(ope.get("fps"), 1),
    }


def real_tables(data: dict[str, Any]) -> list[str]:
    """Markdown: the mean over the real clips per tracker, then every clip (trackers side by side)."""
    trackers = data["trackers"]
    names = list(trackers)
    clips = sorted({c for t in trackers.values() for c in t["sequences"]})
    splits = sorted({clip_info(data["dataset"], c).get("split", "?") for c in clips})
    split = data.get("split") or "/".join(splits)
    lines = [f"## Real validation set ({len(clips)} clips, split {split}; {data['dataset']})", "",
             "| tracker | success AUC | precision@20 | failures | absent keyframes: box / LOST | mask J | own-box J | fps |",
             "|---|---|---|---|---|---|---|---|"]
    for t in names:
        c = real_cells(trackers[t]["overall"])
        lines.append(f"| {tracker_label(t, trackers[t].get('backend', ''))} | {c['auc']} | {c['p20']} | {c['fail']} "
                     f"| {c['absent']} | {c['J']} | {c['Jbox']} | {c['fps']} |")
    lines += ["", "Per clip: success AUC / precision@20 / failures (absent keyframes: box / LOST; mask J / own-box J).", "",
              "| clip | keyframes | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for clip in clips:
        info = clip_info(data["dataset"], clip)
        first = next(t["sequences"][clip] for t in trackers.values() if clip in t["sequences"])
        desc = f"{first['annotated']}/{first['frames']}"
        if info.get("attributes"):
            desc += f"; {info['attributes']}"
        if info.get("trained_on_by_shipped_model", "").lower().startswith("y"):
            desc += "; **trained on**"
        cells = []
        for t in names:
            c = real_cells(trackers[t]["sequences"].get(clip, {}))
            cell = f"{c['auc']} / {c['p20']} / {c['fail']}"
            if c["absent"] != "-":
                cell += f" (absent {c['absent']})"
            if c["J"] != "-":
                cell += f" (J {c['J']} / {c['Jbox']})"
            cells.append(cell)
        lines.append(f"| {clip} | {desc} | " + " | ".join(cells) + " |")
    lines += ["", "Definitions: one pass initialised on frame 0 (the given box); success AUC (OTB, 21 IoU "
              "thresholds) and precision@20 (centre error <= 20 px) over the present box keyframes after frame 0; "
              "failures: VOT-style re-initialising run on the sparse keyframes: a failure is IoU 0 on a present "
              "keyframe, the tracker is re-initialised on the next present keyframe >= 5 frames later (summed over "
              "clips); absent keyframes (target out of view / fully occluded) are not scored, the one-pass run "
              "reports how often the tracker still gave a box there and how often it said LOST; mask J = region "
              "IoU with the hand mask on mask keyframes, own-box J = the same tracker's box filled in on the same "
              "keyframes ((box) = a box-only tracker); fps = update() calls per second in the harness on these "
              "clips (CycleSiam: whole per-frame path with mask)."]
    return lines


def plots(sets: dict[str, dict[str, Any]], trackers: list[str], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in sets.items():
        for kind in ("success", "precision", "per_sequence_auc"):
            src = Path(data["dir"]) / f"{kind}.png"
            if src.is_file():
                dst = out / f"{name}_{kind}.png"
                shutil.copyfile(src, dst)
                written.append(dst.name)
    metrics = [("auc", "success AUC"), ("precision20", "precision@20"), ("vot_accuracy", "VOT accuracy"), ("eao", "EAO")]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.6))
    names = list(sets)
    width = 0.8 / max(1, len(trackers))
    for ax, (key, label) in zip(axes, metrics):
        for k, t in enumerate(trackers):
            vals = row_values(sets, t)
            ys = [vals.get(n, {}).get(key, math.nan) for n in names]
            ax.bar(np.arange(len(names)) + k * width, [0 if math.isnan(y) else y for y in ys], width, label=t)
        ax.set_xticks(np.arange(len(names)) + width * (len(trackers) - 1) / 2, names)
        ax.set_title(label)
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "summary.png", dpi=110)
    plt.close(fig)
    written.append("summary.png")
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--real", action="append", default=[],
                   help="cyclesiam-eval --format real output folder (repeatable: merged): the first table")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=EVAL_DIR")
    p.add_argument("--bench", action="append", default=[], metavar="TRACKER=BENCH_JSON")
    p.add_argument("--speed-sequence", default="mbt_cube", help="640x480 sequence for the harness timing of baselines")
    p.add_argument("--note", action="append", default=[])
    args = p.parse_args(argv)

    out = Path(args.out)
    sets = load_sets(args.sets)
    real = load_real(args.real)
    if not sets and real is None:
        raise SystemExit("error: no results.json in the --real folder or any --set folder")
    lines = ["# Tracking quality", ""] + (real_tables(real) if real else [])
    if sets:
        lines += [""] + secondary_table(sets, args)
    if args.note:
        lines += ["", "Notes:"] + [f"- {n}" for n in args.note]
    out.mkdir(parents=True, exist_ok=True)
    every = {**({"real": real} if real else {}), **sets}
    written = plots(every, list({t: 0 for d in every.values() for t in d["trackers"]}), out / "plots")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    doc = {"real": real_doc(real), "secondary": secondary_doc(sets, args), "plots": written, "notes": args.note}
    (out / "results.json").write_text(json.dumps(clean(doc), indent=1))
    print((out / "table.md").read_text())
    return 0


def real_doc(real: dict[str, Any] | None) -> dict[str, Any] | None:
    if real is None:
        return None
    return {"dataset": real["dataset"], "split": real.get("split"), "eval_dir": real["dir"],
            "tracker_config": real.get("tracker_config"),
            "trackers": {t: {"backend": d.get("backend", ""), "overall": d["overall"], "per_clip": d["sequences"]}
                         for t, d in real["trackers"].items()}}


def clean(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: clean(v) for k, v in o.items()}
    if isinstance(o, list):
        return [clean(v) for v in o]
    return o


def secondary_rows(sets: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Per tracker: its numbers on every secondary set, its speed and backend."""
    trackers: list[str] = []
    for data in sets.values():
        trackers += [t for t in data["trackers"] if t not in trackers]
    bench = {spec.split("=", 1)[0]: bench_ms(Path(spec.split("=", 1)[1])) for spec in args.bench}
    rows = {}
    for t in trackers:
        b = bench.get(t, {})
        speed = {"bench_box_ms": b.get("box", math.nan), "bench_box_mask_ms": b.get("box+mask", math.nan),
                 "harness_ms_640x480": harness_ms(sets, t, args.speed_sequence)}
        backend = next((d["trackers"][t].get("backend", "") for d in sets.values() if t in d["trackers"]), "")
        rows[t] = {"sets": row_values(sets, t), "speed": speed, "backend": backend}
    return rows


def speed_cell(s: dict[str, float]) -> str:
    if not math.isnan(s["bench_box_mask_ms"]) or not math.isnan(s["bench_box_ms"]):
        return f"{fmt(s['bench_box_ms'], 1)} box / {fmt(s['bench_box_mask_ms'], 1)} box+mask (bench)"
    return f"{fmt(s['harness_ms_640x480'], 1)} (harness)"


def secondary_table(sets: dict[str, dict[str, Any]], args: argparse.Namespace) -> list[str]:
    """Markdown: the generated composites and the dev clips, one row per tracker."""
    names = list(sets)
    sl = " / ".join(names)
    lines = [
        f"## Secondary: {sl}",
        "",
        f"Cells with two numbers: {sl} set. Speed: ms per frame at 640x480, one target, this machine's CPU.",
        "",
        f"| tracker | success AUC ({sl}) | precision@20 ({sl}) | VOT accuracy ({sl}) | failures ({sl}) | EAO ({sl}) "
        f"| mask J (generated) | ms/frame 640x480 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t, r in secondary_rows(sets, args).items():
        v = r["sets"]
        j = v.get("generated", {})
        jcell = fmt(j.get("J"))
        if j.get("J_from_box"):
            jcell += " (filled box)"
        lines.append(f"| {tracker_label(t, r['backend'])} | {pair(v, 'auc', names)} | {pair(v, 'precision20', names)} "
                     f"| {pair(v, 'vot_accuracy', names)} | {pair(v, 'failures', names)} | {pair(v, 'eao', names)} "
                     f"| {jcell} | {speed_cell(r['speed'])} |")
    lines += ["", "Sets:"]
    for n, data in sets.items():
        seqs = next(iter(data["trackers"].values()))["sequences"]
        desc = ", ".join(f"{s} ({e['annotated']}/{e['frames']} annotated)" for s, e in seqs.items())
        lines.append(f"- **{n}** ({data['dataset']}, {data['format']}): {desc}")
    lines += [
        "",
        "Definitions (cyclesiam_train/eval/metrics.py): success AUC = area under the OTB success curve "
        "(one pass, initialised on the first annotated frame, only annotated frames scored); precision@20 = "
        "fraction of annotated frames with centre error <= 20 px; VOT accuracy = mean IoU while tracking "
        "(re-initialised 5 frames after a failure, burn-in excluded); failures = number of frames with IoU = 0 "
        "(summed over sequences); EAO = expected average overlap; mask J = DAVIS region similarity on the "
        "generated set (box-only trackers: their filled box). Speed: cyclesiam-bench (whole tracking path, "
        "mbt_cube frames) for our models; for OpenCV baselines, the harness's time per update() on the "
        f"640x480 sequence `{args.speed_sequence}`.",
    ]
    return lines


def secondary_doc(sets: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    return {"sets": {n: {"dataset": d["dataset"], "format": d["format"], "eval_dir": d["dir"]} for n, d in sets.items()},
            "trackers": {t: {**r, "per_set": {n: d["trackers"].get(t, {}).get("overall") for n, d in sets.items()},
                             "per_sequence": {n: d["trackers"].get(t, {}).get("sequences") for n, d in sets.items()}}
                         for t, r in secondary_rows(sets, args).items()}}


if __name__ == "__main__":
    raise SystemExit(main())
