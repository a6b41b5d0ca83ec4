"""DataLoader worker processes: how they start, what they run first, what the parent closes before.

Workers are never forked from the training process. A process that has already tracked, checked a
model or decoded frames holds native thread pools (OpenCV's pthreads pool, OpenMP, onnxruntime,
rclpy's executor in a node), and a forked child inherits their locks and condition variables
without the threads behind them: `cv2.setNumThreads(1)` in a forked worker, after the parent ran
a parallel OpenCV call, can wait forever in `pthread_cond_destroy` on the pool's condition variable
(seen as `adapt()` and `cyclesiam-adapt` hanging with their workers at 0 s of CPU). Workers start
from a forkserver instead: a fresh interpreter started once per process, which imports torch, OpenCV
and the dataset code and runs nothing else, so forking from it is safe. Its start costs a few seconds
once per process (3.0-5.7 s to the first batch against 0.14-0.30 s forked, load average 11); later
loaders in the same process start as fast as forked ones (0.19-0.66 s).

As with any non-fork start method, the main module is imported in each worker: a script that trains
(`train()`, `adapt()`) with workers needs the usual `if __name__ == "__main__":` guard.

The dataset reaches a worker pickled: sources pickle without their open file handles and re-open
on first use in the worker. The sample content is a function of (train.seed, index) only, so the
start method changes no sample and resume stays exact.

Signals: the forkserver is started with SIGINT and SIGTERM ignored, and its children inherit that,
so a Ctrl-C or a SIGTERM sent to the whole process group never stops a worker, not even before
`worker_init` runs; the main process finishes the step, checkpoints and shuts them down.
"""

from __future__ import annotations

import multiprocessing
import signal
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import cv2
import torch

# imported once by the forkserver, so a worker only unpickles the dataset
PRELOAD = ["numpy", "torch", "cv2", "cyclesiam_train.data"]
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def children_ignore_stop_signals() -> Iterator[None]:
    """Processes started inside the block ignore SIGINT and SIGTERM from birth (an ignored disposition
    survives fork and exec; a blocked mask does not survive the forkserver's exec). This process holds the
    ones that arrive meanwhile and handles them on exit. Handlers stay untouched off the main thread or
    when one was not installed from Python (it could not be put back); workers then ignore the signals
    from `worker_init` on."""
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    handlers: dict[int, Any] = {}
    try:
        current = {s: signal.getsignal(s) for s in STOP_SIGNALS}
        if all(h is not None for h in current.values()):
            for s in STOP_SIGNALS:
                handlers[s] = signal.signal(s, signal.SIG_IGN)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


def worker_context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context DataLoader workers start from: a running forkserver ("spawn" where
    the platform has none)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)  # only read when the forkserver starts (once per process)
    with children_ignore_stop_signals():
        forkserver.ensure_running()
    return ctx


def worker_init(_worker_id: int) -> None:
    """DataLoader workers: one thread each. Ctrl-C (SIGINT) and a SIGTERM sent to the whole process
    group are handled by the main process (finish the step, checkpoint, shut the workers down)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def release_handles(streams: Sequence[Any]) -> None:
    """Close every source's file handles before the workers start (they re-open their own on demand):
    the parent does not read frames while they run."""
    for s in streams:
        s.source.close()
