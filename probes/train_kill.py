"""SIGKILL `cyclesiam-train` at random moments and resume it each time (training reliability, issue 25).

A tiny real run (light backbone, batch 2, checkpoint every `--every` steps) is started, killed with
SIGKILL at a random moment once it has made progress, checked, and resumed with --resume, `--kills`
times; the last resume runs to the end. After every kill: the training checkpoint and the tracker
model must be readable, the checkpoint may lag the logged steps by at most one interval, and the
resume must start exactly at the checkpoint's step. Prints one row per kill and a verdict; exit 1
when any check failed. `--json FILE` writes the rows (test/train/test_train_kill.py reads them).

    python probes/train_kill.py --data data/tree.avi --kills 10 [--steps 60] [--every 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cyclesiam.checkpoint import read_checkpoint  # noqa: E402
from cyclesiam_train.metrics_log import read_metrics  # noqa: E402
from cyclesiam_train.train_state import STATE_FILE, read_state  # noqa: E402

LIGHT = ["model.backbone=light", "train.batch_size=2", "train.workers=0", "train.warmup_steps=0", "train.log_every=1",
         "runtime.device=cpu", "train.lr=0.01"]


def command(data: str, run: Path, steps: int, every: int, resume: bool) -> list[str]:
    base = [sys.executable, "-m", "cyclesiam_train.cli", "--no-progress"]
    if resume:
        return base + ["--resume", str(run)]
    return base + ["--data", data, "--out", str(run), "--set", *LIGHT, f"train.steps={steps}",
                   f"train.checkpoint_every={every}"]


def steps_logged(run: Path) -> int:
    """Steps completed according to metrics.jsonl (log_every 1)."""
    if not (run / "metrics.jsonl").is_file():
        return 0
    return max((int(r["step"]) + 1 for r in read_metrics(run)), default=0)


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), PYTHONUNBUFFERED="1")
    env.setdefault("OMP_NUM_THREADS", "1")  # one torch thread: steady step times on a shared CPU
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def kill_at_random(proc: subprocess.Popen, run: Path, rng: random.Random, step_seconds: float,
                   timeout: float) -> tuple[float, int]:
    """Wait for one more logged step, then SIGKILL after a random delay; (seconds since start, steps logged
    when it died)."""
    t0, before = time.monotonic(), steps_logged(run)
    while steps_logged(run) <= before and proc.poll() is None and time.monotonic() - t0 < timeout:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 2.0 * step_seconds))
    if proc.poll() is not None:
        raise RuntimeError(f"the run ended before the kill (exit {proc.returncode}); use more --steps")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return time.monotonic() - t0, steps_logged(run)


def check_after_kill(run: Path, done: int, every: int) -> dict:
    row: dict = {"steps_logged": done}
    try:
        row["checkpoint_step"] = int(read_state(run / STATE_FILE)[1]["step"])
        row["checkpoint_ok"] = True
    except Exception as exc:  # the check is that this never happens
        row.update(checkpoint_step=-1, checkpoint_ok=False, error=f"{type(exc).__name__}: {exc}")
    try:
        row["model_step"] = int(read_checkpoint(run / "model.safetensors")[2]["provenance"]["steps"])
        row["model_ok"] = True
    except Exception as exc:
        row.update(model_step=-1, model_ok=False, error=f"{type(exc).__name__}: {exc}")
    row["lost"] = done - row["checkpoint_step"]
    row["ok"] = row["checkpoint_ok"] and row["model_ok"] and 0 <= row["lost"] <= every
    return row


def resumed_at(log: Path) -> int:
    found = re.search(r"resumed \S+ at step (\d+)", log.read_text())
    return int(found.group(1)) if found else -1


def run_bench(data: str, workdir: Path, kills: int, steps: int, every: int, seed: int, timeout: float = 600) -> dict:
    rng = random.Random(seed)
    run = workdir / "run"
    rows = []
    t0 = time.monotonic()
    proc = start(command(data, run, steps, every, resume=False), workdir / "log0.txt")
    # a first logged step tells how long a step takes here (kills land within about two steps)
    while steps_logged(run) < 2 and proc.poll() is None and time.monotonic() - t0 < timeout:
        time.sleep(0.05)
    records = read_metrics(run) if (run / "metrics.jsonl").is_file() else []
    step_seconds = max(0.05, records[-1]["time"] - records[0]["time"]) if len(records) >= 2 else 1.0
    for k in range(kills):
        at, done = kill_at_random(proc, run, rng, step_seconds, timeout)
        row = {"kill": k + 1, "seconds": round(at, 2), **check_after_kill(run, done, every)}
        log = workdir / f"log{k + 1}.txt"
        proc = start(command(data, run, steps, every, resume=True), log)
        while resumed_at(log) < 0 and proc.poll() is None:
            time.sleep(0.05)
        row["resumed_at"] = resumed_at(log)
        row["ok"] = row["ok"] and row["resumed_at"] == row["checkpoint_step"]
        rows.append(row)
    code = proc.wait(timeout=timeout)
    logged = [int(r["step"]) for r in read_metrics(run)]
    final = {"exit_code": code, "steps": logged, "complete": code == 0 and logged == list(range(steps)),
             "stale_temporaries": sorted(p.name for p in run.glob(".*.tmp"))}
    return {"rows": rows, "final": final, "every": every,
            "ok": all(r["ok"] for r in rows) and final["complete"] and not final["stale_temporaries"]}


def print_table(result: dict) -> None:
    print(f"{'kill':>4}{'at s':>8}{'logged':>8}{'ckpt':>6}{'lost':>6}{'ckpt ok':>9}{'model ok':>10}{'resumed':>9}{'ok':>5}")
    for r in result["rows"]:
        print(f"{r['kill']:>4}{r['seconds']:>8.2f}{r['steps_logged']:>8}{r['checkpoint_step']:>6}{r['lost']:>6}"
              f"{str(r['checkpoint_ok']):>9}{str(r['model_ok']):>10}{r['resumed_at']:>9}{str(r['ok']):>5}")
    f = result["final"]
    lost = [r["lost"] for r in result["rows"]]
    print(f"final run: exit {f['exit_code']}, steps 0..{max(f['steps'], default=-1)} contiguous {f['complete']}, "
          f"stale temporaries {f['stale_temporaries'] or 'none'}")
    print(f"{len(lost)} kills: unreadable checkpoints {sum(not r['checkpoint_ok'] for r in result['rows'])}, "
          f"unreadable models {sum(not r['model_ok'] for r in result['rows'])}, steps lost max {max(lost, default=0)} "
          f"(interval {result['every']}); {'PASS' if result['ok'] else 'FAIL'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO / "data" / "tree.avi"), help="a real clip (video, folder or bag)")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--steps", type=int, default=60, help="steps of the run (enough to outlast the kills)")
    ap.add_argument("--every", type=int, default=2, help="train.checkpoint_every")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    ap.add_argument("--workdir", help="keep the run here (default: a temporary directory)")
    ap.add_argument("--json", help="write the rows and verdict as JSON here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="train_kill_") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        result = run_bench(args.data, workdir, args.kills, args.steps, args.every, args.seed)
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
