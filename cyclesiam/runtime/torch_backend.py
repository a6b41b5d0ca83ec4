"""`NetworkBackend` over a torch `SiameseNet`."""

from __future__ import annotations

import torch


class TorchBackend:
    """`NetworkBackend` over a `SiameseNet` in eval mode, on any torch device."""

    name = "torch"

    def __init__(
        self,
        model: torch.nn.Module,
        device: torch.device | str = "cpu",
        half: bool = False,
        channels_last: bool = False,
        has_mask: bool | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.dtype = torch.float16 if (half and self.device.type == "cuda") else torch.float32
        self.channels_last = channels_last
        model = model.to(self.device).eval()
        if self.dtype == torch.float16:
            model = model.half()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        if has_mask is None:
            has_mask = getattr(model, "mask_head", None) is not None
        self.has_mask = has_mask

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, dtype=self.dtype, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    @torch.inference_mode()
    def template(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.template(self._input(z))

    @torch.inference_mode()
    def track(self, zf: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cls, loc, feat = self.model.track(zf, self._input(x))
        return cls.float(), loc.float(), feat

    @torch.inference_mode()
    def track_features(self, zf: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cls, loc, feat, xf = self.model.track_features(zf, self._input(x))
        return cls.float(), loc.float(), feat, xf

    @torch.inference_mode()
    def mask(self, feat: torch.Tensor) -> torch.Tensor:
        return self.model.mask(feat).float()

