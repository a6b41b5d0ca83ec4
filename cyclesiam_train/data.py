"""Training data: streams (bag topics, videos, image folders), clips, and the cycle dataset.

`discover_streams` opens every PATH lazily (bags are indexed by timestamps only, frames are
decoded on demand in the DataLoader workers). A *stream* is one image topic of one bag, or
one video / image folder. Streams are cut into *clips* (`train.clip_length`, 0 = whole
stream); all frames of one cycle come from one clip.

`CycleDataset[index]` is a pure function of (train.seed, index): the same global sample
index always gives the same frames, seed box, search shift and jitter, which makes resume
exact and lets ranks shard the index space (`StepSampler`). Each sample holds "canvas"
crops of its frames (see `cyclesiam_train.cycle`): `canvas_size` squares centred on the
initial box of t1, at t1's search-crop scale, padded with each frame's mean colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from cyclesiam_train.config import ModelConfig, TrainConfig
from cyclesiam.crop import crop_window, image_mean, template_crop_size, to_bgr
from cyclesiam.sources import BagSource, FrameSource, SourceError, is_bag, list_image_topics, open_source
from cyclesiam_train.seeds import Seed, box_mask, random_box


class DataError(SourceError):
    """The training data cannot be used as given; the message names the file/topic."""


@dataclass
class Stream:
    """One frame stream: a bag topic, a video file or an image folder."""

    path: str
    topic: str  # "" for videos and folders
    kind: str  # "bag" | "video" | "folder"
    source: FrameSource = field(repr=False)
    num_frames: int = 0
    stamps: np.ndarray | None = field(default=None, repr=False)  # ns per frame (bags), else None
    size_bytes: int = 0
    # frames cut off the end and kept out of training (cyclesiam-adapt's check), with their stamps:
    # a seed there is skipped, not an error (trainer.hold_out_tails)
    tail_frames: int = 0
    tail_stamps: np.ndarray | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"{self.path}:{self.topic}" if self.topic else self.path


@dataclass(frozen=True)
class Clip:
    stream: int
    start: int  # first frame (inclusive)
    stop: int  # last frame + 1

    def __len__(self) -> int:
        return self.stop - self.start


def path_size(path: str | Path) -> int:
    """Bytes on disk of a file, or of every file under a directory."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def discover_streams(paths: Sequence[str | Path], topics: Sequence[str] = ()) -> list[Stream]:
    """Open every path (bag / video / image folder); bags contribute one stream per image topic.

    Without `topics` every image topic of every bag is used. With `topics`, each bag must hold at
    least one of them and each topic must exist in some bag. Errors name the file.
    """
    if not paths:
        raise DataError("no training data: give at least one --data PATH")
    wanted = [t for t in topics if t]
    streams: list[Stream] = []
    used_topics: set[str] = set()
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise DataError(f"{p}: not found")
        size = path_size(p)
        if is_bag(p):
            listing = list_image_topics(p)
            available = [t.topic for t in listing]
            if not available:
                raise DataError(f"{p}: no sensor_msgs/Image or CompressedImage topics in this bag")
            if wanted:
                chosen = [t for t in available if t in wanted]
                if not chosen:
                    raise DataError(f"{p}: none of the requested topics {wanted} is an image topic here; "
                                    f"image topics: {available}")
            else:  # every image topic that has frames; empty ones are skipped (named when all are empty)
                chosen = [t.topic for t in listing if t.count > 0]
                if not chosen:
                    raise DataError(f"{p}: zero frames: every image topic is empty ({available})")
            for topic in chosen:
                src = BagSource(p, topic)
                streams.append(Stream(str(p), topic, "bag", src, len(src), np.asarray(src.stamps), size))
                used_topics.add(topic)
        else:
            src = open_source(p)
            kind = "folder" if p.is_dir() else "video"
            n = len(src)
            if n == 0:
                raise DataError(f"{p}: zero frames")
            streams.append(Stream(str(p), "", kind, src, n, None, size))
    missing = [t for t in wanted if t not in used_topics]
    if missing and any(s.kind == "bag" for s in streams):
        raise DataError(f"topic(s) {missing} not found in any bag: {[s.path for s in streams if s.kind == 'bag']}")
    for s in streams:
        if s.num_frames < 2:
            raise DataError(f"{s.name}: {s.num_frames} frame(s); a cycle needs at least 2")
    return streams


