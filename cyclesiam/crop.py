"""Template and search crops (SiamRPN/SiamMask `get_subwindow` semantics, sub-pixel exact).

Coordinates are continuous pixel coordinates: (0, 0) is the top-left corner of the
top-left pixel, pixel (i, j) covers [j, j+1] x [i, i+1], so a box (x, y, w, h) spans
[x, x+w] x [y, y+h] and its centre is (x + w/2, y + h/2).

A crop of side `size_in_image` centred on `center` is resampled to `out_size` x
`out_size` with one `cv2.warpAffine` (bilinear); the area outside the image is filled
with `pad_value` (by default the per-channel image mean, as in pysot). Unlike pysot
(which rounds the window to whole pixels and then resizes) the mapping is exact to
sub-pixel precision, and only the `out_size`^2 output pixels are computed.
"""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np
import torch

from cyclesiam.tracking.decode import context_side


def to_bgr(image: np.ndarray) -> np.ndarray:
    """A 3-channel BGR uint8 view/copy of a grey (HxW, HxWx1), BGR or BGRA uint8 image."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise ValueError(f"image must be HxW, HxWx1, HxWx3 or HxWx4, got shape {image.shape}")


def template_crop_size(w: float, h: float, context: float = 0.5) -> float:
    """Side of the template window in image pixels: s_z = sqrt((w+p)(h+p)), p = context*(w+h)."""
    return float(template_crop_sizes(np.array([[w, h]]), context)[0])


def template_crop_sizes(sizes: np.ndarray, context: float = 0.5) -> np.ndarray:
    """`template_crop_size` for sizes [N, 2] (w, h) -> [N] (the decode's context side, float64)."""
    sizes = np.asarray(sizes, dtype=np.float64)
    return context_side(sizes[..., 0], sizes[..., 1], context)


def search_crop_size(w: float, h: float, context: float, search_size: int, template_size: int) -> float:
    """Side of the search window in image pixels: s_x = s_z * search_size / template_size."""
    return template_crop_size(w, h, context) * search_size / template_size


def image_mean(image: np.ndarray) -> tuple[float, ...]:
    """Per-channel mean of an image (the pysot padding value)."""
    mean = cv2.mean(image)
    channels = 1 if image.ndim == 2 else image.shape[2]
    return tuple(float(m) for m in mean[:channels])


def crop_matrix(center_xy: Sequence[float], size_in_image: float, out_size: int) -> np.ndarray:
    """2x3 affine matrix mapping output pixel indices to image pixel indices (for WARP_INVERSE_MAP).

    Output pixel u has its centre at continuous u + 0.5; it samples the image at continuous
    cx - s/2 + (u + 0.5) * s / out, i.e. pixel index that minus 0.5.
    """
    a = float(size_in_image) / float(out_size)
    bx = float(center_xy[0]) - 0.5 * size_in_image + 0.5 * a - 0.5
    by = float(center_xy[1]) - 0.5 * size_in_image + 0.5 * a - 0.5
    return np.array([[a, 0.0, bx], [0.0, a, by]], dtype=np.float64)


def crop_window(
    image: np.ndarray,
    center_xy: Sequence[float],
    size_in_image: float,
    out_size: int,
    pad_value: Sequence[float] | float | None = None,
    out: np.ndarray | None = None,
    angle_deg: float = 0.0,
) -> np.ndarray:
    """Square window of side `size_in_image` centred on `center_xy`, resampled to `out_size`.

    Returns an `out_size` x `out_size` (x C) array of the image's dtype; out-of-image area is
    `pad_value` (default: per-channel image mean). `out` may be a preallocated destination.
    `angle_deg` turns the content about the window centre (OpenCV's sense: positive turns it
    counter-clockwise on screen), in the same single resampling.
    """
    if not (size_in_image > 0 and math.isfinite(size_in_image)):
        raise ValueError(f"crop size must be positive and finite, got {size_in_image}")
    if pad_value is None:
        pad_value = image_mean(image)
    if np.isscalar(pad_value):
        pad_value = (float(pad_value),) * 4
    border = tuple(float(v) for v in pad_value) + (0.0,) * (4 - len(tuple(pad_value)))
    m = crop_matrix(center_xy, size_in_image, out_size)
    if angle_deg:
        c = (out_size - 1) / 2.0  # centre of the output in pixel indices
        unturn = np.vstack([cv2.getRotationMatrix2D((c, c), -float(angle_deg), 1.0), [0.0, 0.0, 1.0]])
        m = (np.vstack([m, [0.0, 0.0, 1.0]]) @ unturn)[:2]
    kwargs = {"dst": out} if out is not None else {}
    return cv2.warpAffine(
        image,
        m,
        (int(out_size), int(out_size)),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border,
        **kwargs,
    )


class CropBatch:
    """Batched crops of N targets into one preallocated float32 NCHW tensor (BGR, 0..255).

    The buffer grows only when more targets or a larger crop are asked for; each call
    returns a view `[N, 3, out, out]` of it (valid until the next call).
    """

    def __init__(self, pin_memory: bool = False) -> None:
        self._pin = pin_memory
        self._buffer: torch.Tensor | None = None
        self._scratch: dict[int, np.ndarray] = {}

    def _ensure(self, n: int, out_size: int) -> torch.Tensor:
        buf = self._buffer
        if buf is None or buf.shape[0] < n or buf.shape[2] != out_size:
            cap = max(n, buf.shape[0] if buf is not None and buf.shape[2] == out_size else 0)
            buf = torch.empty((cap, 3, out_size, out_size), dtype=torch.float32)
            if self._pin:
                buf = buf.pin_memory()
            self._buffer = buf
        return buf[:n]

    def __call__(
        self,
        image: np.ndarray,
        centers: np.ndarray,
        sizes_in_image: np.ndarray,
        out_size: int,
        pad_value: Sequence[float] | None = None,
    ) -> torch.Tensor:
        """Crops for centers [N, 2] and window sides [N] from a BGR uint8 image -> [N, 3, out, out]."""
        centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
        sizes_in_image = np.asarray(sizes_in_image, dtype=np.float64).reshape(-1)
        if len(centers) != len(sizes_in_image):
            raise ValueError(f"{len(centers)} centres but {len(sizes_in_image)} sizes")
        if image.ndim != 3 or image.shape[2] != 3:
            image = to_bgr(image)
        if pad_value is None:
            pad_value = image_mean(image)
        batch = self._ensure(len(centers), out_size)
        scratch = self._scratch.get(out_size)
        if scratch is None:
            scratch = self._scratch[out_size] = np.empty((out_size, out_size, 3), dtype=image.dtype)
        planes = batch.numpy()
        for i, (center, size) in enumerate(zip(centers, sizes_in_image)):
            crop = crop_window(image, center, float(size), out_size, pad_value, out=scratch)
            # HWC uint8 -> CHW float32 plane by plane: ~1/2 to 1/3 of torch's permuted copy's time
            for channel, plane in enumerate(cv2.split(crop)):
                np.copyto(planes[i, channel], plane, casting="unsafe")
        return batch
