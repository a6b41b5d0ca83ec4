"""Evaluation sequence loaders: OTB, GOT-10k, VOT, DAVIS and annotated rosbags.

Every loader returns a list of :class:`Sequence`: frames read lazily in order, one box row
per frame (NaN where the frame has no annotation) and optional per-frame masks. Only
annotated frames are ever scored (see :mod:`cyclesiam_train.eval.metrics`).

Layouts:

- ``otb``: ``ROOT/SEQ/img/*.jpg`` + ``groundtruth_rect.txt`` (``x,y,w,h`` per line, comma,
  tab or whitespace separated; ``groundtruth_rect.N.txt`` = target N, sequence ``SEQ-N``);
  optional ``ROOT/SEQ/masks/<frame stem>.png`` (non-zero = target) for J/F.
  ``ROOT`` may also be one sequence folder.
- ``got10k``: ``ROOT/SEQ/*.jpg`` + ``groundtruth.txt``; ``absence.label`` (1 = absent) and
  ``cover.label`` (0 = fully occluded) mark unannotated frames, as in the GOT-10k toolkit.
- ``vot``: ``ROOT/SEQ/color/*.jpg`` (or images in ``SEQ/``) + ``groundtruth.txt`` with 8-value
  polygons (axis-aligned min/max box is the ground truth) or 4-value rectangles.
- ``davis``: ``ROOT/JPEGImages/<res>/SEQ/*.jpg`` and ``ROOT/Annotations/<res>/SEQ/*.png``
  (palette PNGs, index = object id; 0/255 grey PNGs = one object). One sequence per object
  present in the first annotation (``SEQ`` or ``SEQ_<id>`` when several); empty object
  masks are annotated frames for J/F (object not visible), unannotated for boxes.
- ``bag``: a YAML file (or a folder of them) ``{bag: path, topic: /cam/image_raw,
  keyframes: [{stamp: ns, box: [x,y,w,h], mask: optional png}], name: optional}``; paths
  relative to the YAML; stamps match image header stamps (or bag receive times).
- ``real``: the real validation set, ``annotations/real/<clip>/`` (or one clip folder):
  ``source.txt`` (``key: value`` lines; ``frames:`` names the footage under the data folder,
  opened with :func:`cyclesiam.sources.open_source`), ``groundtruth_rect.txt`` (one row per
  frame, ``nan`` rows = not a keyframe or an absent keyframe; row 0 must be present),
  ``absent.txt`` (0-based keyframe indices where the target is out of view / fully occluded)
  and ``masks/NNNNN.png`` (255 = visible target) on mask keyframes. Absent keyframes are not
  scored for boxes; :attr:`Sequence.absent` lets the runner report what trackers did there.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

import cv2
import numpy as np
import yaml

from .metrics import annotated, mask_to_box

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff")
FORMATS = ("otb", "got10k", "vot", "davis", "bag", "real")

MaskLoader = Callable[[], np.ndarray]


class DatasetError(ValueError):
    """A dataset folder or annotation file is malformed; the message names the file."""


class FrameReader(Protocol):
    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[np.ndarray]: ...


@dataclass
class ImageFiles:
    """Frames from an ordered list of image files (BGR uint8, grey promoted to 3 channels)."""

    paths: list[Path]

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.paths:
            yield read_image(path)


@dataclass
class BagFrames:
    """Frames of one image topic of a rosbag, in bag order (Image or CompressedImage)."""

    bag: Path
    topic: str
    count: int

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[np.ndarray]:
        from rosbags.image import message_to_cvimage

        for msg in _iter_bag_messages(self.bag, self.topic):
            yield _as_bgr(np.ascontiguousarray(message_to_cvimage(msg, "bgr8")))


@dataclass
class SourceFrames:
    """Frames of a video, image folder or bag, read with :func:`cyclesiam.sources.open_source`
    (the same reader the product uses, so frame i is the i-th frame the tracker CLI sees)."""

    path: Path
    count: int

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[np.ndarray]:
        from cyclesiam.sources import open_source

        source = open_source(self.path)
        try:
            for _index, _stamp, frame in source:
                yield _as_bgr(frame)
        finally:
            source.close()


@dataclass
class Sequence:
    """One target in one video: lazy frames, a box row per frame, optional masks."""

    name: str
    frames: FrameReader
    boxes: np.ndarray  # [N, 4] xywh, NaN rows = unannotated
    masks: dict[int, MaskLoader] = field(default_factory=dict)  # frame index -> bool mask loader
    limit: int = 0  # only the first `limit` frames (0 = all)
    absent: np.ndarray | None = None  # [N] bool: keyframes where the target is out of view / fully occluded
    info: dict[str, str] = field(default_factory=dict)  # descriptive keys (real set: source.txt)

    def __len__(self) -> int:
        n = len(self.boxes)
        return min(n, self.limit) if self.limit > 0 else n

    def iter_frames(self) -> Iterator[tuple[int, np.ndarray]]:
        for index, frame in enumerate(self.frames):
            if index >= len(self):
                return
            yield index, frame

    def mask(self, index: int) -> np.ndarray | None:
        loader = self.masks.get(index)
        return None if loader is None else np.asarray(loader(), dtype=bool)

    def truncated(self, max_frames: int) -> "Sequence":
        if max_frames <= 0:
            return self
        return dataclasses.replace(self, limit=max_frames)


# --------------------------------------------------------------------------- helpers


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot read image {path}")
    return image


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def parse_box_rows(path: Path, allow_polygons: bool = False) -> np.ndarray:
    """Rows of ``x,y,w,h`` (or 8-value polygons -> min/max box); bad/NaN rows become NaN."""
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        values = [v for v in re.split(r"[,\s]+", line.strip()) if v]
        if not values:
            rows.append([math.nan] * 4)
            continue
        try:
            nums = [float(v) for v in values]
        except ValueError as exc:
            if values[0].startswith("m"):
                raise DatasetError(f"{path}:{lineno}: VOT mask (RLE) annotations are not supported") from exc
            raise DatasetError(f"{path}:{lineno}: not numbers: {line.strip()!r}") from exc
        if len(nums) == 4:
            rows.append(nums)
        elif len(nums) >= 6 and len(nums) % 2 == 0 and allow_polygons:
            rows.append(list(polygon_to_box(nums)))
        elif len(nums) == 1 and math.isnan(nums[0]):
            rows.append([math.nan] * 4)
        else:
            raise DatasetError(f"{path}:{lineno}: expected 4 values{' or a polygon' if allow_polygons else ''}, "
                               f"got {len(nums)}")
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def polygon_to_box(values: list[float]) -> tuple[float, float, float, float]:
    """Axis-aligned min/max box of a polygon ``x1,y1,x2,y2,...``."""
    xs, ys = values[0::2], values[1::2]
    return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


def fit_rows(boxes: np.ndarray, n: int) -> np.ndarray:
    """``n`` rows: extra annotation rows dropped, missing rows NaN."""
    out = np.full((n, 4), np.nan)
    m = min(n, len(boxes))
    out[:m] = boxes[:m]
    return out


def read_flags(path: Path, n: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    values = [int(float(v)) for v in path.read_text().split()]
    return np.asarray((values + [0] * n)[:n])


def read_label_png(path: Path) -> np.ndarray:
    """Object-id image of an annotation PNG (palette index, or grey value)."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("P", "L", "I", "I;16", "1"):
            return np.asarray(im).astype(np.int32)
        return (np.asarray(im.convert("L")) > 0).astype(np.int32) * 255