def make_clips(streams: Sequence[Stream], clip_length: int) -> list[Clip]:
    """Cut each stream into clips of `clip_length` frames (0 = whole stream); clips < 2 frames are dropped."""
    clips = []
    for k, s in enumerate(streams):
        step = s.num_frames if clip_length <= 0 else clip_length
        for start in range(0, s.num_frames, step):
            stop = min(start + step, s.num_frames)
            if stop - start >= 2:
                clips.append(Clip(k, start, stop))
    if not clips:
        raise DataError("no clip of at least 2 frames in the training data")
    return clips


def cycle_frames(t1: int, clip: Clip, n: int, gap_min: int, gap_max: int, rng: np.random.Generator) -> list[int]:
    """t1 and n-1 further frames, each a random gap in [gap_min, gap_max] from the previous, inside the clip.

    The direction (forward/backward in time) is random per sample; a hop that would leave the clip turns
    around, and gaps shrink to what the clip allows (never 0 when the clip has 2 frames).
    """
    direction = 1 if rng.random() < 0.5 else -1
    frames = [t1]
    for _ in range(n - 1):
        gap = int(rng.integers(max(1, gap_min), max(gap_min, gap_max) + 1))
        cur = frames[-1]
        nxt = cur + direction * gap
        if not clip.start <= nxt < clip.stop:
            direction = -direction
            nxt = cur + direction * gap
        nxt = min(max(nxt, clip.start), clip.stop - 1)
        if nxt == cur:  # clip shorter than the gap on both sides: take any other frame
            nxt = cur + 1 if cur + 1 < clip.stop else cur - 1
        frames.append(nxt)
    return frames


