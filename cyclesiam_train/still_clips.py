"""Training clips made from still photos by known transforms (label-free data, issue 20 item 5).

Each clip: a background still that drifts slowly (a small affine: pan, zoom, turn) and a
foreground region of another still (a random blob cut out with a soft edge) pasted over it on
its own smooth trajectory: translation, in-plane rotation and a scale change of at least
``min_scale_change`` (2x by default) over the clip, in some clips partly or wholly out of view
at the border; mild motion blur and illumination change. The trainer reads the clips as plain
JPEG folders (``cyclesiam-train --data OUT/clip_000 ...``); no label is written into the
frames or used by the trainer. The known transforms (per frame: foreground centre, height,
angle) are stored in ``OUT/still_clips.json`` for checks and provenance.

The compositing (cut-out, pose, warp, blur kernel, cover-resize) is the one of the generated
evaluation sequences (cyclesiam_train/eval/generate.py); only the sampling lives here.

Deterministic: the same stills, seed and settings give the same pixels.

    python -m cyclesiam_train.still_clips --out data/still_clips --seed 0 [--stills data/stills]
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cyclesiam_train.eval.generate import (DEFAULT_DATA, CutOut, cover_resize, cut_out, motion_blur_kernel,
                                           pose_matrix, random_blob, shape_mask, warp_layer)

STILL_EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclass
class StillClipConfig:
    """How many clips, their size, and the ranges every clip's transforms are drawn from."""

    seed: int = 0
    num_clips: int = 24
    frames: int = 40
    width: int = 640
    height: int = 480
    min_still_side: int = 200  # stills smaller than this (icons, templates) are not used
    object_size: tuple[float, float] = (0.12, 0.22)  # the foreground's smaller height / frame height
    min_scale_change: float = 2.0  # largest / smallest foreground height over a clip, at least ...
    max_scale_change: float = 3.0  # ... and at most
    max_rotation_deg: float = 40.0  # peak in-plane turn of the foreground
    max_speed: float = 8.0  # peak foreground speed, px per frame
    out_of_view_fraction: float = 0.25  # share of clips whose foreground crosses the border
    soft_edge_px: float = 3.0  # Gaussian sigma of the foreground's alpha edge (source pixels)
    background_drift: float = 0.05  # background pan, zoom (relative) and turn (x 20 degrees) at most
    illumination: float = 0.15  # global gain 1 +- this, offset +- 100 x this grey levels
    jpeg_quality: int = 95


@dataclass
class ForegroundMotion:
    """Known per-frame pose of the foreground: centre (px), height (px) and angle (degrees)."""

    centers: np.ndarray  # [T, 2]
    heights: np.ndarray  # [T]
    angles: np.ndarray  # [T]


def list_stills(folder: str | Path, min_side: int = 0) -> list[Path]:
    """Still images under ``folder`` (recursive, sorted) whose shorter side is at least ``min_side``."""
    found = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in STILL_EXTENSIONS and p.is_file())
    keep = []
    for p in found:
        image = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if image is not None and min(image.shape[:2]) >= min_side:
            keep.append(p)
    return keep


def still_groups(paths: list[Path]) -> list[list[Path]]:
    """Stills grouped by name without its trailing number (left01..left14 are one chessboard series),
    so that a series of near-identical photos is drawn as often as one photo."""
    groups: dict[str, list[Path]] = {}
    for p in paths:
        groups.setdefault(str(p.parent / re.sub(r"[_-]?\d+$", "", p.stem)), []).append(p)
    return [groups[k] for k in sorted(groups)]


def draw_still(rng: np.random.Generator, groups: list[list[Path]], avoid: int = -1) -> tuple[int, Path]:
    """(group index, path): a group uniformly (other than ``avoid``), then one of its stills."""
    g = int(rng.integers(len(groups) - (avoid >= 0)))
    if avoid >= 0 and g >= avoid:
        g += 1
    return g, groups[g][int(rng.integers(len(groups[g])))]


def scale_profile(frames: int, change: float, cycles: float, grow: bool) -> np.ndarray:
    """Relative size per frame, 1 .. ``change`` exactly (both ends fall on frames), smooth (cosine in
    log-scale): half a cycle rises over the clip; a whole one rises to a middle frame and falls back."""
    k = np.arange(frames, dtype=np.float64)
    last = max(frames - 1, 1)
    peak = max(1, min(last, int(round(last / (2 * cycles)))))
    rest = max(last - peak, 1)
    phase = np.where(k <= peak, np.pi * k / peak, np.pi + np.pi * (k - peak) / rest)
    u = 0.5 - 0.5 * np.cos(phase)
    if not grow:
        u = 1.0 - u
    return np.exp(np.log(change) * u)


