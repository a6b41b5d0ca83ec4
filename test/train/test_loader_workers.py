"""DataLoader workers (train.workers >= 1): adapt() in a process that already tracked, group Ctrl-C, exact
resume across start methods, truncated bags. Every run that could hang runs in a subprocess with a timeout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_bag

from cyclesiam_train.cli import main

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
WORKERS = ["model.backbone=light", "train.batch_size=2", "train.workers=2", "train.warmup_steps=0",
           "train.log_every=1", "runtime.device=cpu", "train.lr=0.02"]


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                PYTHONUNBUFFERED="1", **extra)


def _metrics(run: Path) -> list[dict]:
    if not (run / "metrics.jsonl").is_file():
        return []
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


# The child: the tracker runs on real frames with both backends (onnxruntime's and torch's thread pools,
# OpenCV's parallel crops), then adapt() trains with two workers in the same process.
IN_PROCESS_ADAPT = """
import sys
from cyclesiam.build import build_tracker
from cyclesiam.config import load_config
from cyclesiam.default_model import resolve_checkpoint
from cyclesiam.sources import open_source
from cyclesiam_train.adapt import adapt

video, out = sys.argv[1], sys.argv[2]
source = open_source(video)
frames = [source.frame(i) for i in range(6)]
for backend in ("onnxruntime", "torch"):
    cfg = load_config(None, {"runtime": {"backend": backend, "device": "cpu"}})
    tracker = build_tracker(cfg, resolve_checkpoint(None))
    tracker.add_target(frames[0], (120, 60, 80, 90))
    for frame in frames[1:]:
        tracker.track(frame)
    print("tracked with", backend, flush=True)
res = adapt([video], out, minutes=3, device="cpu", trips=2, length=4, progress=False,
            overrides={"train": {"batch_size": 2, "workers": 2, "steps": 2, "checkpoint_every": 1}})
print("adapt steps", res.steps, "exit", res.exit_code, flush=True)
"""


def test_adapt_in_the_process_that_ran_the_tracker_finishes(tmp_path, tree_video) -> None:
    """Forked workers hung here for good (cv2.setNumThreads in the child after the parent's OpenCV pool ran);
    the time limit turns a hang into a failure."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", IN_PROCESS_ADAPT, str(tree_video), str(run)], cwd=REPO, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=420)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: hung workers never notice their parent died
        out, err = proc.communicate()
        pytest.fail(f"adapt() hung in the process that had run the tracker:\n{out[-2000:]}")
    assert proc.returncode == 0, out[-2000:] + err[-3000:]
    assert "tracked with onnxruntime" in out and "tracked with torch" in out
    assert "adapt steps 2 exit 0" in out, out[-2000:]
    from cyclesiam.checkpoint import read_checkpoint

    assert read_checkpoint(run / "train" / "model.safetensors")[2]["provenance"]["steps"] == 2
    assert (run / "model.safetensors").is_file() and (run / "report.md").is_file()


def test_group_ctrl_c_with_workers_resumes_exactly_like_a_run_without_workers(tmp_path, tree_bag) -> None:
    """Ctrl-C in a terminal reaches the whole process group (workers too): the run checkpoints and exits
    130; resumed with workers, every step's loss equals the run without workers (same samples)."""
    common = ["--data", str(tree_bag), "--no-progress", "--set", *WORKERS, "train.steps=5", "train.checkpoint_every=100"]
    ref = tmp_path / "ref"
    assert main(common[:2] + ["--out", str(ref)] + common[2:] + ["train.workers=0"]) == 0
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "cyclesiam_train.cli", "--out", str(run), *common], cwd=REPO,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own group, as a terminal's foreground job
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and len(_metrics(run)) < 2:
            time.sleep(0.05)
        assert proc.poll() is None, f"run ended before the signal: {proc.communicate()}"
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGINT, err[-3000:]
    assert "Traceback" not in err and "--resume" in out + err
    assert main(["--resume", str(run), "--no-progress"]) == 0
    ref_m, run_m = _metrics(ref), _metrics(run)
    assert [r["step"] for r in run_m] == list(range(5))
    for a, b in zip(ref_m, run_m):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-6, abs=1e-7), (a, b)


def _stop_signal_handlers(_index: int) -> list[str]:
    return [str(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM)]


class HandlerDataset:
    """Each item: how the worker that loads it handles SIGINT and SIGTERM (no worker_init_fn here)."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> list[str]:
        return _stop_signal_handlers(index)


def test_workers_ignore_stop_signals_from_birth_and_the_caller_keeps_its_handlers() -> None:
    """No moment in a worker's life when a group Ctrl-C could kill it (the step would fail)."""
    from torch.utils.data import DataLoader

    from cyclesiam_train.loader_workers import worker_context

    before = [signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), signal.pthread_sigmask(signal.SIG_BLOCK, [])]
    loader = DataLoader(HandlerDataset(), batch_size=None, num_workers=1, multiprocessing_context=worker_context())
    items = list(loader)
    assert [signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), signal.pthread_sigmask(signal.SIG_BLOCK, [])] == before
    assert items == [[str(signal.SIG_IGN)] * 2] * 2, items


def test_truncated_bag_with_workers_is_salvaged_once(tmp_path, tree_video, read_frames) -> None:
    """Workers read the parent's salvaged copy: one warning, and no copy left behind once the run exits."""
    bag = write_bag(tmp_path / "bag", read_frames(tree_video, 12), storage="mcap")
    storage_file = next(bag.glob("*.mcap"))
    storage_file.write_bytes(storage_file.read_bytes()[: int(storage_file.stat().st_size * 0.6)])
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.run([sys.executable, "-m", "cyclesiam_train.cli", "--data", str(bag), "--out", str(tmp_path / "run"),
                           "--no-progress", "--set", *WORKERS, "train.steps=2", "train.checkpoint_every=1"],
                          cwd=REPO, env=_env(TMPDIR=str(tmp)), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("TruncatedBagWarning") == 1, proc.stderr[-3000:]
    assert [p.name for p in tmp.iterdir() if p.name.startswith("cyclesiam_truncated_bag_")] == []
