"""Training metrics: a tqdm progress bar, JSON lines (RUN_DIR/metrics.jsonl) and loss-curve plots.

`cyclesiam-train-plot RUN_DIR` (`plot_main`) redraws RUN_DIR/loss.png from the metrics file at any time,
also while a run is going on.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Sequence

METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "loss.png"


class MetricsLog:
    """Append-only JSON-lines metrics of one run (written by rank 0 only; `enabled=False` elsewhere)."""

    def __init__(self, run_dir: str | Path, enabled: bool = True, resume_step: int | None = None):
        self.path = Path(run_dir) / METRICS_FILE
        self.enabled = enabled
        if enabled and resume_step is not None and self.path.is_file():
            self._truncate_from(resume_step)

    def _truncate_from(self, step: int) -> None:
        """Drop records of steps >= `step` (they are re-run after a resume)."""
        kept = [r for r in read_metrics(self.path) if int(r.get("step", -1)) < step]
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        tmp.replace(self.path)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()


class Progress:
    """tqdm bar over steps with loss and cycles/s (silent when disabled or tqdm is missing)."""

    def __init__(self, total: int, initial: int, enabled: bool = True):
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr)
            except ImportError:  # pragma: no cover - tqdm is a dependency
                self.bar = None

    def update(self, loss: float, cycles_per_s: float, iou: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", iou=f"{iou:.2f}", cyc_s=f"{cycles_per_s:.1f}", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Records of a metrics file; a torn last line (run killed mid-write) is skipped."""
    p = Path(path)
    if p.is_dir():
        p = p / METRICS_FILE
    out = []
    for line in p.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average (window >= 1)."""
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot_losses(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Loss curves (total and parts, raw and smoothed) and final-hop IoU -> PNG (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    records = [r for r in read_metrics(run_dir) if "loss" in r]
    if not records:
        raise ValueError(f"{run_dir / METRICS_FILE}: no training records to plot")
    out = Path(out) if out else run_dir / PLOT_FILE
    steps = [r["step"] for r in records]
    window = max(1, len(records) // 20)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, keys, title in ((axes[0], ["loss"], "total loss"), (axes[1], ["cls", "loc", "mask", "rank"], "loss parts"),
                            (axes[2], ["iou", "rank_acc", "lr"], "final-hop IoU / scale-rank accuracy / lr")):
        for key in keys:
            vals = [float(r.get(key, math.nan)) for r in records]
            if all(math.isnan(v) for v in vals):
                continue
            line, = ax.plot(steps, vals, alpha=0.3, linewidth=0.8)
            ax.plot(steps, smooth(vals, window), color=line.get_color(), label=key)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        ax.legend()
    if all(float(r["loss"]) > 0 for r in records):
        axes[0].set_yscale("log")
    fig.suptitle(str(run_dir))
    fig.tight_layout()
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
    return out


def plot_main(argv: Sequence[str] | None = None) -> int:
    """`cyclesiam-train-plot RUN_DIR [--out PNG]`: redraw the loss curves of a run."""
    parser = argparse.ArgumentParser(prog="cyclesiam-train-plot", description=plot_main.__doc__)
    parser.add_argument("run_dir", help="training run directory (holds metrics.jsonl)")
    parser.add_argument("--out", default=None, help="output PNG (default RUN_DIR/loss.png)")
    args = parser.parse_args(argv)
    try:
        path = plot_losses(args.run_dir, args.out)
    except (OSError, ValueError) as exc:
        print(f"cyclesiam-train-plot: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(plot_main())