def sample_foreground_motion(rng: np.random.Generator, cfg: StillClipConfig, aspect: float) -> ForegroundMotion:
    """Smooth centre / height / angle tracks; the height spans a factor in [min, max]_scale_change."""
    n = cfg.frames
    t = np.arange(n, dtype=np.float64)
    change = float(rng.uniform(cfg.min_scale_change, cfg.max_scale_change))
    base = cfg.height * float(rng.uniform(*cfg.object_size))
    base = min(base, 0.8 * cfg.height / change)  # the largest pose still fits the frame's height
    heights = base * scale_profile(n, change, float(rng.choice([0.5, 1.0])), bool(rng.random() < 0.5))
    out_of_view = bool(rng.random() < cfg.out_of_view_fraction)
    centers = np.zeros((n, 2))
    for axis, extent in enumerate((cfg.width, cfg.height)):
        half = 0.5 * heights.max() * (aspect if axis == 0 else 1.0)
        # inside clips keep the whole object in view at its largest; others reach past the border
        amp = extent / 2 + 0.3 * half if out_of_view else max(extent / 2 - half, 0.0)
        amp *= float(rng.uniform(0.5, 1.0))
        speed = cfg.max_speed * float(rng.uniform(0.4, 1.0))
        omega = min(speed / amp, 2 * np.pi / 8) if amp > 1e-6 else 0.0
        centers[:, axis] = extent / 2 + amp * np.sin(omega * t + rng.uniform(0, 2 * np.pi))
    turn = cfg.max_rotation_deg * float(rng.uniform(0.3, 1.0))
    angles = turn * np.sin(float(rng.uniform(0.5, 1.5)) * 2 * np.pi / max(n, 1) * t + rng.uniform(0, 2 * np.pi))
    return ForegroundMotion(centers, heights, angles)


def soft_cut_out(image: np.ndarray, mask: np.ndarray, sigma: float) -> CutOut:
    """``cut_out`` of ``mask``'s region with a margin, its alpha a Gaussian-blurred (soft) edge."""
    if sigma <= 0:
        return cut_out(image, mask, "still")
    grow = int(math.ceil(3 * sigma))
    wide = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    cut = cut_out(image, wide, "still")
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma)
    ys, xs = np.nonzero(wide)
    x0, y0 = max(int(xs.min()) - 1, 0), max(int(ys.min()) - 1, 0)
    cut.alpha = soft[y0:y0 + cut.alpha.shape[0], x0:x0 + cut.alpha.shape[1]].copy()
    return cut


def sample_foreground(rng: np.random.Generator, image: np.ndarray, sigma: float) -> CutOut:
    """A random blob region of a still (radius 15-35 % of its shorter side), soft-edged."""
    h, w = image.shape[:2]
    radius = float(rng.uniform(0.15, 0.35)) * min(h, w)
    center = (float(rng.uniform(radius, w - radius)), float(rng.uniform(radius, h - radius)))
    mask = shape_mask((h, w), "polygon", random_blob(rng, center, radius, vertices=int(rng.integers(6, 12))))
    return soft_cut_out(image, mask, sigma)


def background_matrices(rng: np.random.Generator, cfg: StillClipConfig, base_size: tuple[int, int]) -> list[np.ndarray]:
    """Per-frame 2x3 affine from a background of ``base_size`` (w, h, larger than the frame) to the
    frame: its centre on the frame's, then a slow linear pan, zoom and turn."""
    d = cfg.background_drift
    pan = rng.uniform(-d, d, 2) * np.array([cfg.width, cfg.height])
    zoom, turn = float(np.exp(rng.uniform(-d, d))), float(rng.uniform(-d, d) * 20.0)
    centre = (base_size[0] / 2.0, base_size[1] / 2.0)
    to_frame = np.array([cfg.width, cfg.height]) / 2.0 - np.array(centre)
    mats = []
    for u in np.linspace(0.0, 1.0, cfg.frames):
        m = cv2.getRotationMatrix2D(centre, turn * u, float(zoom ** u))
        m[:, 2] += pan * u + to_frame
        mats.append(m)
    return mats