def binary_mask_loader(path: Path) -> MaskLoader:
    return lambda: read_label_png(path) > 0


def object_mask_loader(path: Path, object_id: int) -> MaskLoader:
    return lambda: read_label_png(path) == object_id


# --------------------------------------------------------------------------- OTB / GOT-10k / VOT


def _sequence_dirs(root: Path, is_sequence: Callable[[Path], bool]) -> list[Path]:
    if is_sequence(root):
        return [root]
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and is_sequence(p))
    if not dirs:
        raise DatasetError(f"no sequences found under {root}")
    return dirs


def load_otb(root: Path) -> list[Sequence]:
    def is_seq(p: Path) -> bool:
        return (p / "img").is_dir() and any(p.glob("groundtruth_rect*.txt"))

    sequences = []
    for folder in _sequence_dirs(root, is_seq):
        images = list_images(folder / "img")
        masks = _stem_masks(folder / "masks", images)
        for gt_file in sorted(folder.glob("groundtruth_rect*.txt")):
            suffix = gt_file.name[len("groundtruth_rect"):-len(".txt")].strip(".")
            name = f"{folder.name}-{suffix}" if suffix else folder.name
            boxes = fit_rows(parse_box_rows(gt_file), len(images))
            sequences.append(Sequence(name, ImageFiles(images), boxes, masks))
    return sequences


