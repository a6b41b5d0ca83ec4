"""Network cost: FLOPs per frame and wall-clock ms per frame of `track` (+ mask at one
position per target), reusable by benchmarks and docs. Inputs are random crops: the
cost does not depend on content."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class NetworkTiming:
    median_ms: float
    min_ms: float
    repeats: int


def _inputs(model: nn.Module, targets: int, template_size: int, search_size: int, channels_last: bool):
    param = next(model.parameters())
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    z = (torch.rand(targets, 3, template_size, template_size) * 255).to(param.device, param.dtype)
    x = (torch.rand(targets, 3, search_size, search_size) * 255).to(param.device, param.dtype)
    return z.contiguous(memory_format=fmt), x.contiguous(memory_format=fmt)


def frame_step(model: nn.Module, zf: torch.Tensor, x: torch.Tensor, with_mask: bool = True) -> torch.Tensor:
    """What the tracker runs per frame: track, then the mask at each target's best position."""
    cls, loc, feat = model.track(zf, x)
    if not with_mask or getattr(model, "mask_head", None) is None:
        return cls
    batch, _, rows, cols = cls.shape
    k = cls.shape[1] // 2
    fg = cls.view(batch, 2, k, rows, cols)[:, 1].reshape(batch, -1)
    best = fg.argmax(dim=1) % (rows * cols)
    vectors = feat[torch.arange(batch, device=feat.device), :, best // cols, best % cols]
    return model.mask(vectors)


@torch.no_grad()
def time_network(
    model: nn.Module,
    targets: int = 1,
    template_size: int = 127,
    search_size: int = 255,
    repeats: int = 20,
    warmup: int = 3,
    channels_last: bool = False,
    with_mask: bool = True,
) -> NetworkTiming:
    """Wall-clock ms of one per-frame network step for `targets` targets (template excluded)."""
    z, x = _inputs(model, targets, template_size, search_size, channels_last)
    zf = model.template(z)
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        frame_step(model, zf, x, with_mask)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        frame_step(model, zf, x, with_mask)
        sync()
        times.append((time.perf_counter() - start) * 1000.0)
    return NetworkTiming(statistics.median(times), min(times), repeats)


@torch.no_grad()
def count_flops(model: nn.Module, targets: int = 1, template_size: int = 127, search_size: int = 255, with_mask: bool = True) -> dict[str, int]:
    """FLOPs (multiply-add = 2) of the per-frame step and of the template, counted by
    torch.utils.flop_counter (convolutions and matmuls; element-wise ops not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    z, x = _inputs(model, targets, template_size, search_size, False)
    counter = FlopCounterMode(display=False)
    with counter:
        zf = model.template(z)
    template_flops = counter.get_total_flops()
    counter = FlopCounterMode(display=False)
    with counter:
        frame_step(model, zf, x, with_mask)
    return {"frame": counter.get_total_flops(), "template": template_flops}


def cost_table(backbones: list[str], repeats: int = 15, threads: int = 0) -> list[str]:
    """Markdown rows of docs/MODEL.md's cost table (random weights: cost only)."""
    from cyclesiam.config import ModelConfig
    from cyclesiam.models.builder import build_model
    from cyclesiam.models.fuse import prepare_for_inference

    if threads:
        torch.set_num_threads(threads)
    rows = []
    for name in backbones:
        model = build_model(ModelConfig(backbone=name)).eval()
        flops, flops_lost = count_flops(model), count_flops(model, search_size=415)
        fused = prepare_for_inference(model, "cpu", channels_last=True)
        cells = [name, f"{flops['frame'] / 1e9:.2f}", f"{flops_lost['frame'] / 1e9:.2f}", f"{flops['template'] / 1e9:.2f}"]
        for targets in (1, 4):
            eager = time_network(model, targets, repeats=repeats)
            fast = time_network(fused, targets, channels_last=True, repeats=repeats)
            cells += [f"{eager.min_ms:.1f} / {eager.median_ms:.1f}", f"{fast.min_ms:.1f} / {fast.median_ms:.1f}"]
        lost = time_network(fused, 1, search_size=415, channels_last=True, repeats=repeats)
        cells.append(f"{lost.min_ms:.1f} / {lost.median_ms:.1f}")
        rows.append("| " + " | ".join(cells) + " |")
    return rows


if __name__ == "__main__":
    import sys

    for row in cost_table(sys.argv[1:] or ["mobilenet_v2", "light", "resnet50"]):
        print(row, flush=True)
