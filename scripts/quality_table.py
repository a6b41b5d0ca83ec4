#!/usr/bin/env python3
"""Merge cyclesiam-eval results (generated exact-gt set + hand-annotated dev set) and
cyclesiam-bench timings into ``OUT/table.md``, ``OUT/results.json`` and ``OUT/plots/``.
Called by scripts/quality_table.sh; usable alone:

    scripts/quality_table.py --out outputs/quality --set generated=DIR --set dev=DIR \\
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
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=EVAL_DIR")
    p.add_argument("--bench", action="append", default=[], metavar="TRACKER=BENCH_JSON")
    p.add_argument("--speed-sequence", default="mbt_cube", help="640x480 sequence for the harness timing of baselines")
    p.add_argument("--note", action="append", default=[])
    args = p.parse_args(argv)

    out = Path(args.out)
    sets = load_sets(args.sets)
    if not sets:
        raise SystemExit("error: no results.json in any --set folder")
    names = list(sets)
    trackers: list[str] = []
    for data in sets.values():
        trackers += [t for t in data["trackers"] if t not in trackers]
    bench = {spec.split("=", 1)[0]: bench_ms(Path(spec.split("=", 1)[1])) for spec in args.bench}

    rows = {}
    for t in trackers:
        vals = row_values(sets, t)
        b = bench.get(t, {})
        speed = {"bench_box_ms": b.get("box", math.nan), "bench_box_mask_ms": b.get("box+mask", math.nan),
                 "harness_ms_640x480": harness_ms(sets, t, args.speed_sequence)}
        backend = next((d["trackers"][t].get("backend", "") for d in sets.values() if t in d["trackers"]), "")
        rows[t] = {"sets": vals, "speed": speed, "backend": backend}

    def speed_cell(s: dict[str, float]) -> str:
        if not math.isnan(s["bench_box_mask_ms"]) or not math.isnan(s["bench_box_ms"]):
            return f"{fmt(s['bench_box_ms'], 1)} box / {fmt(s['bench_box_mask_ms'], 1)} box+mask (bench)"
        return f"{fmt(s['harness_ms_640x480'], 1)} (harness)"

    sl = " / ".join(names)
    lines = [
        "# Tracking quality",
        "",
        f"Cells with two numbers: {sl} set. Speed: ms per frame at 640x480, one target, this machine's CPU.",
        "",
        f"| tracker | success AUC ({sl}) | precision@20 ({sl}) | VOT accuracy ({sl}) | failures ({sl}) | EAO ({sl}) "
        f"| mask J (generated) | ms/frame 640x480 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t, r in rows.items():
        v = r["sets"]
        j = v.get("generated", {})
        jcell = fmt(j.get("J"))
        if j.get("J_from_box"):
            jcell += " (filled box)"
        label = f"{t} ({r['backend']})" if r["backend"] not in ("", "opencv") else t
        lines.append(f"| {label} | {pair(v, 'auc', names)} | {pair(v, 'precision20', names)} | {pair(v, 'vot_accuracy', names)} "
                     f"| {pair(v, 'failures', names)} | {pair(v, 'eao', names)} | {jcell} | {speed_cell(r['speed'])} |")
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
    if args.note:
        lines += ["", "Notes:"] + [f"- {n}" for n in args.note]
    out.mkdir(parents=True, exist_ok=True)
    written = plots(sets, trackers, out / "plots")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    doc = {"sets": {n: {"dataset": d["dataset"], "format": d["format"], "eval_dir": d["dir"]} for n, d in sets.items()},
           "trackers": {t: {**r, "per_set": {n: d["trackers"].get(t, {}).get("overall") for n, d in sets.items()},
                            "per_sequence": {n: d["trackers"].get(t, {}).get("sequences") for n, d in sets.items()}}
                        for t, r in rows.items()},
           "plots": written, "notes": args.note}

    def clean(o: Any) -> Any:
        if isinstance(o, float) and not math.isfinite(o):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, list):
            return [clean(v) for v in o]
        return o

    (out / "results.json").write_text(json.dumps(clean(doc), indent=1))
    print((out / "table.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
