"""Training loop: optimiser, warm-up, backbone freezing, DDP, AMP, checkpoints, resume, signals.

One process without torchrun and N processes under torchrun run the same code: the global batch
`train.batch_size` is split over ranks, rank r takes the sample indices `StepSampler` gives it
(disjoint across ranks), gradients are averaged by DistributedDataParallel (gloo on CPU, nccl on
CUDA) and rank 0 alone writes checkpoints, metrics and the final model.

Resume is exact: every random choice is a function of (train.seed, step, rank) - sample content,
label sampling and the global torch RNG are re-seeded per step - and the checkpoint holds model,
optimiser and step. SIGINT/SIGTERM finish the current step, write the checkpoint and return
128 + signal number (a second Ctrl-C aborts at once).

Every checkpoint also writes RUN_DIR/model.safetensors (the tracker's checkpoint format, with
provenance), so a stopped or killed run always leaves a model `cyclesiam-track` loads. Both files
are written atomically; a kill leaves the previous pair intact.

`init_from` starts from a tracker checkpoint's weights (and its model config) instead of ImageNet;
`holdout` keeps the last share of every stream out of training (cyclesiam-adapt evaluates on it);
`deadline` (time.monotonic()) ends the run early like a finished one, with a checkpoint and model.
"""

from __future__ import annotations

import math
import shlex
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from cyclesiam_train import config as config_mod
from cyclesiam_train.config import Config
from cyclesiam.models.builder import build_model
from cyclesiam_train import distributed as dist_mod
from cyclesiam_train.cycle import STAT_KEYS, CycleModel
from cyclesiam_train.data import CycleDataset, StepSampler, describe, discover_streams, make_clips, to_device
from cyclesiam_train.loader_workers import release_handles, worker_context, worker_init
from cyclesiam_train.metrics_log import MetricsLog, Progress, plot_losses
from cyclesiam_train.seeds import build_seeds
from cyclesiam_train.train_state import (STATE_FILE, load_model_state, load_optimizer_state, read_state,
                                        remove_stale_temporaries, save_state, set_rng_state)

MODEL_FILE = "model.safetensors"


@dataclass
class TrainResult:
    run_dir: Path
    step: int  # steps completed
    final_loss: float  # mean total loss over the last log window (nan if no step ran)
    interrupted: bool  # stopped by a signal
    exit_code: int  # 0 done (or out of time), 128 + signal when stopped by a signal
    net: torch.nn.Module  # the trained SiameseNet (this rank's copy)


class StopSignals:
    """SIGINT/SIGTERM set a flag (the step finishes, a checkpoint is written); a second SIGINT aborts."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> "StopSignals":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: signals stay with the caller
                pass
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        print(f"\nsignal {signal.Signals(signum).name}: finishing this step, writing a checkpoint", file=sys.stderr)

    def restore(self) -> None:
        for sig, prev in self._previous.items():
            signal.signal(sig, prev)
        self._previous.clear()


def step_seed(seed: int, step: int, rank: int) -> int:
    """Deterministic per-(seed, step, rank) seed for torch RNG and label sampling."""
    return (int(seed) * 1_000_003 + int(step) * 7_919 + int(rank) * 104_729) % (2**63 - 1)


def head_frames(num_frames: int, holdout: float) -> int:
    """Frames of a stream left for training when its last `holdout` share is held out (at least 2)."""
    if not 0.0 <= holdout < 1.0:
        raise config_mod.ConfigError(f"holdout must be in [0, 1), got {holdout}")
    return min(num_frames, max(2, int(math.floor(num_frames * (1.0 - holdout)))))


def hold_out_tails(streams: Sequence[Any], holdout: float) -> None:
    """Shorten every stream to its head (training never samples the held-out tail)."""
    for s in streams:
        head = head_frames(s.num_frames, holdout)
        s.tail_frames = s.num_frames - head
        s.num_frames = head
        if s.stamps is not None:
            s.stamps, s.tail_stamps = s.stamps[:head], s.stamps[head:]


def learning_rate(cfg: config_mod.TrainConfig, step: int) -> float:
    """Linear warm-up from lr/warmup to lr over `warmup_steps`, then constant."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr


def backbone_frozen(cfg: config_mod.TrainConfig, step: int) -> bool:
    return cfg.freeze_backbone_steps < 0 or step < cfg.freeze_backbone_steps


def set_backbone_trainable(net: torch.nn.Module, trainable: bool) -> None:
    for p in net.backbone.parameters():
        p.requires_grad_(trainable)


def train_mode(net: torch.nn.Module, frozen: bool) -> None:
    """Train mode, with a frozen backbone's BatchNorm statistics kept fixed (eval)."""
    net.train()
    if frozen:
        net.backbone.eval()