def render_clip(rng: np.random.Generator, cfg: StillClipConfig, background: np.ndarray,
                foreground: np.ndarray) -> tuple[list[np.ndarray], ForegroundMotion]:
    """The frames (BGR uint8) of one clip and the foreground's known motion."""
    size = (cfg.width, cfg.height)
    # the background is cut a little larger than the frame so that the drift never shows its border
    base = cover_resize(background, (int(cfg.width * 1.2), int(cfg.height * 1.2)))
    cut = sample_foreground(rng, foreground, cfg.soft_edge_px)
    motion = sample_foreground_motion(rng, cfg, cut.alpha.shape[1] / cut.alpha.shape[0])
    gains = 1.0 + cfg.illumination * np.sin(np.linspace(0, 2 * np.pi, cfg.frames) + rng.uniform(0, 2 * np.pi))
    offsets = 100.0 * cfg.illumination * rng.uniform(-1, 1) * np.sin(np.linspace(0, np.pi, cfg.frames))
    frames = []
    for t, m in enumerate(background_matrices(rng, cfg, (base.shape[1], base.shape[0]))):
        image = cv2.warpAffine(base, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT).astype(np.float32)
        velocity = motion.centers[t] - motion.centers[t - 1] if t > 0 else np.zeros(2)
        pose = pose_matrix(cut, motion.centers[t], motion.heights[t], motion.angles[t])
        color, alpha = warp_layer(cut, pose, size, motion_blur_kernel(velocity))
        image = image * (1 - alpha[..., None]) + color
        frames.append(np.clip(image * gains[t] + offsets[t], 0, 255).astype(np.uint8))
    return frames, motion


def write_clips(out: str | Path, stills: str | Path, cfg: StillClipConfig) -> list[dict[str, Any]]:
    """Render ``cfg.num_clips`` clips into ``out/clip_NNN/NNNNN.jpg``; returns (and writes to
    ``out/still_clips.json``) each clip's sources and known foreground motion."""
    out = Path(out)
    groups = still_groups(list_stills(stills, cfg.min_still_side))
    if len(groups) < 2:
        raise FileNotFoundError(f"need stills from at least 2 series, of side >= {cfg.min_still_side} under {stills} "
                                f"(run scripts/fetch_data.sh)")
    records = []
    for k in range(cfg.num_clips):
        rng = np.random.default_rng([cfg.seed, k])
        group, bg = draw_still(rng, groups)
        _, fg = draw_still(rng, groups, avoid=group)
        frames, motion = render_clip(rng, cfg, cv2.imread(str(bg), cv2.IMREAD_COLOR),
                                     cv2.imread(str(fg), cv2.IMREAD_COLOR))
        folder = out / f"clip_{k:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for t, frame in enumerate(frames):
            cv2.imwrite(str(folder / f"{t:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
        records.append({"name": folder.name, "background": str(bg.relative_to(stills)),
                        "foreground": str(fg.relative_to(stills)),
                        "centers": motion.centers.round(2).tolist(), "heights": motion.heights.round(3).tolist(),
                        "angles": motion.angles.round(3).tolist()})
    summary = {"config": asdict(cfg), "stills": str(stills), "clips": records}
    (out / "still_clips.json").write_text(json.dumps(summary, indent=1))
    return records


def already_written(out: str | Path, cfg: StillClipConfig) -> bool:
    """True when ``out/still_clips.json`` records ``cfg`` and every clip folder is complete."""
    try:
        summary = json.loads((Path(out) / "still_clips.json").read_text())
    except (OSError, ValueError):
        return False
    if summary.get("config") != json.loads(json.dumps(asdict(cfg))):
        return False
    return all(len(list((Path(out) / c["name"]).glob("*.jpg"))) == cfg.frames for c in summary.get("clips", []))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cyclesiam_train.still_clips", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (clip_NNN/ JPEG folders, still_clips.json)")
    p.add_argument("--stills", default=str(DEFAULT_DATA / "stills"), help="folder of still photos (scripts/fetch_data.sh)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num", type=int, default=StillClipConfig.num_clips, help="number of clips")
    p.add_argument("--frames", type=int, default=StillClipConfig.frames, help="frames per clip")
    p.add_argument("--size", type=int, nargs=2, default=(StillClipConfig.width, StillClipConfig.height),
                   metavar=("W", "H"))
    p.add_argument("--min-scale-change", type=float, default=StillClipConfig.min_scale_change,
                   help="largest / smallest foreground height over a clip, at least this (>= 1)")
    p.add_argument("--if-missing", action="store_true", help="do nothing when OUT already holds these clips")
    args = p.parse_args(argv)
    if args.min_scale_change < 1 or args.num < 1 or args.frames < 2:
        p.error("--min-scale-change must be >= 1, --num >= 1, --frames >= 2")
    cfg = StillClipConfig(seed=args.seed, num_clips=args.num, frames=args.frames, width=args.size[0],
                          height=args.size[1], min_scale_change=args.min_scale_change,
                          max_scale_change=max(StillClipConfig.max_scale_change, args.min_scale_change))
    if args.if_missing and already_written(args.out, cfg):
        print(f"{cfg.num_clips} still clips (seed {cfg.seed}) already in {args.out}; not rewritten")
        return 0
    try:
        records = write_clips(args.out, args.stills, cfg)
    except FileNotFoundError as exc:
        print(f"error: {exc}")
        return 1
    print(f"wrote {len(records)} clips of {cfg.frames} frames to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
