"""Evaluation sequences with exact ground truth, composited from real footage.

A real object cut-out (a textured region of a real frame with a real-shaped mask: the
ViSP textured cube, the mire-2 dotted plate, the mire-2 figurine head, or a random blob
polygon cut from real texture) moves over real background video (cityCC0 city pan,
tree.avi, mire-2) with translation, scale, in-plane rotation, illumination change,
motion blur, and a second real cut-out (the ViSP cylinder) passing over it.

Ground truth is exact by construction: the object's alpha is warped with the same affine
transform as its texture (and blurred with the same kernel); the mask is that alpha
> 0.5 minus where the occluder's alpha > 0.5 (the visible object), and the box is the
tight pixel box of the whole object's alpha > 0.5 (amodal: occlusion does not shrink it).

Outputs, per sequence ``NAME``:

- ``OUT/otb/NAME/img/0001.jpg ...``, ``groundtruth_rect.txt`` (``x,y,w,h``), ``masks/0001.png``
  (0/255, visible object) -> ``cyclesiam-eval --format otb --dataset OUT/otb``
- ``OUT/bag/NAME/`` rosbag2 (MCAP) with ``sensor_msgs/msg/Image`` bgr8 on ``topic``, and
  ``OUT/bag/NAME.yaml`` keyframes (every ``keyframe_every``-th frame, box + mask PNG in
  ``OUT/bag/NAME_masks/``) -> ``cyclesiam-eval --format bag --dataset OUT/bag``
- ``OUT/sequences.json``: what each sequence contains (object, background, events, seed).

Deterministic: the same seed and source clips give the same pixels and annotations.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence as Seq

import cv2
import numpy as np
import yaml

from cyclesiam_train.config import ConfigError, SyntheticConfig, load_config, parse_dotted, to_dict

from .metrics import mask_to_box

DEFAULT_DATA = Path(os.environ.get("CYCLESIAM_DATA", Path(__file__).resolve().parents[2] / "data"))

# Real cut-outs: (source file under the data dir, shape kind, shape parameters in source pixels).
OBJECTS: dict[str, tuple[str, str, Any]] = {
    "cube": ("mbt_cube/image0000.pgm", "polygon", [(316, 232), (384, 204), (430, 240), (442, 318), (364, 349), (323, 320)]),
    "plate": ("mire2/image.0001.pgm", "polygon", [(52, 170), (238, 140), (284, 262), (80, 286)]),
    "head": ("mire2/image.0001.pgm", "ellipse", ((340, 240), (32, 42))),
    "blob": ("", "blob", None),  # random blob polygon cut from a textured region of a real frame
}
# Textured source regions (x0, y0, x1, y1) a blob may be cut from.
BLOB_SOURCES: list[tuple[str, tuple[int, int, int, int]]] = [
    ("mbt_cube/image0000.pgm", (290, 180, 470, 370)),  # the textured cube and the sheet under it
    ("mire2/image.0001.pgm", (0, 60, 384, 288)),  # posters, dotted plate, figurine
]
OCCLUDER = ("mbt_cube/image0000.pgm", "polygon",
            [(174, 0), (286, 0), (286, 262), (270, 274), (230, 280), (190, 274), (174, 262)])
BACKGROUNDS = {"city": "cityCC0.mpg", "tree": "tree.avi", "mire": "mire2"}


@dataclass
class CutOut:
    """A real texture patch (BGR float32) and its alpha (float32 0..1), same size."""

    name: str
    texture: np.ndarray
    alpha: np.ndarray


@dataclass
class SequenceSpec:
    name: str
    seed: int
    object: str
    background: str
    events: dict[str, Any] = field(default_factory=dict)


@dataclass
class RenderedFrame:
    image: np.ndarray  # BGR uint8
    box: tuple[float, float, float, float] | None  # whole object, tight pixel box
    mask: np.ndarray  # bool, visible object


# --------------------------------------------------------------------------- sources


def read_source_image(data: Path, rel: str) -> np.ndarray:
    image = cv2.imread(str(data / rel), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"source frame missing: {data / rel} (run scripts/fetch_data.sh)")
    return image


def read_background(data: Path, key: str, n: int, size: tuple[int, int], start: int) -> list[np.ndarray]:
    """``n`` consecutive real frames (ping-pong past the end), cover-resized to ``size`` (w, h)."""
    path = data / BACKGROUNDS[key]
    if path.is_dir():
        files = sorted(path.glob("*.pgm"))
        raw = [cv2.imread(str(f), cv2.IMREAD_COLOR) for f in files[start:start + n]]
    else:
        cap = cv2.VideoCapture(str(path))
        raw = []
        index = 0
        while len(raw) < n:
            ok, frame = cap.read()
            if not ok:
                break
            if index >= start:
                raw.append(frame)
            index += 1
        cap.release()
    if not raw or raw[0] is None:
        raise FileNotFoundError(f"background clip missing or unreadable: {path} (run scripts/fetch_data.sh)")
    cycle = raw + raw[-2:0:-1] if len(raw) > 1 else raw
    return [cover_resize(cycle[i % len(cycle)], size) for i in range(n)]


def cover_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale to cover ``size`` (w, h) keeping the aspect ratio, then centre-crop."""
    w, h = size
    s = max(w / image.shape[1], h / image.shape[0])
    resized = cv2.resize(image, (max(w, round(image.shape[1] * s)), max(h, round(image.shape[0] * s))),
                         interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    y0, x0 = (resized.shape[0] - h) // 2, (resized.shape[1] - w) // 2
    return resized[y0:y0 + h, x0:x0 + w].copy()


def shape_mask(shape: tuple[int, int], kind: str, params: Any) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    if kind == "polygon":
        cv2.fillPoly(mask, [np.asarray(params, np.int32)], 255)
    elif kind == "ellipse":
        cv2.ellipse(mask, params[0], params[1], 0, 0, 360, 255, -1)
    else:
        raise ValueError(f"unknown shape kind {kind}")
    return mask


def random_blob(rng: np.random.Generator, center: tuple[float, float], radius: float, vertices: int = 9) -> list[tuple[int, int]]:
    """A star-shaped irregular polygon (radii 0.6..1 of ``radius``) around ``center``."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
    radii = radius * rng.uniform(0.6, 1.0, vertices)
    return [(int(center[0] + r * np.cos(a)), int(center[1] + r * np.sin(a))) for a, r in zip(angles, radii)]


def cut_out(image: np.ndarray, mask: np.ndarray, name: str) -> CutOut:
    """The mask's bounding region of ``image`` as texture + alpha (1 px transparent margin)."""
    x, y, w, h = (int(v) for v in mask_to_box(mask > 0))  # type: ignore[misc]
    x0, y0 = max(x - 1, 0), max(y - 1, 0)
    x1, y1 = min(x + w + 1, image.shape[1]), min(y + h + 1, image.shape[0])
    tex = image[y0:y1, x0:x1].astype(np.float32)
    alpha = (mask[y0:y1, x0:x1] > 0).astype(np.float32)
    return CutOut(name, tex, alpha)


def load_object(data: Path, name: str, rng: np.random.Generator) -> CutOut:
    if name == "blob":
        rel, (x0, y0, x1, y1) = BLOB_SOURCES[int(rng.integers(len(BLOB_SOURCES)))]
        image = read_source_image(data, rel)
        radius = float(rng.uniform(0.3, 0.45) * min(x1 - x0, y1 - y0))
        center = (rng.uniform(x0 + radius, x1 - radius), rng.uniform(y0 + radius, y1 - radius))
        return cut_out(image, shape_mask(image.shape[:2], "polygon", random_blob(rng, center, radius)), "blob")
    rel, kind, params = OBJECTS[name]
    image = read_source_image(data, rel)
    return cut_out(image, shape_mask(image.shape[:2], kind, params), name)


def load_occluder(data: Path) -> CutOut:
    rel, kind, params = OCCLUDER
    image = read_source_image(data, rel)
    return cut_out(image, shape_mask(image.shape[:2], kind, params), "cylinder")


# --------------------------------------------------------------------------- motion


@dataclass
class Motion:
    """Smooth per-frame pose of the object: centre, scale (px of object height) and angle."""

    centers: np.ndarray  # [T, 2]
    heights: np.ndarray  # [T] target height of the cut-out in pixels
    angles: np.ndarray  # [T] degrees
    gains: np.ndarray  # [T] global illumination gain
    offsets: np.ndarray  # [T] global illumination offset


def sample_motion(rng: np.random.Generator, cfg: SyntheticConfig, cut: CutOut) -> Motion:
    t = np.arange(cfg.frames, dtype=np.float64)
    base = cfg.height * rng.uniform(*cfg.object_size)
    s_lo, s_hi = cfg.scale_range
    scale_phase, scale_freq = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5) * 2 * np.pi / max(cfg.frames, 1)
    scale = np.exp(np.log(s_lo) + (np.log(s_hi) - np.log(s_lo)) * (0.5 + 0.5 * np.sin(scale_freq * t + scale_phase)))
    heights = base * scale
    aspect = cut.alpha.shape[1] / cut.alpha.shape[0]
    # the largest half-extent the rotated object can reach keeps it inside the frame
    reach = 0.5 * heights.max() * math.hypot(1.0, aspect) + 2
    centers = np.zeros((cfg.frames, 2))
    for axis, extent in enumerate((cfg.width, cfg.height)):
        amp = max(extent / 2 - reach, 0.0) * rng.uniform(0.6, 1.0)
        speed = cfg.max_speed * rng.uniform(0.5, 1.0)
        omega = speed / amp if amp > 1e-6 else 0.0
        centers[:, axis] = extent / 2 + amp * np.sin(omega * t + rng.uniform(0, 2 * np.pi))
    rot_freq = rng.uniform(0.5, 1.5) * 2 * np.pi / max(cfg.frames, 1)
    angles = cfg.max_rotation_deg * np.sin(rot_freq * t + rng.uniform(0, 2 * np.pi))
    gains, offsets = np.ones(cfg.frames), np.zeros(cfg.frames)
    if cfg.illumination:
        ill_freq = rng.uniform(0.5, 1.0) * 2 * np.pi / max(cfg.frames, 1)
        ill_phase = rng.uniform(0, 2 * np.pi)
        gains = 1.0 + rng.uniform(0.25, 0.45) * np.sin(ill_freq * t + ill_phase)
        offsets = rng.uniform(-20, 20) * np.sin(ill_freq * t + ill_phase + 1.0)
    return Motion(centers, heights, angles, gains, offsets)