def make_optimizer(net: torch.nn.Module, cfg: config_mod.TrainConfig) -> torch.optim.SGD:
    """SGD with two groups: heads/neck at lr, backbone at lr * backbone_lr_scale (its lr_scale kept in the group)."""
    backbone = list(net.backbone.parameters())
    ids = {id(p) for p in backbone}
    rest = [p for p in net.parameters() if id(p) not in ids]
    groups = [{"params": rest, "lr_scale": 1.0}, {"params": backbone, "lr_scale": float(cfg.backbone_lr_scale)}]
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def validate_train_config(cfg: Config, world: int) -> None:
    t = cfg.train
    err = config_mod.ConfigError
    if t.steps < 1:
        raise err(f"train.steps must be >= 1, got {t.steps}")
    if t.batch_size < 1 or t.batch_size % world:
        raise err(f"train.batch_size {t.batch_size} must be >= 1 and divisible by the world size {world}")
    if t.cycle_length < 2:
        raise err(f"train.cycle_length must be >= 2, got {t.cycle_length}")
    if t.frame_gap_min < 1 or t.frame_gap_max < t.frame_gap_min:
        raise err(f"need 1 <= train.frame_gap_min <= train.frame_gap_max, got {t.frame_gap_min}, {t.frame_gap_max}")
    if t.canvas_size < cfg.model.search_size:
        raise err(f"train.canvas_size {t.canvas_size} < model.search_size {cfg.model.search_size}")
    if t.checkpoint_every < 1 or t.log_every < 1:
        raise err("train.checkpoint_every and train.log_every must be >= 1")
    if not 0.0 <= t.gray_probability <= 1.0:
        raise err(f"train.gray_probability must be in [0, 1], got {t.gray_probability}")
    if not 0.0 <= t.illumination_jitter <= 1.0:
        raise err(f"train.illumination_jitter must be in [0, 1], got {t.illumination_jitter}")
    if not 0.0 <= t.rotation_jitter <= 180.0:
        raise err(f"train.rotation_jitter must be in [0, 180] degrees, got {t.rotation_jitter}")
    if not 0.0 <= t.hard_negatives <= 1.0:
        raise err(f"train.hard_negatives must be in [0, 1], got {t.hard_negatives}")
    if t.scale_rank_weight < 0 or t.scale_rank_radius < 0:
        raise err(f"train.scale_rank_weight and train.scale_rank_radius must be >= 0, got "
                  f"{t.scale_rank_weight}, {t.scale_rank_radius}")
    if t.scale_rank_template not in ("hop", "initial"):
        raise err(f"train.scale_rank_template must be hop or initial, got {t.scale_rank_template!r}")
    if t.scale_rank_weight > 0 and not cfg.tracker.scale_step > 1.0:
        raise err(f"train.scale_rank_weight needs tracker.scale_step > 1 (the second crop's scale), "
                  f"got {cfg.tracker.scale_step}")
    if cfg.train.seeds.box_mask not in ("ellipse", "rectangle"):
        raise err(f"train.seeds.box_mask must be ellipse or rectangle, got {cfg.train.seeds.box_mask!r}")