def _stem_masks(folder: Path, images: list[Path]) -> dict[int, MaskLoader]:
    if not folder.is_dir():
        return {}
    by_stem = {p.stem: p for p in folder.glob("*.png")}
    return {i: binary_mask_loader(by_stem[img.stem]) for i, img in enumerate(images) if img.stem in by_stem}


def load_got10k(root: Path) -> list[Sequence]:
    def is_seq(p: Path) -> bool:
        return (p / "groundtruth.txt").is_file()

    sequences = []
    for folder in _sequence_dirs(root, is_seq):
        images = list_images(folder)
        boxes = fit_rows(parse_box_rows(folder / "groundtruth.txt"), len(images))
        absent = read_flags(folder / "absence.label", len(images))
        if absent is not None:
            boxes[absent == 1] = np.nan
        cover = read_flags(folder / "cover.label", len(images))
        if cover is not None:
            boxes[cover == 0] = np.nan
        sequences.append(Sequence(folder.name, ImageFiles(images), boxes))
    return sequences


def load_vot(root: Path) -> list[Sequence]:
    def is_seq(p: Path) -> bool:
        return (p / "groundtruth.txt").is_file()

    sequences = []
    for folder in _sequence_dirs(root, is_seq):
        image_dir = folder / "color" if (folder / "color").is_dir() else folder
        images = list_images(image_dir)
        boxes = fit_rows(parse_box_rows(folder / "groundtruth.txt", allow_polygons=True), len(images))
        sequences.append(Sequence(folder.name, ImageFiles(images), boxes))
    return sequences


# --------------------------------------------------------------------------- DAVIS


def load_davis(root: Path, resolution: str = "480p") -> list[Sequence]:
    image_root, anno_root = root / "JPEGImages" / resolution, root / "Annotations" / resolution
    if not anno_root.is_dir():
        image_root, anno_root = root / "JPEGImages", root / "Annotations"
    if not anno_root.is_dir():
        raise DatasetError(f"{root}: no Annotations/{resolution} (or Annotations/) folder")
    sequences = []
    for anno_dir in sorted(p for p in anno_root.iterdir() if p.is_dir()):
        sequences.extend(_davis_sequence(image_root / anno_dir.name, anno_dir))
    if not sequences:
        raise DatasetError(f"no DAVIS sequences under {anno_root}")
    return sequences


def _davis_sequence(image_dir: Path, anno_dir: Path) -> list[Sequence]:
    images = list_images(image_dir)
    if not images:
        raise DatasetError(f"no frames in {image_dir}")
    annos = {p.stem: p for p in anno_dir.glob("*.png")}
    labels = {i: read_label_png(annos[img.stem]) for i, img in enumerate(images) if img.stem in annos}
    if not labels:
        raise DatasetError(f"no annotation PNG in {anno_dir} matches a frame of {image_dir}")
    first = labels[min(labels)]
    object_ids = [int(v) for v in np.unique(first) if v != 0]
    out = []
    for object_id in object_ids:
        boxes = np.full((len(images), 4), np.nan)
        masks: dict[int, MaskLoader] = {}
        for i, label in labels.items():
            box = mask_to_box(label == object_id)
            if box is not None:
                boxes[i] = box
            masks[i] = object_mask_loader(annos[images[i].stem], object_id)
        name = anno_dir.name if len(object_ids) == 1 else f"{anno_dir.name}_{object_id}"
        out.append(Sequence(name, ImageFiles(images), boxes, masks))
    return out