def pose_matrix(cut: CutOut, center: np.ndarray, height: float, angle: float) -> np.ndarray:
    """Affine 2x3 mapping cut-out pixels to image pixels (rotate+scale about the cut-out centre)."""
    cy, cx = (cut.alpha.shape[0] - 1) / 2.0, (cut.alpha.shape[1] - 1) / 2.0
    m = cv2.getRotationMatrix2D((cx, cy), float(angle), float(height / cut.alpha.shape[0]))
    m[:, 2] += np.asarray(center) - np.array([cx, cy])
    return m


def warp_layer(cut: CutOut, m: np.ndarray, size: tuple[int, int], blur: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Premultiplied texture and alpha of a cut-out in image space (optionally motion-blurred)."""
    w, h = size
    premul = cut.texture * cut.alpha[..., None]
    color = cv2.warpAffine(premul, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = cv2.warpAffine(cut.alpha, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if blur is not None:
        color = cv2.filter2D(color, -1, blur, borderType=cv2.BORDER_CONSTANT)
        alpha = cv2.filter2D(alpha, -1, blur, borderType=cv2.BORDER_CONSTANT)
    return color, np.clip(alpha, 0.0, 1.0)


def motion_blur_kernel(velocity: np.ndarray, min_speed: float = 2.5) -> np.ndarray | None:
    """A normalised line kernel along ``velocity`` (length = speed in px), None when slow."""
    speed = float(np.hypot(*velocity))
    if speed < min_speed:
        return None
    length = int(math.ceil(speed)) | 1
    kernel = np.zeros((length, length), np.float32)
    c = length // 2
    d = velocity / speed * (length - 1) / 2
    cv2.line(kernel, (int(round(c - d[0])), int(round(c - d[1]))), (int(round(c + d[0])), int(round(c + d[1]))), 1.0, 1)
    return kernel / kernel.sum()


def occluder_track(rng: np.random.Generator, cfg: SyntheticConfig, motion: Motion) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Occluder centres, heights (NaN outside the pass) and the pass window [t0, t1)."""
    n = cfg.frames
    t0 = int(rng.integers(n // 4, max(n // 2, n // 4 + 1)))
    t1 = min(n, t0 + max(n // 4, 8))
    centers = np.full((n, 2), np.nan)
    heights = np.full(n, np.nan)
    side = rng.choice([-1.0, 1.0])
    for t in range(t0, t1):
        u = (t - t0) / max(t1 - t0 - 1, 1)  # 0..1 across the pass
        h_obj = motion.heights[t]
        heights[t] = 1.3 * h_obj
        # horizontal sweep over the object; the occluder's half-width is ~0.3 of its height
        sweep = (2 * u - 1) * (0.5 * h_obj + 0.35 * heights[t] + 10)
        # vertical offset so the occluder reaches `occlusion_fraction` into the object
        dy = side * (0.5 * h_obj + 0.5 * heights[t] - cfg.occlusion_fraction * h_obj)
        centers[t] = motion.centers[t] + np.array([sweep, dy])
    return centers, heights, (t0, t1)


# --------------------------------------------------------------------------- rendering


def render_sequence(data: Path, cfg: SyntheticConfig, spec: SequenceSpec) -> list[RenderedFrame]:
    rng = np.random.default_rng(spec.seed)
    cut = load_object(data, spec.object, rng)
    motion = sample_motion(rng, cfg, cut)
    size = (cfg.width, cfg.height)
    backgrounds = read_background(data, spec.background, cfg.frames, size, int(rng.integers(0, 20)))
    occ = load_occluder(data) if cfg.occlusion else None
    occ_centers, occ_heights, window = occluder_track(rng, cfg, motion) if occ else (None, None, (0, 0))
    object_gain = 1.0 + 0.3 * np.sin(np.arange(cfg.frames) * 2 * np.pi / max(cfg.frames, 1) + rng.uniform(0, 6.28))
    spec.events = {"occlusion_frames": list(window) if occ else None, "illumination": cfg.illumination,
                   "motion_blur": cfg.motion_blur, "object_size_px": [float(motion.heights.min()), float(motion.heights.max())],
                   "rotation_deg": float(np.abs(motion.angles).max())}
    frames = []
    blurred = 0
    for t in range(cfg.frames):
        velocity = motion.centers[t] - motion.centers[t - 1] if t > 0 else np.zeros(2)
        blur = motion_blur_kernel(velocity) if cfg.motion_blur else None
        blurred += blur is not None
        m = pose_matrix(cut, motion.centers[t], motion.heights[t], motion.angles[t])
        color, alpha = warp_layer(cut, m, size, blur)
        image = backgrounds[t].astype(np.float32)
        image = image * (1 - alpha[..., None]) + color * object_gain[t]
        visible = alpha > 0.5
        if occ is not None and np.isfinite(occ_heights[t]):
            om = pose_matrix(occ, occ_centers[t], occ_heights[t], 0.0)
            ocolor, oalpha = warp_layer(occ, om, size, None)
            image = image * (1 - oalpha[..., None]) + ocolor
            visible &= ~(oalpha > 0.5)
        image = np.clip(image * motion.gains[t] + motion.offsets[t], 0, 255).astype(np.uint8)
        frames.append(RenderedFrame(image, mask_to_box(alpha > 0.5), visible))
    spec.events["blurred_frames"] = blurred
    return frames


def plan_sequences(cfg: SyntheticConfig) -> list[SequenceSpec]:
    """Names, seeds, objects and backgrounds of ``cfg.num_sequences`` sequences."""
    rng = np.random.default_rng(cfg.seed)
    objects = list(OBJECTS)
    specs = []
    for k in range(cfg.num_sequences):
        obj = objects[k % len(objects)]
        # the named mire-2 cut-outs (plate, head) are not shown over mire-2 background (same texture);
        # a blob's source is drawn later, so a blob cut from mire-2 can be (kept: changing it would
        # change every generated set, including the reported one)
        choices = [b for b in BACKGROUNDS if not (b == "mire" and OBJECTS[obj][0].startswith("mire2"))]
        background = choices[int(rng.integers(len(choices)))]
        specs.append(SequenceSpec(f"synth_{k:03d}_{obj}_{background}", int(rng.integers(2**31 - 1)), obj, background))
    return specs


# --------------------------------------------------------------------------- writers


def write_otb(folder: Path, frames: Seq[RenderedFrame], jpeg_quality: int = 95) -> None:
    """OTB layout: img/NNNN.jpg, groundtruth_rect.txt, masks/NNNN.png."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    rows = []
    for i, fr in enumerate(frames, 1):
        cv2.imwrite(str(folder / "img" / f"{i:04d}.jpg"), fr.image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        cv2.imwrite(str(folder / "masks" / f"{i:04d}.png"), fr.mask.astype(np.uint8) * 255)
        rows.append("NaN,NaN,NaN,NaN" if fr.box is None else ",".join(f"{v:g}" for v in fr.box))
    (folder / "groundtruth_rect.txt").write_text("\n".join(rows) + "\n")


def frame_stamps(n: int, fps: float, start_ns: int) -> list[int]:
    return [start_ns + int(round(i * 1e9 / fps)) for i in range(n)]


def write_image_bag(path: Path, images: Seq[np.ndarray], stamps: Seq[int], topic: str, frame_id: str = "camera") -> None:
    """A rosbag2 (MCAP) with ``sensor_msgs/msg/Image`` bgr8 messages stamped ``stamps`` (ns)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    Image, Header, Time = (store.types[n] for n in ("sensor_msgs/msg/Image", "std_msgs/msg/Header",
                                                    "builtin_interfaces/msg/Time"))
    if path.exists():
        shutil.rmtree(path)
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection(topic, Image.__msgtype__, typestore=store)
        for image, stamp in zip(images, stamps):
            h, w = image.shape[:2]
            msg = Image(header=Header(stamp=Time(sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000), frame_id=frame_id),
                        height=h, width=w, encoding="bgr8", is_bigendian=0, step=w * 3,
                        data=np.ascontiguousarray(image, dtype=np.uint8).reshape(-1))
            writer.write(conn, stamp, store.serialize_cdr(msg, Image.__msgtype__))


def write_bag_sequence(out: Path, name: str, frames: Seq[RenderedFrame], cfg: SyntheticConfig, start_ns: int) -> Path:
    """``out/NAME/`` bag, ``out/NAME_masks/`` keyframe masks and ``out/NAME.yaml`` keyframes."""
    stamps = frame_stamps(len(frames), cfg.fps, start_ns)
    write_image_bag(out / name, [f.image for f in frames], stamps, cfg.topic)
    mask_dir = out / f"{name}_masks"
    mask_dir.mkdir(parents=True, exist_ok=True)
    keyframes = []
    for i in range(0, len(frames), max(cfg.keyframe_every, 1)):
        fr = frames[i]
        rel = f"{name}_masks/{i + 1:04d}.png"
        cv2.imwrite(str(out / rel), fr.mask.astype(np.uint8) * 255)
        keyframes.append({"stamp": stamps[i], "box": None if fr.box is None else [float(v) for v in fr.box], "mask": rel})
    spec = {"name": name, "bag": name, "topic": cfg.topic, "keyframes": keyframes}
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def generate(out: str | Path, cfg: SyntheticConfig, data: str | Path = DEFAULT_DATA, bag: bool = True) -> list[SequenceSpec]:
    """Render and write all sequences; returns their specs (also in ``out/sequences.json``)."""
    out, data = Path(out), Path(data)
    specs = plan_sequences(cfg)
    for k, spec in enumerate(specs):
        frames = render_sequence(data, cfg, spec)
        write_otb(out / "otb" / spec.name, frames, cfg.jpeg_quality)
        if bag:
            write_bag_sequence(out / "bag", spec.name, frames, cfg, start_ns=1_700_000_000_000_000_000 + k * 10**12)
    summary = {"config": to_dict(cfg), "data": str(data),
               "sequences": [{"name": s.name, "seed": s.seed, "object": s.object, "background": s.background,
                              "events": s.events} for s in specs]}
    (out / "sequences.json").write_text(json.dumps(summary, indent=2))
    return specs


# --------------------------------------------------------------------------- CLI


def _recorded(out: Path, cfg: SyntheticConfig) -> tuple[dict, bool] | None:
    """(sequences.json of ``out``, whether it records ``cfg``), None when there is none to read."""
    try:
        summary = json.loads((out / "sequences.json").read_text())
    except (OSError, ValueError):
        return None
    return summary, summary.get("config") == json.loads(json.dumps(to_dict(cfg)))


def already_generated(out: str | Path, cfg: SyntheticConfig, bag: bool) -> bool:
    """True when ``out`` holds the sequences ``cfg`` would generate: its sequences.json records the
    same generation config and every sequence's OTB folder (and bag, when wanted) is there."""
    out = Path(out)
    recorded = _recorded(out, cfg)
    if recorded is None or not recorded[1]:
        return False
    summary = recorded[0]
    names = [s.get("name", "") for s in summary.get("sequences", [])]
    return len(names) == cfg.num_sequences and all(
        (out / "otb" / n / "groundtruth_rect.txt").is_file() and (not bag or (out / "bag" / n).is_dir())
        for n in names)


def other_set(out: str | Path, cfg: SyntheticConfig) -> str | None:
    """What ``out`` holds when its sequences.json records a different generation config (so that
    writing ``cfg``'s sequences there would mix two sets), else None."""
    recorded = _recorded(Path(out), cfg)
    if recorded is None or recorded[1]:
        return None
    held = recorded[0].get("config") or {}
    return f"seed {held.get('seed')}, {held.get('num_sequences')} sequences of {held.get('frames')} frames"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cyclesiam-gen-sequences", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (otb/, bag/, sequences.json)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="folder with the real source clips (scripts/fetch_data.sh)")
    p.add_argument("--config", help="YAML config; generation settings under eval.synthetic")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override, e.g. eval.synthetic.frames=60 (repeatable)")
    p.add_argument("--seed", type=int, help="shortcut for eval.synthetic.seed")
    p.add_argument("--num", type=int, help="shortcut for eval.synthetic.num_sequences")
    p.add_argument("--frames", type=int, help="shortcut for eval.synthetic.frames")
    p.add_argument("--no-bag", action="store_true", help="write only the OTB folders")
    p.add_argument("--if-missing", action="store_true",
                   help="do nothing when OUT already holds these sequences (same config in sequences.json); "
                        "refuse when it holds another set")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        overrides = parse_dotted(args.set)
        synth = overrides.setdefault("eval", {}).setdefault("synthetic", {})
        for key, value in (("seed", args.seed), ("num_sequences", args.num), ("frames", args.frames)):
            if value is not None:
                synth[key] = value
        cfg = load_config(args.config, overrides).eval.synthetic
    except ConfigError as exc:
        print(f"error: {exc}")
        return 2
    if args.if_missing:
        if already_generated(args.out, cfg, bag=not args.no_bag):
            print(f"{cfg.num_sequences} sequences (seed {cfg.seed}) already in {args.out}; not regenerated")
            return 0
        held = other_set(args.out, cfg)
        if held is not None:
            print(f"error: {args.out} holds another generated set ({held}); not overwritten: give another --out "
                  f"or remove it")
            return 2
    try:
        specs = generate(args.out, cfg, args.data, bag=not args.no_bag)
    except FileNotFoundError as exc:
        print(f"error: {exc}")
        return 1
    for s in specs:
        print(f"{s.name}: object={s.object} background={s.background} occlusion={s.events.get('occlusion_frames')}")
    print(f"wrote {len(specs)} sequences to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