class CycleDataset(Dataset):
    """Cycle samples over clips; `len` is the virtual size (steps x global batch)."""

    def __init__(self, streams: Sequence[Stream], clips: Sequence[Clip], seeds: Sequence[Seed] | None,
                 train_cfg: TrainConfig, model_cfg: ModelConfig, length: int):
        self.streams = list(streams)
        self.clips = list(clips)
        self.seeds = list(seeds) if seeds is not None else None
        self.cfg = train_cfg
        self.model_cfg = model_cfg
        self.context = train_cfg.context_amount
        self.length = int(length)
        if self.seeds is not None and not self.seeds:
            raise DataError("seed source gave zero seeds")
        weights = np.array([len(c) for c in self.clips], dtype=np.float64)
        self._clip_p = weights / weights.sum()

    def __len__(self) -> int:
        return self.length

    # -- sampling ----------------------------------------------------------------------
    def _clip_of(self, stream: int, frame: int) -> Clip:
        for c in self.clips:
            if c.stream == stream and c.start <= frame < c.stop:
                return c
        s = self.streams[stream]
        return Clip(stream, 0, s.num_frames)

    def sample_plan(self, index: int) -> dict:
        """Which frames, box, shift and jitter sample `index` uses (no decoding except for random seeds)."""
        cfg = self.cfg
        rng = np.random.default_rng([int(cfg.seed) & 0xFFFFFFFF, int(index)])
        n = max(2, cfg.cycle_length)
        if self.seeds is not None:
            seed = self.seeds[int(rng.integers(len(self.seeds)))]
            clip = self._clip_of(seed.stream, seed.frame)
            t1, box, mask = seed.frame, seed.box, seed.mask
        else:
            clip = self.clips[int(rng.choice(len(self.clips), p=self._clip_p))]
            t1, box, mask = int(rng.integers(clip.start, clip.stop)), None, ""
        frames = cycle_frames(t1, clip, n, cfg.frame_gap_min, cfg.frame_gap_max, rng)
        shift = rng.uniform(-cfg.search_shift, cfg.search_shift, 2) if cfg.search_shift > 0 else np.zeros(2)
        j = cfg.search_scale_jitter
        jitter = float(np.exp(rng.uniform(-j, j))) if j > 0 else 1.0
        # drawn only when enabled, so runs without it keep exactly the same samples
        gray = bool(rng.random() < cfg.gray_probability) if cfg.gray_probability > 0 else False
        # its own stream, so the box and crops of a sample are the same with and without it
        light, light_rng = cfg.illumination_jitter, np.random.default_rng([int(cfg.seed) & 0xFFFFFFFF, int(index), 1])
        gains = np.exp(light_rng.uniform(-light, light, len(frames)))
        offsets = light_rng.uniform(-light, light, len(frames)) * 50.0
        turn = cfg.rotation_jitter
        angles = np.random.default_rng([int(cfg.seed) & 0xFFFFFFFF, int(index), 2]).uniform(-turn, turn, len(frames))
        angles[0] = 0.0  # the frame with the box and the loss stays upright
        return {"stream": clip.stream, "frames": frames, "box": box, "mask": mask, "shift": shift,
                "jitter": jitter, "gray": gray, "gains": gains, "offsets": offsets, "angles": angles, "rng": rng}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        plan = self.sample_plan(index)
        stream = self.streams[plan["stream"]]
        images = [self._read(stream, f) for f in plan["frames"]]
        box = plan["box"]
        if box is None:
            box = random_box(images[0], plan["rng"], self.cfg.seeds)
        if plan["gray"]:
            images = [to_gray_bgr(img) for img in images]
        if self.cfg.illumination_jitter > 0:
            images = [relight(img, g, o) for img, g, o in zip(images, plan["gains"], plan["offsets"])]
        return self._build(images, box, plan)

    def _read(self, stream: Stream, frame: int) -> np.ndarray:
        try:
            return stream.source.frame(frame)
        except SourceError:
            raise
        except Exception as exc:  # decoding errors from OpenCV/rosbags-image
            raise DataError(f"{stream.name}: cannot read frame {frame}: {type(exc).__name__}: {exc}") from exc

    # -- canvas crops ------------------------------------------------------------------
    def _build(self, images: list[np.ndarray], box_xywh: Sequence[float], plan: dict) -> dict[str, torch.Tensor]:
        mc, cfg = self.model_cfg, self.cfg
        x, y, w, h = (float(v) for v in box_xywh)
        cx, cy = x + w / 2, y + h / 2
        s_x = template_crop_size(w, h, self.context) * mc.search_size / mc.template_size
        k = mc.search_size / s_x  # canvas px per image px
        c = int(cfg.canvas_size)
        side = c / k  # canvas side in image px
        frames = np.empty((len(images), 3, c, c), dtype=np.uint8)
        pads = np.empty((len(images), 3), dtype=np.float32)
        bounds = np.empty((len(images), 4), dtype=np.float32)
        for n, (img, angle) in enumerate(zip(images, plan["angles"])):
            pad = image_mean(img)
            hh, ww = img.shape[:2]
            frames[n] = crop_window(img, (cx, cy), side, c, pad, angle_deg=float(angle)).transpose(2, 0, 1)
            # the image rectangle in canvas pixels (turned with the frame; exact when angle is 0)
            corners = rotate_points(np.array([[0, 0], [ww, 0], [0, hh], [ww, hh]], np.float64) - (cx, cy), angle)
            corners = corners * k + c / 2
            bounds[n] = [*corners.min(axis=0), *corners.max(axis=0)]
            pads[n] = pad
        box_c = np.array([c / 2, c / 2, w * k, h * k], dtype=np.float32)
        mask = self._mask(images[0], plan["mask"], (cx, cy), side, c, box_c)
        return {
            "frames": torch.from_numpy(frames),
            "pad": torch.from_numpy(pads),
            "bounds": torch.from_numpy(bounds),
            "box": torch.from_numpy(box_c),
            "mask": torch.from_numpy(mask),
            "scale": torch.tensor(k, dtype=torch.float32),
            "shift": torch.from_numpy(np.asarray(plan["shift"], dtype=np.float32)),
            "jitter": torch.tensor(plan["jitter"], dtype=torch.float32),
        }

    def _mask(self, image: np.ndarray, mask_path: str, center: tuple[float, float], side: float, c: int,
              box_c: np.ndarray) -> np.ndarray:
        if mask_path:
            m = cv2.imread(mask_path, cv2.IMREAD_GRAYSCALE)
            if m is None:
                raise DataError(f"{mask_path}: cannot read seed mask")
            if m.shape[:2] != image.shape[:2]:
                raise DataError(f"{mask_path}: mask {m.shape[1]}x{m.shape[0]} does not match the frame "
                                f"{image.shape[1]}x{image.shape[0]}")
            m = (m > 0).astype(np.uint8) * 255
            return (crop_window(m, center, side, c, 0.0) >= 128).astype(np.uint8)
        return box_mask(c, c, box_c, self.cfg.seeds.box_mask)


