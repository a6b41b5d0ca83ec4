"""Result figures (matplotlib, Agg backend) and the results JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import metrics as M  # noqa: E402


def _finite(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars/arrays -> Python."""
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_results_json(path: str | Path, results: Mapping[str, Any]) -> Path:
    """Results (per sequence and overall, every tracker) as JSON; NaN becomes null."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(_finite(dict(results)), indent=2))
    return p


def _curve_figure(curves: Mapping[str, tuple[np.ndarray, float]], x: np.ndarray, xlabel: str, ylabel: str,
                  title: str, label_fmt: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    for name, (curve, score) in sorted(curves.items(), key=lambda kv: -np.nan_to_num(kv[1][1], nan=-1)):
        ax.plot(x, curve, linewidth=2, label=label_fmt.format(name=name, score=score))
    ax.set_xlim(float(x[0]), float(x[-1]))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_success(overall: Mapping[str, Mapping[str, Any]], path: str | Path, n_thresholds: int = 21) -> Path:
    """OTB success plots of several trackers in one PNG; legend shows AUC."""
    curves = {name: (np.asarray(o["curves"]["success"]), o["ope"]["auc"])
              for name, o in overall.items() if "success" in o.get("curves", {})}
    return _curve_figure(curves, M.success_thresholds(n_thresholds), "overlap threshold (IoU)", "success rate",
                         "Success plot (OPE)", "{name} [AUC {score:.3f}]", Path(path))


def plot_precision(overall: Mapping[str, Mapping[str, Any]], path: str | Path, max_px: float = 50.0,
                   at: float = 20.0) -> Path:
    """OTB precision plots in one PNG; legend shows precision at ``at`` pixels."""
    curves = {name: (np.asarray(o["curves"]["precision"]), o["ope"]["precision"])
              for name, o in overall.items() if "precision" in o.get("curves", {})}
    return _curve_figure(curves, M.precision_thresholds(max_px), "location error threshold (px)", "precision",
                         "Precision plot (OPE)", "{name} [P@" + f"{at:g}" + " {score:.3f}]", Path(path))


def plot_per_sequence(per_sequence: Mapping[str, Mapping[str, float]], path: str | Path,
                      metric: str = "AUC") -> Path:
    """Grouped bars: one group per sequence, one bar per tracker (``{tracker: {seq: value}}``)."""
    trackers = list(per_sequence)
    sequences = sorted({s for v in per_sequence.values() for s in v})
    width = 0.8 / max(len(trackers), 1)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(sequences) * max(len(trackers), 1) + 2), 4.5), dpi=100)
    x = np.arange(len(sequences))
    for k, name in enumerate(trackers):
        values = [per_sequence[name].get(s, math.nan) for s in sequences]
        ax.bar(x + (k - (len(trackers) - 1) / 2) * width, np.nan_to_num(values, nan=0.0), width, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels(sequences, rotation=45, ha="right", fontsize=7)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per sequence")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
