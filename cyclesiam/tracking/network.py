"""The network as the tracker uses it: crops in, features out, with the crop buffers and the
per-response-size anchors and cosine window kept between frames."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from cyclesiam.anchors import generate_anchors
from cyclesiam.config import ModelConfig
from cyclesiam.crop import CropBatch, image_mean, template_crop_sizes
from cyclesiam.runtime.backend import NetworkBackend
from cyclesiam.tracking.decode import cosine_window


@dataclass
class Response:
    """Per response size: anchors (device tensor + numpy float64) and the cosine window."""

    anchors: torch.Tensor
    anchors_np: np.ndarray
    window: np.ndarray
    score_size: int


class Network:
    """`backend` + one preallocated crop buffer per crop size + one `Response` per response size."""

    def __init__(self, backend: NetworkBackend, model_cfg: ModelConfig, device: torch.device) -> None:
        self.backend = backend
        self.model_cfg = model_cfg
        self.device = device
        self._crops: dict[int, CropBatch] = {}
        self._responses: dict[int, Response] = {}

    def crop(self, out_size: int) -> CropBatch:
        crop = self._crops.get(out_size)
        if crop is None:
            crop = self._crops[out_size] = CropBatch(pin_memory=self.device.type == "cuda")
        return crop

    def templates(self, bgr: np.ndarray, centers: np.ndarray, sizes: np.ndarray, context: float,
                  pad: tuple[float, ...] | None = None) -> torch.Tensor:
        """Template features [B, C, t, t] of the boxes (centres, sizes [B, 2]) with `context` around them
        (`pad`: the image's mean when the caller has it)."""
        return self.backend.template(self.template_crops(bgr, centers, sizes, context, pad)).clone()

    def template_crops(self, bgr: np.ndarray, centers: np.ndarray, sizes: np.ndarray, context: float,
                       pad: tuple[float, ...] | None = None) -> torch.Tensor:
        """Template crops [B, 3, T, T] (a view of the crop buffer, valid until the next template crop)."""
        tsize = self.model_cfg.template_size
        pad = image_mean(bgr) if pad is None else pad
        return self.crop(tsize)(bgr, centers, template_crop_sizes(sizes, context), tsize, pad)

    def track(self, bgr: np.ndarray, pad: tuple[float, ...], centers: np.ndarray, sides: np.ndarray,
              search_size: int, zf: torch.Tensor, timing: dict[str, float],
              features: bool = False) -> tuple[torch.Tensor, ...]:
        """Search crops (sides [B] image pixels) -> (cls, loc, feat[, xf when `features`]); adds the
        ms to timing crop / network."""
        t0 = time.perf_counter()
        x = self.crop(search_size)(bgr, centers, sides, search_size, pad)
        timing["crop"] = timing.get("crop", 0.0) + ms_since(t0)
        t0 = time.perf_counter()
        out = self.backend.track_features(zf, x) if features else self.backend.track(zf, x)
        timing["network"] = timing.get("network", 0.0) + ms_since(t0)
        return out

    def response(self, score_size: int) -> Response:
        resp = self._responses.get(score_size)
        if resp is None:
            anchors = generate_anchors(self.model_cfg.anchor, score_size)
            resp = self._responses[score_size] = Response(
                anchors=torch.from_numpy(anchors).to(self.device),
                anchors_np=anchors.astype(np.float64),
                window=cosine_window(score_size, self.model_cfg.anchor.num_anchors),
                score_size=score_size,
            )
        return resp


def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