def rotate_points(points: np.ndarray, angle_deg: float) -> np.ndarray:
    """Points [N, 2] (x right, y down) turned by `angle_deg` as they appear in a canvas cut rotated
    by that angle (OpenCV's sense: positive = the content turns counter-clockwise on screen)."""
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    return points @ rot.T


def to_gray_bgr(image: np.ndarray) -> np.ndarray:
    """The image as grey in three equal channels (what a mono camera gives the tracker)."""
    return to_bgr(cv2.cvtColor(to_bgr(image), cv2.COLOR_BGR2GRAY))


def relight(image: np.ndarray, gain: float, offset: float) -> np.ndarray:
    """gain x image + offset, clipped to uint8 (train.illumination_jitter)."""
    relit = to_bgr(image).astype(np.float32) * float(gain) + float(offset)
    return np.clip(np.rint(relit), 0, 255).astype(np.uint8)


class StepSampler(Sampler[int]):
    """Global sample indices of steps [start_step, steps) for one rank: rank r of W takes
    index step * B + r * (B / W) + j, j < B / W (disjoint across ranks, identical on resume)."""

    def __init__(self, start_step: int, steps: int, global_batch: int, rank: int = 0, world: int = 1):
        if global_batch % world:
            raise ValueError(f"train.batch_size {global_batch} is not divisible by the world size {world}")
        self.start, self.steps, self.batch = int(start_step), int(steps), int(global_batch)
        self.rank, self.world = int(rank), int(world)
        self.local = self.batch // self.world

    def __iter__(self) -> Iterator[int]:
        for step in range(self.start, self.steps):
            base = step * self.batch + self.rank * self.local
            yield from range(base, base + self.local)

    def __len__(self) -> int:
        return max(0, self.steps - self.start) * self.local


def describe(streams: Sequence[Stream], clips: Sequence[Clip], seeds: Sequence[Seed] | None, seed_source: str) -> str:
    """Human summary printed before training: sources, topics, frames, clips, seeds."""
    lines = [f"training data: {len(streams)} stream(s), {sum(s.num_frames for s in streams)} frames, "
             f"{len(clips)} clip(s)"]
    for k, s in enumerate(streams):
        n_clips = sum(1 for c in clips if c.stream == k)
        n_seeds = sum(1 for sd in seeds if sd.stream == k) if seeds is not None else None
        topic = f" topic {s.topic}" if s.topic else ""
        seeds_txt = f", {n_seeds} seed(s)" if n_seeds is not None else ""
        lines.append(f"  [{s.kind}] {s.path}{topic}: {s.num_frames} frames, {n_clips} clip(s){seeds_txt}, "
                     f"{s.size_bytes / 1e6:.1f} MB")
    if seeds is None:
        lines.append("seeds: random label-free boxes (drawn per sample)")
    else:
        lines.append(f"seeds: {len(seeds)} from {seed_source}")
    return "\n".join(lines)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) for k, v in batch.items()}
