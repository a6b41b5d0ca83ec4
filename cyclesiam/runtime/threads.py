"""torch's CPU thread count for a block of work, restored after (it is process-wide in torch)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set to `threads` (> 0) inside the block and restored after;
    0 leaves it alone. Scoped, so a tracker built in a process that also trains (adapt, tests)
    does not change the trainer's arithmetic."""
    previous = torch.get_num_threads()
    if threads <= 0 or threads == previous:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
