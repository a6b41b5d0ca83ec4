"""Depth-wise cross-correlation of search features with per-target template kernels.

Two equal forms:
- "grouped": one grouped conv over all targets (kernels are data, groups = B*C); fastest
  in eager PyTorch.
- "slices": sum over the t*t kernel offsets of (search slice * kernel column); only
  static-shape slicing, multiply and add, so ONNX exporters and runtimes that want
  constant conv weights handle it. Slice ends are written relative to the end of the
  map, so an exported graph stays valid for any search size.
- "toeplitz": the same sum as ONE batched MatMul: the kh row windows of the search
  features side by side [B,C,R,kh*W] times per-target Toeplitz matrices of the kernel
  rows [B,C,kh*W,R] (built with pad/tile/reshape). No Conv with run-time weights either,
  and ~45 ONNX nodes instead of ~200: the form `cyclesiam.runtime.onnx_export` exports.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

XCORR_MODES = ("grouped", "slices", "toeplitz")


def xcorr_depthwise(x: torch.Tensor, z: torch.Tensor, mode: str = "grouped") -> torch.Tensor:
    """x [B,C,H,W] search features, z [B,C,t,t] kernels -> [B,C,H-t+1,W-t+1]."""
    if x.dim() != 4 or z.dim() != 4 or x.shape[:2] != z.shape[:2]:
        raise ValueError(f"xcorr needs x [B,C,H,W] and z [B,C,h,w] with equal B,C; got {tuple(x.shape)}, {tuple(z.shape)}")
    if mode == "grouped":
        return xcorr_grouped(x, z)
    if mode == "slices":
        return xcorr_slices(x, z)
    if mode == "toeplitz":
        return xcorr_toeplitz(x, z)
    raise ValueError(f"unknown xcorr mode '{mode}'; known: {XCORR_MODES}")


def xcorr_grouped(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    batch, channels = x.shape[:2]
    out = F.conv2d(
        x.reshape(1, batch * channels, x.shape[2], x.shape[3]),
        z.reshape(batch * channels, 1, z.shape[2], z.shape[3]),
        groups=batch * channels,
    )
    return out.reshape(batch, channels, out.shape[2], out.shape[3])


def xcorr_slices(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    kh, kw = int(z.shape[2]), int(z.shape[3])
    out = None
    for u in range(kh):
        rows = x[:, :, u : (u - kh + 1) or None]
        for v in range(kw):
            term = rows[:, :, :, v : (v - kw + 1) or None] * z[:, :, u : u + 1, v : v + 1]
            out = term if out is None else out + term
    return out


def xcorr_toeplitz(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    batch, channels, height, width = x.shape
    kh, kw = int(z.shape[2]), int(z.shape[3])
    out_h, out_w = height - kh + 1, width - kw + 1
    rows = torch.cat([x[:, :, u : (u - kh + 1) or None, :] for u in range(kh)], dim=3)  # [B,C,Rh,kh*W]
    # toep[b,c,u*W+w,j] = z[b,c,u,w-j] (0 where w-j is outside 0..kw-1): a row of length
    # W+1 (kernel row, then zeros) tiled Rw times and cut to Rw*W shifts by one per row.
    zeros = z.new_zeros(1, 1, 1, 1).expand(batch, channels, kh, out_w)
    tiled = torch.cat([z, zeros], dim=3).repeat(1, 1, 1, out_w)[:, :, :, : out_w * width]
    toep = tiled.reshape(batch, channels, kh, out_w, width).transpose(3, 4).reshape(batch, channels, kh * width, out_w)
    return torch.matmul(rows, toep)
