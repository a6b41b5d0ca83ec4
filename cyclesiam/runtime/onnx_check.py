"""Checks of an ONNX export against the torch model it came from (real crops, tolerances)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from cyclesiam.config import ModelConfig
from cyclesiam.runtime.onnx_session import OnnxBackend

if TYPE_CHECKING:
    from cyclesiam.config import RuntimeConfig

# Tolerances of the ONNX-vs-torch check (fp32, CPU EP): |onnx - torch| <= ATOL + RTOL * |torch|.
CHECK_ATOL = 1e-3
CHECK_RTOL = 1e-3


def compare_with_torch(
    model: nn.Module,
    paths: "Mapping[str, Path] | OnnxBackend",
    z: torch.Tensor,
    x: torch.Tensor,
    runtime: "RuntimeConfig | None" = None,
) -> dict[str, float]:
    """Max |onnx - torch| per output for template crops `z` [B,3,T,T] and search crops `x`
    [B,3,S,S]; torch = `model` BN-folded in eager mode with the grouped correlation, i.e.
    what TorchBackend runs (pass an already prepared model to skip the folding). Keys: zf,
    cls, loc, feat, mask (when present), and `<key>_ref` = max |torch|."""
    ref = model if _is_folded(model) else torch_reference(model)
    onnx_be = paths if isinstance(paths, OnnxBackend) else OnnxBackend(paths, runtime)
    with torch.inference_mode():
        zf_t = ref.template(z)
        outs_t = ref.track(zf_t, x)
        zf_o = onnx_be.template(z)
        outs_o = onnx_be.track(zf_t, x)
        pairs = {"zf": (zf_o, zf_t), **{n: (o, t) for n, o, t in zip(("cls", "loc", "feat"), outs_o, outs_t)}}
        if onnx_be.has_mask:
            vectors = outs_t[2].flatten(2).transpose(1, 2).reshape(-1, outs_t[2].shape[1])[::37].contiguous()
            pairs["mask"] = (onnx_be.mask(vectors), ref.mask(vectors))
    report = {}
    for name, (got, want) in pairs.items():
        report[name] = float((got - want).abs().max())
        report[f"{name}_ref"] = float(want.abs().max())
    return report


def torch_reference(model: nn.Module) -> nn.Module:
    """The torch side of the check: a BN-folded fp32 CPU copy with the grouped correlation."""
    from cyclesiam.models.fuse import prepare_for_inference

    ref = prepare_for_inference(copy.deepcopy(model).float().cpu(), "cpu", channels_last=False, inplace=True)
    ref.xcorr_mode = "grouped"
    ref._cyclesiam_folded = True
    return ref


def _is_folded(model: nn.Module) -> bool:
    return bool(getattr(model, "_cyclesiam_folded", False))


# boxes (x, y, w, h) on a 640x480 frame for the check crops; scaled to other frame sizes
CHECK_BOXES = ((260.0, 170.0, 120.0, 110.0), (60.0, 60.0, 70.0, 50.0), (450.0, 300.0, 90.0, 140.0), (300.0, 60.0, 60.0, 90.0))


def real_crops(
    frames: Sequence[np.ndarray], targets: int, template_size: int, search_size: int, context: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tracker-style crops of `targets` boxes: templates from frames[0], search crops
    (`search_size` pixels, context as the tracker computes it) from frames[-1]."""
    from cyclesiam.crop import CropBatch, template_crop_sizes, to_bgr

    first, last = to_bgr(frames[0]), to_bgr(frames[-1])
    sx, sy = first.shape[1] / 640.0, first.shape[0] / 480.0
    boxes = np.array([CHECK_BOXES[i % len(CHECK_BOXES)] for i in range(targets)]) * [sx, sy, sx, sy]
    centers = boxes[:, :2] + boxes[:, 2:] / 2
    s_z = template_crop_sizes(boxes[:, 2:], context)
    z = CropBatch()(first, centers, s_z, template_size).clone()
    x = CropBatch()(last, centers, s_z * search_size / template_size, search_size).clone()
    return z, x


@dataclass
class CheckRow:
    targets: int
    search_size: int
    report: dict[str, float]  # compare_with_torch output
    failures: list[str]  # within_tolerance output


def check_on_frames(
    model: nn.Module,
    model_cfg: ModelConfig,
    paths: Mapping[str, Path],
    frames: Sequence[np.ndarray],
    targets: Sequence[int] = (1, 2),
    search_sizes: Sequence[int] = (255, 415),
    runtime: "RuntimeConfig | None" = None,
) -> list[CheckRow]:
    """`compare_with_torch` on real crops for every (targets, search size)."""
    ref, onnx_be = torch_reference(model), OnnxBackend(paths, runtime)
    rows = []
    for count in targets:
        for size in search_sizes:
            z, x = real_crops(frames, count, model_cfg.template_size, size)
            report = compare_with_torch(ref, onnx_be, z, x)
            rows.append(CheckRow(count, size, report, within_tolerance(report)))
    return rows


def within_tolerance(report: Mapping[str, float], atol: float = CHECK_ATOL, rtol: float = CHECK_RTOL) -> list[str]:
    """Outputs of a `compare_with_torch` report whose max diff exceeds atol + rtol * max|torch|."""
    return [
        f"{k}: {v:.3g} > {atol + rtol * report[k + '_ref']:.3g}"
        for k, v in report.items()
        if not k.endswith("_ref") and v > atol + rtol * report[k + "_ref"]
    ]