# --------------------------------------------------------------------------- rosbag + keyframes YAML


def _iter_bag_messages(bag: Path, topic: str) -> Iterator[object]:
    from rosbags.highlevel import AnyReader

    with AnyReader([bag]) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        if not conns:
            raise DatasetError(f"{bag}: no topic {topic} (topics: {sorted({c.topic for c in reader.connections})})")
        for conn, _, raw in reader.messages(connections=conns):
            yield reader.deserialize(raw, conn.msgtype)


def bag_stamps(bag: Path, topic: str) -> tuple[np.ndarray, np.ndarray]:
    """Header stamps and bag receive times (ns) of every message on ``topic``, in bag order."""
    from rosbags.highlevel import AnyReader

    headers, logs = [], []
    with AnyReader([bag]) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        if not conns:
            raise DatasetError(f"{bag}: no topic {topic} (topics: {sorted({c.topic for c in reader.connections})})")
        for conn, timestamp, raw in reader.messages(connections=conns):
            stamp = reader.deserialize(raw, conn.msgtype).header.stamp
            headers.append(int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec))
            logs.append(int(timestamp))
    return np.asarray(headers, dtype=np.int64), np.asarray(logs, dtype=np.int64)


def match_stamp(stamp: int, headers: np.ndarray, logs: np.ndarray, tolerance_ns: int) -> int | None:
    """Frame index for a keyframe stamp: exact header, exact receive time, nearest header within tolerance."""
    for table in (headers, logs):
        hits = np.nonzero(table == stamp)[0]
        if hits.size:
            return int(hits[0])
    if headers.size:
        nearest = int(np.argmin(np.abs(headers - stamp)))
        if abs(int(headers[nearest]) - stamp) <= tolerance_ns:
            return nearest
    return None


def load_bag(path: Path, tolerance_ns: int = 1_000_000) -> list[Sequence]:
    files = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")) if path.is_dir() else [path]
    if not files:
        raise DatasetError(f"no keyframe YAML files in {path}")
    return [_bag_sequence(f, tolerance_ns) for f in files]


