"""glibc malloc kept from handing a frame's network buffers back to the kernel between frames.

Without onnxruntime's memory arena (runtime.memory_arena false, the default since issue 25), each
run allocates its intermediate tensors with malloc and frees them at the end. glibc serves the
large ones with mmap (or trims them off the heap top) and the kernel zero-fills every page again
on the next frame: measured 4,900-10,900 minor page faults and 15-31 ms of system time per frame at
4 targets (docs/MODEL.md, "Where the time goes"). A fixed mmap threshold and a larger trim
threshold keep those buffers in the heap, reused frame after frame. Memory stays bounded: at most
TRIM_THRESHOLD of free heap top is kept, buffers above MMAP_THRESHOLD are still mapped and
returned, and when a batch gets smaller than the largest before it (targets removed) the free heap
is given back at once (`ShrinkTrim`), so memory follows the targets as issue 25 asks. Process-wide
and numerically neutral (it changes where memory comes from, not any value); a no-op off glibc."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
# the largest intermediate of 16 targets' template batch (80 crops) is ~126 MB: up to there buffers
# stay in the heap; larger ones are still mapped and returned
MMAP_THRESHOLD = 128 * 1024 * 1024
TRIM_THRESHOLD = 128 * 1024 * 1024

_applied: bool | None = None


def keep_heap_buffers() -> bool:
    """Apply the thresholds once per process; True when glibc accepted them."""
    global _applied
    if _applied is None:
        _applied = _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return _applied


def release_free_heap() -> bool:
    """Give every free heap page back to the kernel (glibc malloc_trim); False where unavailable."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(ctypes.c_size_t(0)))


class ShrinkTrim:
    """Calls `release_free_heap` when a batch of some kind (a network part at one input shape) is
    smaller than the largest of that kind since the last release: a frame after targets went away."""

    def __init__(self) -> None:
        self._largest: dict[object, int] = {}

    def note(self, kind: object, rows: int) -> None:
        largest = self._largest.get(kind, 0)
        if rows < largest and _applied:
            release_free_heap()
            self._largest[kind] = rows
        else:
            self._largest[kind] = max(largest, rows)


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def _mallopt(param: int, value: int) -> bool:
    libc = _libc()  # None off glibc (musl has no mallopt)
    return bool(libc is not None and libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)))
