"""Initial targets of the training clips (the only "label" of cycle training).

Three sources (`train.seeds.source`):
  file   - a YAML seeds file: a list (or {seeds: [...]}) of entries
             {bag: PATH, topic: T, stamp: SECONDS | {sec, nanosec} | NANOSECONDS_INT, box: [x, y, w, h],
              mask: optional image path (relative to the seeds file; non-zero = object)}
           `frame: N` may replace `stamp` (the N-th frame of the stream; handy for videos/folders).
  topic  - a vision_msgs/Detection2DArray topic recorded in the bag: every detection becomes a seed at
           the image frame whose stamp matches the detection header stamp (within stamp_tolerance).
  random - label-free boxes drawn per sample (UDT-style): side a fraction of the shorter image
           side, log-uniform aspect ratio; of `random_candidates` draws the best by `random_score` is kept
           (most textured, or colours most unlike its surrounding ring: object-like).

vision_msgs is registered in the rosbags typestore from its message definitions (DESIGN.md section 4),
so bags written without embedded definitions (SQLite3) still decode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import yaml

from cyclesiam.bag_types import DETECTION_ARRAY, vision_msgs_typestore
from cyclesiam_train.config import SeedConfig



class SeedError(ValueError):
    """A seeds file, seed entry or seed topic is invalid; the message names the file/entry."""


@dataclass(frozen=True)
class SeedSpec:
    """One seed as written by the user (not yet matched to a frame)."""

    bag: str
    topic: str
    box: tuple[float, float, float, float]  # x, y, w, h in image pixels
    stamp_ns: int | None = None
    frame: int | None = None
    mask: str = ""  # absolute path of a mask image, "" = derive from the box
    origin: str = ""  # "seeds.yaml entry 3" / "topic /dets message 12" for error messages


@dataclass(frozen=True)
class Seed:
    """A seed matched to a frame of a stream (index into the training streams)."""

    stream: int
    frame: int
    box: tuple[float, float, float, float]
    mask: str = ""


# -- seeds file ----------------------------------------------------------------------------
def parse_stamp(value: Any, where: str) -> int:
    """Seconds (float), nanoseconds (int > 1e12) or {sec, nanosec} -> integer nanoseconds."""
    if isinstance(value, dict):
        try:
            return int(value["sec"]) * 1_000_000_000 + int(value.get("nanosec", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise SeedError(f"{where}: stamp mapping needs integer 'sec' (and 'nanosec'), got {value!r}") from exc
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise SeedError(f"{where}: stamp must be seconds, nanoseconds or {{sec, nanosec}}, got {value!r}")
    if isinstance(value, int) and abs(value) > 10**12:
        return int(value)
    return int(round(float(value) * 1e9))


def parse_box(value: Any, where: str) -> tuple[float, float, float, float]:
    """[x, y, w, h] with finite values and positive size."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise SeedError(f"{where}: box must be [x, y, w, h], got {value!r}")
    try:
        box = tuple(float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise SeedError(f"{where}: box values must be numbers, got {value!r}") from exc
    if not all(math.isfinite(v) for v in box) or box[2] <= 0 or box[3] <= 0:
        raise SeedError(f"{where}: box must be finite with positive width and height, got {value!r}")
    return box  # type: ignore[return-value]


def load_seed_file(path: str | Path) -> list[SeedSpec]:
    """Parse a seeds YAML file; relative bag/mask paths are relative to the file."""
    p = Path(path)
    if not p.is_file():
        raise SeedError(f"seeds file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise SeedError(f"{p}: not valid YAML: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("seeds")
    if not isinstance(data, list) or not data:
        raise SeedError(f"{p}: expected a non-empty list of seeds (or a mapping with key 'seeds')")
    base = p.resolve().parent
    specs = []
    for n, entry in enumerate(data):
        where = f"{p} entry {n}"
        if not isinstance(entry, dict):
            raise SeedError(f"{where}: must be a mapping, got {entry!r}")
        unknown = set(entry) - {"bag", "topic", "stamp", "frame", "box", "mask"}
        if unknown:
            raise SeedError(f"{where}: unknown key(s) {sorted(unknown)}")
        if "bag" not in entry or "box" not in entry:
            raise SeedError(f"{where}: needs 'bag' and 'box'")
        if ("stamp" in entry) == ("frame" in entry):
            raise SeedError(f"{where}: give exactly one of 'stamp' or 'frame'")
        frame = None
        if "frame" in entry:
            if isinstance(entry["frame"], bool) or not isinstance(entry["frame"], int) or entry["frame"] < 0:
                raise SeedError(f"{where}: frame must be a non-negative integer, got {entry['frame']!r}")
            frame = int(entry["frame"])
        mask = ""
        if entry.get("mask"):
            mask = str((base / str(entry["mask"])).resolve())
            if not Path(mask).is_file():
                raise SeedError(f"{where}: mask file not found: {mask}")
        specs.append(SeedSpec(
            bag=str((base / str(entry["bag"])).resolve()),
            topic=str(entry.get("topic") or ""),
            box=parse_box(entry["box"], where),
            stamp_ns=parse_stamp(entry["stamp"], where) if "stamp" in entry else None,
            frame=frame, mask=mask, origin=where))
    return specs


def write_seed_file(path: str | Path, seeds: Sequence[dict[str, Any]]) -> Path:
    """Write a seeds YAML file (the format `load_seed_file` reads)."""
    p = Path(path)
    p.write_text(yaml.safe_dump({"seeds": list(seeds)}, sort_keys=False))
    return p


# -- recorded Detection2DArray topic -------------------------------------------------------
def read_detection_topic(bag: str | Path, topic: str, image_topic: str = "") -> list[SeedSpec]:
    """Every detection of a recorded vision_msgs/Detection2DArray topic -> SeedSpec (stamp = header stamp)."""
    from rosbags.highlevel import AnyReader

    bag = Path(bag)
    try:
        reader = AnyReader([bag], default_typestore=vision_msgs_typestore())
        reader.open()
    except Exception as exc:  # rosbags raises several types for unreadable bags
        raise SeedError(f"{bag}: cannot read bag for seed topic {topic!r}: {exc}") from exc
    try:
        conns = [c for c in reader.connections if c.topic == topic]
        if not conns:
            topics = sorted({c.topic for c in reader.connections})
            raise SeedError(f"{bag}: seed topic {topic!r} not found; topics: {topics}")
        bad = [c.msgtype for c in conns if c.msgtype != DETECTION_ARRAY]
        if bad:
            raise SeedError(f"{bag}: seed topic {topic!r} has type {bad[0]}, expected {DETECTION_ARRAY}")
        specs = []
        for n, (conn, _t, raw) in enumerate(reader.messages(connections=conns)):
            msg = reader.deserialize(raw, conn.msgtype)
            for d, det in enumerate(msg.detections):
                stamp = det.header.stamp if (det.header.stamp.sec or det.header.stamp.nanosec) else msg.header.stamp
                w, h = float(det.bbox.size_x), float(det.bbox.size_y)
                cx, cy = float(det.bbox.center.position.x), float(det.bbox.center.position.y)
                where = f"{bag} topic {topic} message {n} detection {d}"
                try:
                    box = parse_box([cx - w / 2, cy - h / 2, w, h], where)
                except SeedError:
                    continue  # degenerate detections are skipped, not fatal
                specs.append(SeedSpec(bag=str(bag), topic=image_topic, box=box,
                                      stamp_ns=int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec), origin=where))
        if not specs:
            raise SeedError(f"{bag}: seed topic {topic!r} holds no usable detections")
        return specs
    finally:
        reader.close()


# -- matching seeds to frames --------------------------------------------------------------
def match_stamp(stamps: np.ndarray, stamp_ns: int, tolerance_s: float) -> int | None:
    """Index of the stamp nearest to `stamp_ns` (sorted or not) if within the tolerance, else None."""
    if len(stamps) == 0:
        return None
    diff = np.abs(stamps.astype(np.int64) - np.int64(stamp_ns))
    i = int(np.argmin(diff))
    return i if diff[i] <= tolerance_s * 1e9 else None


def resolve_seeds(specs: Sequence[SeedSpec], streams: Sequence[Any], tolerance_s: float) -> list[Seed]:
    """Match seed specs to (stream, frame). `streams` have .path, .topic, .num_frames, .stamps (ns array).

    A seed whose stream is not among the training streams, or whose stamp matches no frame, is an error
    naming the seed: silently dropping the user's labels would be worse. A seed on a stream's held-out
    tail (`tail_frames`, `tail_stamps`: cyclesiam-adapt keeps it for its check) is left out
    (`build_seeds` says how many).
    """
    out = []
    for spec in specs:
        cands = [k for k, s in enumerate(streams)
                 if _same_path(s.path, spec.bag) and (not spec.topic or s.topic == spec.topic)]
        if not cands:
            known = sorted({f"{s.path} {s.topic}".strip() for s in streams})
            raise SeedError(f"{spec.origin}: no training stream for bag {spec.bag!r} topic {spec.topic!r}; "
                            f"streams: {known}")
        if len(cands) > 1:
            topics = [streams[k].topic for k in cands]
            raise SeedError(f"{spec.origin}: bag {spec.bag} has several image topics {topics}: "
                            f"name one (seed 'topic', or seeds.image_topic for a detection topic)")
        k = cands[0]
        s = streams[k]
        if spec.frame is not None:
            if s.num_frames <= spec.frame < s.num_frames + s.tail_frames:
                continue
            if spec.frame >= s.num_frames:
                raise SeedError(f"{spec.origin}: frame {spec.frame} out of range ({s.num_frames} frames)")
            frame = spec.frame
        else:
            if s.stamps is None:
                raise SeedError(f"{spec.origin}: {s.path} has no timestamps ({s.kind}); give 'frame: N' instead of 'stamp'")
            every = np.asarray(s.stamps) if s.tail_stamps is None else np.concatenate([s.stamps, s.tail_stamps])
            found = match_stamp(every, int(spec.stamp_ns or 0), tolerance_s)  # nearest frame, held out or not
            if found is not None and found >= s.num_frames:
                continue
            if found is None:
                raise SeedError(f"{spec.origin}: no frame of {s.path} {s.topic} within {tolerance_s}s of "
                                f"stamp {int(spec.stamp_ns or 0) / 1e9:.9f}")
            frame = found
        out.append(Seed(stream=k, frame=frame, box=spec.box, mask=spec.mask))
    return out


def _same_path(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


# -- label-free random boxes ---------------------------------------------------------------
def texture_map(image: np.ndarray, max_side: int = 160) -> tuple[np.ndarray, float]:
    """Integral image of the gradient magnitude on a downscaled grey copy -> (integral, downscale factor)."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    f = min(1.0, max_side / max(grey.shape[:2]))
    small = cv2.resize(grey, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1.0 else grey
    small = small.astype(np.float32)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    return cv2.integral(np.sqrt(gx * gx + gy * gy)), f


RANDOM_SCORES = ("texture", "contrast")


def _small_box_corners(x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray, f: float,
                       shape: Sequence[int]) -> tuple[np.ndarray, ...]:
    """Candidate boxes (image px) -> integer corners (x0, y0, x1, y1) on a map downscaled by f, non-empty."""
    x0 = np.clip(np.floor(x * f).astype(int), 0, shape[1] - 1)
    y0 = np.clip(np.floor(y * f).astype(int), 0, shape[0] - 1)
    x1 = np.clip(np.maximum(np.ceil((x + w) * f).astype(int), x0 + 1), 1, shape[1])
    y1 = np.clip(np.maximum(np.ceil((y + h) * f).astype(int), y0 + 1), 1, shape[0])
    return x0, y0, x1, y1


def texture_scores(image: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Mean gradient magnitude inside each candidate box."""
    integral, f = texture_map(image)
    x0, y0, x1, y1 = _small_box_corners(x, y, w, h, f, (integral.shape[0] - 1, integral.shape[1] - 1))
    total = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
    return total / ((x1 - x0) * (y1 - y0))


def colour_bins(image: np.ndarray, max_side: int = 160) -> tuple[np.ndarray, int, float]:
    """Downscaled image quantised to histogram bins (4x4x4 colours, 16 grey levels) -> (bins, n_bins, factor)."""
    f = min(1.0, max_side / max(image.shape[:2]))
    small = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1.0 else image
    if small.ndim == 3 and small.shape[2] >= 3 and not (np.array_equal(small[..., 0], small[..., 1])
                                                        and np.array_equal(small[..., 1], small[..., 2])):
        q = (small[..., :3] // 64).astype(np.int32)
        return q[..., 0] * 16 + q[..., 1] * 4 + q[..., 2], 64, f
    grey = small if small.ndim == 2 else small[..., 0]
    return (grey // 16).astype(np.int32), 16, f


def contrast_scores(image: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray,
                    ring: float = 0.25) -> np.ndarray:
    """Chi-square distance (0..1) between the colour histogram inside each box and that of the ring
    around it (the box grown by `ring` x its size on every side, clipped to the image)."""
    bins, n_bins, f = colour_bins(image)
    shape = bins.shape
    ix0, iy0, ix1, iy1 = _small_box_corners(x, y, w, h, f, shape)
    ox0, oy0, ox1, oy1 = _small_box_corners(x - ring * w, y - ring * h, w * (1 + 2 * ring), h * (1 + 2 * ring), f, shape)
    scores = np.zeros(len(x))
    for i in range(len(x)):
        inner = np.bincount(bins[iy0[i]:iy1[i], ix0[i]:ix1[i]].ravel(), minlength=n_bins).astype(np.float64)
        outer = np.bincount(bins[oy0[i]:oy1[i], ox0[i]:ox1[i]].ravel(), minlength=n_bins) - inner
        if outer.sum() <= 0:
            continue  # box fills the image: no surrounding to compare with
        p, q = inner / inner.sum(), outer / outer.sum()
        scores[i] = 0.5 * float(np.sum((p - q) ** 2 / np.maximum(p + q, 1e-12)))
    return scores


def random_box(image: np.ndarray, rng: np.random.Generator, cfg: SeedConfig) -> tuple[float, float, float, float]:
    """A label-free box (x, y, w, h) inside the image: of `cfg.random_candidates` draws, the best by
    `cfg.random_score` (texture: most gradient energy; contrast: most unlike its surrounding ring)."""
    if cfg.random_score not in RANDOM_SCORES:
        raise ValueError(f"train.seeds.random_score must be one of {RANDOM_SCORES}, got {cfg.random_score!r}")
    h_img, w_img = image.shape[:2]
    short = min(h_img, w_img)
    n = max(1, int(cfg.random_candidates))
    side = rng.uniform(cfg.random_min_size, cfg.random_max_size, n) * short
    log_a = math.log(max(1.0, cfg.random_max_aspect))
    aspect = np.exp(rng.uniform(-log_a, log_a, n))  # w / h
    w = np.minimum(side * np.sqrt(aspect), w_img - 1.0)
    h = np.minimum(side / np.sqrt(aspect), h_img - 1.0)
    x = rng.uniform(0, 1, n) * (w_img - w)
    y = rng.uniform(0, 1, n) * (h_img - h)
    best = 0
    if n > 1:
        score = texture_scores if cfg.random_score == "texture" else contrast_scores
        best = int(np.argmax(score(image, x, y, w, h)))
    return float(x[best]), float(y[best]), float(w[best]), float(h[best])


def box_mask(height: int, width: int, box_cxcywh: Sequence[float], kind: str = "ellipse") -> np.ndarray:
    """uint8 {0, 1} mask of a box (cx, cy, w, h) in continuous pixel coordinates: inscribed ellipse or rectangle.

    Ellipse by default: for compact objects the inscribed ellipse overlaps the silhouette better than
    the full box (whose corners are mostly background), so the mask head learns object-like blobs.
    """
    cx, cy, w, h = (float(v) for v in box_cxcywh)
    ys = np.arange(height, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(width, dtype=np.float32)[None, :] + 0.5
    dx, dy = (xs - cx) / max(w / 2, 1e-6), (ys - cy) / max(h / 2, 1e-6)
    if kind == "ellipse":
        return (dx * dx + dy * dy <= 1.0).astype(np.uint8)
    if kind == "rectangle":
        return ((np.abs(dx) <= 1.0) & (np.abs(dy) <= 1.0)).astype(np.uint8)
    raise ValueError(f"box_mask kind must be 'ellipse' or 'rectangle', got {kind!r}")


def apply_seed_flags(train: dict[str, Any], seeds_file: str | None, seed_topic: str | None) -> None:
    """The `--seeds FILE` / `--seed-topic T` flags of cyclesiam-train and cyclesiam-adapt as overrides of
    the `train` section (other `train.seeds` keys given with --set are kept)."""
    if seeds_file:
        train.setdefault("seeds", {}).update({"source": "file", "file": str(Path(seeds_file).resolve())})
    if seed_topic:
        train.setdefault("seeds", {}).update({"source": "topic", "topic": seed_topic})


def _trainable(specs: Sequence[SeedSpec], streams: Sequence[Any], tolerance_s: float, desc: str) -> tuple[list[Seed], str]:
    seeds = resolve_seeds(specs, streams, tolerance_s)
    held_out = len(specs) - len(seeds)
    if held_out and not seeds:
        raise SeedError(f"all {held_out} seeds of {desc} lie in the held-out tails: none left to train on")
    return seeds, desc + (f"; {held_out} of {len(specs)} in the held-out tails, not trained on" if held_out else "")


def build_seeds(cfg: SeedConfig, streams: Sequence[Any]) -> tuple[list[Seed] | None, str]:
    """Seeds for `cfg.source` matched to the training streams -> (seeds or None for random, description)."""
    if cfg.source == "random":
        return None, "random"
    if cfg.source == "file":
        if not cfg.file:
            raise SeedError("seeds.source is 'file' but seeds.file is empty (use --seeds FILE)")
        return _trainable(load_seed_file(cfg.file), streams, cfg.stamp_tolerance, f"file {cfg.file}")
    if cfg.source == "topic":
        if not cfg.topic:
            raise SeedError("seeds.source is 'topic' but seeds.topic is empty (use --seed-topic TOPIC)")
        bags = sorted({s.path for s in streams if getattr(s, "kind", "") == "bag"})
        if not bags:
            raise SeedError(f"seed topic {cfg.topic!r} needs bags, but the training data has none")
        specs: list[SeedSpec] = []
        errors = []
        for bag in bags:
            try:
                specs.extend(read_detection_topic(bag, cfg.topic, cfg.image_topic))
            except SeedError as exc:
                errors.append(str(exc))
        if not specs:
            raise SeedError("; ".join(errors))
        return _trainable(specs, streams, cfg.stamp_tolerance, f"topic {cfg.topic} ({len(bags) - len(errors)} bag(s))")
    raise SeedError(f"seeds.source must be random, file or topic, got {cfg.source!r}")
