"""The frame-source contract shared by every source: `FrameSource` (lazy, random access, BGR uint8),
`SourceError`, and the conversion of any decoded image to BGR uint8."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from cyclesiam.crop import to_bgr

Frame = tuple[int, "int | None", np.ndarray]


class SourceError(RuntimeError):
    """A frame source cannot be opened or read; the message names the file."""


# --------------------------------------------------------------------------- base


class FrameSource:
    """Lazy, random-access sequence of BGR uint8 frames."""

    path: Path

    def __len__(self) -> int:
        raise NotImplementedError

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` (0-based, negative from the end) as BGR uint8 HxWx3."""
        raise NotImplementedError

    def stamp(self, index: int) -> int | None:
        """Timestamp (ns) of frame `index`, or None when the source has none."""
        return None

    def __iter__(self) -> Iterator[Frame]:
        for i in range(len(self)):
            yield i, self.stamp(i), self.frame(i)

    def close(self) -> None:
        """Release file handles (they are re-opened on demand)."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_index(self, index: int) -> int:
        n = len(self)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"{self.path}: frame {index} out of range (0..{n - 1})")
        return i

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.path}')"


# --------------------------------------------------------------------------- video


# --------------------------------------------------------------------------- helpers


def _frame_to_bgr(image: np.ndarray, where: Path) -> np.ndarray:
    """Any decoded image (grey/BGR/BGRA, uint8/uint16/float) -> contiguous BGR uint8."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating):
            image = np.clip(image * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        else:
            raise SourceError(f"{where}: unsupported image type {image.dtype}")
    try:
        return np.ascontiguousarray(to_bgr(image))
    except ValueError as exc:
        raise SourceError(f"{where}: {exc}") from exc
