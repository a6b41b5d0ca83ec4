"""cyclesiam/runtime/malloc_tuning.py: without onnxruntime's arena, a frame's network buffers stay in
the heap (no page faults frame after frame) and memory still follows the targets (test_onnx.py's
issue 25 test covers the second half)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cyclesiam.runtime.malloc_tuning import keep_heap_buffers

FAULT_PROBE = """
import os, resource, sys
import cv2
from cyclesiam.build import build_tracker
from cyclesiam.cli.bench import target_boxes
from cyclesiam.config import load_config
cfg = load_config(None, {"runtime": {"backend": "onnxruntime", "memory_arena": False}})
tracker = build_tracker(cfg, checkpoint=sys.argv[1])
frames = [cv2.imread(os.path.join(sys.argv[2], f"image{i:04d}.pgm")) for i in range(12)]
for box in target_boxes(640, 480, 4):
    tracker.add_target(frames[0], box)
for frame in frames[1:6]:
    tracker.track(frame)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for frame in frames[6:12]:
    tracker.track(frame)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 6)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_glibc_accepts_the_thresholds():
    assert keep_heap_buffers() is True


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_four_targets_reuse_their_buffers(shipped_checkpoint, cube_frames_dir):
    """4 targets, box + mask: the code before this change took 10,900-19,600 minor page faults a frame
    (every network buffer zero-filled again by the kernel); now 0-1,500 (measured)."""
    out = subprocess.run([sys.executable, "-c", FAULT_PROBE, str(shipped_checkpoint), str(cube_frames_dir)],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    faults = float(out.stdout.strip().splitlines()[-1])
    assert faults < 5000, faults