class Trainer:
    """Holds the run's pieces; `run()` trains from the current step to `train.steps`."""

    def __init__(self, cfg: Config, data: Sequence[str], run_dir: str | Path, *, resume: bool = False,
                 command: str = "", log: Callable[[str], None] = print, progress: bool = True,
                 init_from: str | Path | None = None, holdout: float = 0.0, deadline: float | None = None):
        self.cfg = cfg
        self.data = [str(p) for p in data]
        self.run_dir = Path(run_dir)
        self.command = command or " ".join(shlex.quote(a) for a in sys.argv)
        self.progress = progress
        self.info = dist_mod.setup(cfg.runtime.device)
        self.log = log if self.info.is_main else (lambda _msg: None)
        validate_train_config(cfg, self.info.world)
        state = None
        if resume:
            state = read_state(self.run_dir / STATE_FILE)
        elif (self.run_dir / STATE_FILE).exists():
            raise FileExistsError(f"{self.run_dir} already holds a training checkpoint: use --resume {self.run_dir} "
                                  f"or another --out")
        self.init_from, self.holdout, self.deadline = (str(init_from) if init_from else ""), float(holdout), deadline
        if state is not None:
            info = state[1].get("info", {})
            self.init_from, self.holdout = info.get("init_from", ""), float(info.get("holdout", 0.0))
        initial = self._initial_weights() if state is None and self.init_from else None
        self.streams = discover_streams(self.data, cfg.train.topics)
        if self.holdout > 0:
            hold_out_tails(self.streams, self.holdout)
        self.clips = make_clips(self.streams, cfg.train.clip_length)
        self.seeds, seed_desc = build_seeds(cfg.train.seeds, self.streams)
        self.log(describe(self.streams, self.clips, self.seeds, seed_desc))
        torch.manual_seed(cfg.train.seed)
        weights = "" if state is not None else (cfg.train.backbone_weights or "")
        self.net = build_model(cfg.model, None if initial is not None else (weights or None))
        if initial is not None:
            self.net.load_state_dict(initial, strict=True)
        self.net = self.net.to(self.info.device)
        self.model = CycleModel(self.net, cfg.model, cfg.tracker, cfg.train).to(self.info.device)
        self.optimizer = make_optimizer(self.net, cfg.train)
        self.use_amp = bool(cfg.train.amp) and self.info.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.step = 0
        if state is not None:
            self._restore(*state)
        self._frozen: bool | None = None
        self._ddp: torch.nn.Module | None = None

    # -- state ---------------------------------------------------------------------------
    def _initial_weights(self) -> dict[str, torch.Tensor]:
        """The init_from checkpoint's weights; the run takes its model config (the weights fix the shapes)."""
        from cyclesiam.checkpoint import read_checkpoint

        weights, model_cfg, _meta = read_checkpoint(self.init_from)
        if model_cfg != self.cfg.model:
            self.log(f"model config taken from {self.init_from} (backbone {model_cfg.backbone})")
            self.cfg.model = model_cfg
        return weights

    def _restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        where = str(self.run_dir / STATE_FILE)
        load_model_state(self.net, {k: v.to(self.info.device) for k, v in tensors.items()}, where)
        load_optimizer_state(self.optimizer, tensors, meta, where)
        set_rng_state(tensors, meta.get("rng", {}))
        if self.use_amp and meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        self.step = int(meta["step"])
        self.log(f"resumed {where} at step {self.step}")
        if self.info.is_main and self._model_step() != self.step:
            # a kill between the state's write and the model's leaves the model one interval behind; two such
            # kills in a row would leave it two behind: bring it level with the state before training on
            self.export(float(meta.get("info", {}).get("loss", math.nan)))
            self.log(f"model {self.run_dir / MODEL_FILE} rewritten at step {self.step} (it lagged the checkpoint)")

    def _model_step(self) -> int:
        """The step of RUN_DIR/model.safetensors, -1 when it is missing or unreadable."""
        from cyclesiam.checkpoint import read_checkpoint

        try:
            return int(read_checkpoint(self.run_dir / MODEL_FILE)[2]["provenance"]["steps"])
        except Exception:  # missing, partial or foreign: rewritten from the state
            return -1

    def info_dict(self, loss: float) -> dict[str, Any]:
        return {"command": self.command, "config": config_mod.to_dict(self.cfg),
                "data": [{"path": s.path, "topic": s.topic, "kind": s.kind, "frames": s.num_frames,
                          "bytes": s.size_bytes} for s in self.streams],
                "seed": self.cfg.train.seed, "steps": self.step, "loss": loss, "world_size": self.info.world,
                "init_from": self.init_from, "holdout": self.holdout}

    def save(self, loss: float) -> None:
        """The resumable state, then the model a tracker loads (both atomic)."""
        if self.info.is_main:
            save_state(self.run_dir / STATE_FILE, self.net, self.optimizer, self.step, self.info_dict(loss),
                       self.scaler.state_dict() if self.use_amp else None)
            self.export(loss)
        dist_mod.barrier(self.info)

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    # -- model wrapping ------------------------------------------------------------------
    def _wrapped(self) -> torch.nn.Module:
        """The module to call this step; (re)wraps in DDP when the set of trainable parameters changes."""
        frozen = backbone_frozen(self.cfg.train, self.step)
        if frozen != self._frozen:
            set_backbone_trainable(self.net, not frozen)
            if self._frozen is not None:
                self.log(f"step {self.step}: backbone {'frozen' if frozen else 'unfrozen'}")
            self._frozen = frozen
            self._ddp = None
        train_mode(self.net, frozen)
        if self._ddp is None:
            if self.info.enabled:
                ids = [self.info.device.index] if self.info.device.type == "cuda" else None
                self._ddp = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)
            else:
                self._ddp = self.model
        return self._ddp

    def _loader(self) -> DataLoader:
        t = self.cfg.train
        dataset = CycleDataset(self.streams, self.clips, self.seeds, t, self.cfg.model,
                               length=t.steps * t.batch_size)
        sampler = StepSampler(self.step, t.steps, t.batch_size, self.info.rank, self.info.world)
        workers = max(0, int(t.workers))
        if workers:
            release_handles(self.streams)
        return DataLoader(dataset, batch_size=sampler.local, sampler=sampler, num_workers=workers,
                          worker_init_fn=worker_init if workers else None, drop_last=False,
                          multiprocessing_context=worker_context() if workers else None,
                          pin_memory=self.info.device.type == "cuda", prefetch_factor=2 if workers else None,
                          persistent_workers=False)

    # -- one step ------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Forward the cycle, backward, clip, SGD step. Returns stats in STAT_KEYS order (rank mean)."""
        t = self.cfg.train
        module = self._wrapped()
        seed = step_seed(t.seed, self.step, self.info.rank)
        torch.manual_seed(seed)
        lr = learning_rate(t, self.step)
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        batch = to_device(batch, self.info.device)
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.use_amp):
            loss, stats = module(batch, seed)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"step {self.step}: loss is {loss.item()} (stats {stats.tolist()}); "
                                     f"lower train.lr or check the seeds")
        self.scaler.scale(loss).backward()
        if t.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            params = [p for p in self.net.parameters() if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        with torch.no_grad():
            dist_mod.average_buffers(self.net, self.info)
        self.step += 1
        return dist_mod.all_mean(stats.detach(), self.info)

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> TrainResult:
        t = self.cfg.train
        if self.info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.run_dir)
        dist_mod.barrier(self.info)
        metrics = MetricsLog(self.run_dir, enabled=self.info.is_main, resume_step=self.step)
        bar = Progress(t.steps, self.step, enabled=self.progress and self.info.is_main)
        signals = StopSignals().install()
        recent: list[float] = []
        interrupted = False
        try:
            if self.step < t.steps:
                tick = time.perf_counter()
                for batch in self._loader():
                    stats = self.train_step(batch).tolist()
                    now = time.perf_counter()
                    cps = t.batch_size / max(now - tick, 1e-9)
                    tick = now
                    recent = (recent + [stats[0]])[-t.log_every:]
                    done = self.step  # steps completed
                    bar.update(stats[0], cps, stats[4])
                    if (done - 1) % t.log_every == 0 or done == t.steps:
                        metrics.write(self._record(done - 1, stats, cps))
                    if t.plot_every and done % t.plot_every == 0 and self.info.is_main:
                        plot_losses(self.run_dir)
                    stop = dist_mod.any_rank(signals.signum is not None or self.out_of_time(), self.info)
                    if stop or done % t.checkpoint_every == 0 or done == t.steps:
                        self.save(_mean(recent))
                    if stop:
                        interrupted = signals.signum is not None
                        break
        finally:
            signals.restore()
            bar.close()
        final = _mean(recent)
        if interrupted:
            self.log(f"stopped at step {self.step}; checkpoint {self.run_dir / STATE_FILE}; continue with "
                     f"--resume {self.run_dir}")
            code = 128 + int(signals.signum or signal.SIGTERM)
        else:
            code = 0
            if self.info.is_main:
                plot_losses(self.run_dir) if (self.run_dir / "metrics.jsonl").is_file() else None
                self.log(f"done: {self.step} steps, final loss {final:.4f}; model {self.run_dir / MODEL_FILE}"
                         if recent else f"already finished at step {self.step}; model {self.run_dir / MODEL_FILE}"
                         " unchanged")
        dist_mod.barrier(self.info)
        return TrainResult(self.run_dir, self.step, final, interrupted, code, self.net)

    def _record(self, step: int, stats: list[float], cps: float) -> dict[str, Any]:
        rec: dict[str, Any] = {"step": step}
        rec.update({k: float(v) for k, v in zip(STAT_KEYS, stats)})
        if self.cfg.train.scale_rank_weight <= 0:  # the term is off: no flat zero curves
            rec.pop("rank")
            rec.pop("rank_acc")
        rec.update({"lr": self.optimizer.param_groups[0]["lr"], "cycles_per_s": cps,
                    "backbone_frozen": bool(self._frozen), "time": time.time()})
        return rec

    def export(self, final_loss: float) -> Path:
        """The trained network as RUN_DIR/model.safetensors (what cyclesiam-track and the node load)."""
        from cyclesiam.checkpoint import save_checkpoint

        path = self.run_dir / MODEL_FILE
        provenance = self.info_dict(final_loss)
        save_checkpoint(path, self.net, self.cfg.model, provenance=provenance)
        return path

    def close(self) -> None:
        dist_mod.teardown(self.info)


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else math.nan


def train(cfg: Config, data: Sequence[str], run_dir: str | Path, *, resume: bool = False, command: str = "",
          log: Callable[[str], None] = print, progress: bool = True, init_from: str | Path | None = None,
          holdout: float = 0.0, deadline: float | None = None) -> TrainResult:
    """Train (or resume) a run; returns when `train.steps` are done, the deadline passed or a signal stopped it."""
    trainer = Trainer(cfg, data, run_dir, resume=resume, command=command, log=log, progress=progress,
                      init_from=init_from, holdout=holdout, deadline=deadline)
    try:
        return trainer.run()
    finally:
        trainer.close()
