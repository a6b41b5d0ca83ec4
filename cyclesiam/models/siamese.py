"""SiameseNet: shared backbone + neck, depth-wise correlation, RPN head, mask head.

State-free: templates are returned to the caller (the tracker keeps one per target) and
passed back to `track`; no dict inputs, so the network exports to ONNX as is.
Inputs are BGR float crops in 0..255 (NCHW); ImageNet normalisation happens here.
"""

from __future__ import annotations

import torch
from torch import nn

from cyclesiam.models.head_mask import MaskHead
from cyclesiam.models.head_rpn import RPNHead
from cyclesiam.models.neck import Neck, crop_template
from cyclesiam.models.xcorr import XCORR_MODES, xcorr_depthwise

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


class SiameseNet(nn.Module):
    def __init__(
        self,
        backbone: nn.Module,
        neck: Neck,
        rpn: RPNHead,
        mask_head: MaskHead | None,
        template_crop: int,
        xcorr_mode: str = "grouped",
    ):
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.rpn = rpn
        self.mask_head = mask_head
        self.template_crop = template_crop
        self.xcorr_mode = xcorr_mode  # "grouped" (eager) | "slices" (export); same result
        mean = torch.tensor(IMAGENET_MEAN_RGB).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD_RGB).view(1, 3, 1, 1)
        # (x/255 - mean)/std as one multiply-add; not persistent: not part of checkpoints
        self.register_buffer("pixel_scale", 1.0 / (255.0 * std), persistent=False)
        self.register_buffer("pixel_shift", -mean / std, persistent=False)

    @property
    def xcorr_mode(self) -> str:
        return self._xcorr_mode

    @xcorr_mode.setter
    def xcorr_mode(self, mode: str) -> None:
        if mode not in XCORR_MODES:
            raise ValueError(f"unknown xcorr mode '{mode}'; known: {XCORR_MODES}")
        self._xcorr_mode = mode

    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        """BGR 0..255 -> RGB ImageNet-normalised."""
        return image.flip(1) * self.pixel_scale + self.pixel_shift

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] BGR crops -> neck features [B,C,ceil(H/8),ceil(W/8)]."""
        return self.neck(self.backbone(self.normalise(image)))

    def template(self, z: torch.Tensor) -> torch.Tensor:
        """z [B,3,127,127] -> template kernels zf [B,C,t,t]."""
        return crop_template(self.features(z), self.template_crop)

    def track(self, zf: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """zf [B,C,t,t], x [B,3,S,S] -> cls [B,2k,R,R], loc [B,4k,R,R], feat [B,F,R,R].

        Row b of x is correlated with row b of zf only (one template per target)."""
        return self.track_features(zf, x)[:3]

    def track_features(self, zf: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """`track` plus the search features xf [B,C,ceil(S/8),ceil(S/8)] it correlated (read by the
        pooled scale strategy, which samples template-sized windows out of them)."""
        xf = self.features(x)
        corr = xcorr_depthwise(xf, zf.to(xf.dtype), self.xcorr_mode)
        cls, loc, feat = self.rpn(corr)
        return cls, loc, feat, xf

    def mask(self, feat_vectors: torch.Tensor) -> torch.Tensor:
        """feat_vectors [N,F] (rows of `feat` at chosen positions) -> [N, mask_size^2] logits."""
        if self.mask_head is None:
            raise RuntimeError("this model was built without a mask head (model.mask: false)")
        return self.mask_head(feat_vectors)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """template + track in one call (export, training convenience)."""
        return self.track(self.template(z), x)


def gather_positions(feat: torch.Tensor, batch_index: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """feat [B,F,R,R] -> [N,F] vectors at (batch_index[n], rows[n], cols[n]) for `SiameseNet.mask`."""
    return feat[batch_index, :, rows, cols]