def _bag_sequence(spec_file: Path, tolerance_ns: int) -> Sequence:
    try:
        spec = yaml.safe_load(spec_file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DatasetError(f"{spec_file}: not valid YAML: {exc}") from exc
    for key in ("bag", "topic", "keyframes"):
        if key not in spec:
            raise DatasetError(f"{spec_file}: missing key '{key}'")
    bag = (spec_file.parent / str(spec["bag"])).resolve()
    topic = str(spec["topic"])
    headers, logs = bag_stamps(bag, topic)
    boxes = np.full((len(headers), 4), np.nan)
    masks: dict[int, MaskLoader] = {}
    for k, frame in enumerate(spec["keyframes"] or []):
        index = match_stamp(int(frame["stamp"]), headers, logs, tolerance_ns)
        if index is None:
            raise DatasetError(f"{spec_file}: keyframe {k} stamp {frame['stamp']} matches no message on {topic}")
        box = frame.get("box")
        if box is not None:
            if len(box) != 4:
                raise DatasetError(f"{spec_file}: keyframe {k} box must be [x, y, w, h]")
            boxes[index] = [math.nan if v is None else float(v) for v in box]
        if frame.get("mask"):
            masks[index] = binary_mask_loader(spec_file.parent / str(frame["mask"]))
    name = str(spec.get("name") or spec_file.stem)
    return Sequence(name, BagFrames(bag, topic, len(headers)), boxes, masks)


# --------------------------------------------------------------------------- real validation set


def default_data_root() -> Path:
    """$CYCLESIAM_DATA, else the repo's data/ (where scripts/fetch_data.sh puts the footage)."""
    return Path(os.environ.get("CYCLESIAM_DATA") or Path(__file__).resolve().parents[2] / "data")


def read_key_values(path: Path) -> dict[str, str]:
    """``key: value`` lines (the first colon splits; blank and ``#`` lines ignored)."""
    out = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise DatasetError(f"{path}:{lineno}: expected 'key: value', got {line.strip()!r}")
        out[key.strip()] = value.strip()
    return out


def load_real(root: Path, data_root: Path | None = None) -> list[Sequence]:
    def is_clip(p: Path) -> bool:
        return (p / "source.txt").is_file() and (p / "groundtruth_rect.txt").is_file()

    data = data_root or default_data_root()
    return [_real_clip(folder, data) for folder in _sequence_dirs(root, is_clip)]


def _real_clip(folder: Path, data: Path) -> Sequence:
    info = read_key_values(folder / "source.txt")
    gt_file = folder / "groundtruth_rect.txt"
    boxes = parse_box_rows(gt_file)
    if not info.get("frames"):
        raise DatasetError(f"{folder / 'source.txt'}: no 'frames:' line")
    if info.get("count") and int(info["count"]) != len(boxes):
        raise DatasetError(f"{gt_file}: {len(boxes)} rows but source.txt says count: {info['count']}")
    if not len(boxes) or not annotated(boxes[:1])[0]:
        raise DatasetError(f"{gt_file}: row 0 (the init box) must be annotated")
    absent = np.zeros(len(boxes), dtype=bool)
    absent_file = folder / "absent.txt"
    if absent_file.is_file():
        for index in (int(v) for v in absent_file.read_text().split()):
            if not 0 < index < len(boxes) or np.isfinite(boxes[index]).any():
                raise DatasetError(f"{absent_file}: keyframe {index} must be a frame > 0 whose box row is nan")
            absent[index] = True
    masks: dict[int, MaskLoader] = {}
    for png in sorted((folder / "masks").glob("*.png")):
        if not png.stem.isdigit() or int(png.stem) >= len(boxes):
            raise DatasetError(f"{png}: mask names are 5-digit frame indices below {len(boxes)}")
        masks[int(png.stem)] = binary_mask_loader(png)
    footage = data / info["frames"]
    if not footage.exists():
        raise DatasetError(f"{footage}: footage of {folder.name} not found (scripts/fetch_data.sh fetches it)")
    return Sequence(folder.name, SourceFrames(footage, len(boxes)), boxes, masks, absent=absent, info=info)


# --------------------------------------------------------------------------- entry point


def load_dataset(path: str | Path, fmt: str, *, davis_resolution: str = "480p",
                 bag_tolerance_ns: int = 1_000_000, names: list[str] | None = None,
                 max_frames: int = 0, data_root: str | Path | None = None,
                 split: str | None = None) -> list[Sequence]:
    """All sequences of a dataset in format ``fmt`` (one of :data:`FORMATS`); ``real`` reads its
    footage under ``data_root`` and keeps only the clips of ``split`` when given."""
    root = Path(path)
    if not root.exists():
        raise DatasetError(f"dataset path does not exist: {root}")
    if fmt == "otb":
        seqs = load_otb(root)
    elif fmt == "got10k":
        seqs = load_got10k(root)
    elif fmt == "vot":
        seqs = load_vot(root)
    elif fmt == "davis":
        seqs = load_davis(root, davis_resolution)
    elif fmt == "bag":
        seqs = load_bag(root, bag_tolerance_ns)
    elif fmt == "real":
        seqs = load_real(root, Path(data_root) if data_root else None)
    else:
        raise DatasetError(f"unknown dataset format '{fmt}'; known: {', '.join(FORMATS)}")
    if names:
        wanted = set(names)
        seqs = [s for s in seqs if s.name in wanted or s.name.split("-")[0] in wanted]
        if not seqs:
            raise DatasetError(f"none of the sequences {sorted(wanted)} found in {root}")
    if split:
        seqs = [s for s in seqs if s.info.get("split") == split]
        if not seqs:
            raise DatasetError(f"no sequence of split '{split}' in {root}")
    return [s.truncated(max_frames) for s in seqs]
