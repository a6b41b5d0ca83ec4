#!/usr/bin/env python3
"""Annotation helper for the real validation set (annotations/real/, protocol in its README).

    scripts/annotate_render.py render CLIP [--frames SPEC] [--out outputs/annotate]
        review sheets: per keyframe the frame with the box (green) and mask outline (red),
        then 3x zoomed, contrast-stretched windows on the four box edges with a labelled
        10 px grid in frame coordinates; read the edges off these and correct.
    scripts/annotate_render.py grabcut CLIP --frames SPEC [--seed x,y,w,h] [--masks SPEC]
        [--keep SPEC] [--grow 0.15] [--convex] [--no-prior] [--hull] [--texture T] [--between]
        proposal + mask: cv2.grabCut seeded with a box = the previous keyframe's box (or
        --seed, placed by hand, for the first one): background outside the box grown by
        --grow, probable foreground inside the shrunk box (or the previous mask, unless
        --no-prior); the box is the extreme points of the largest component. Rows in --keep
        (hand-read) are not replaced, only used as seeds. --convex / --hull: convex hull (of
        the part inside the box / search region); --texture: add printed texture (local std
        > T); --between: search between the neighbouring --keep boxes. Masks are written for
        the --masks frames.
    scripts/annotate_render.py set CLIP FRAME x,y,w,h|nan   a hand-read row (nan: absent)
    scripts/annotate_render.py poly CLIP FRAME add|remove x1,y1 x2,y2 ...   mask correction

SPEC: comma list of frames and start:stop:step ranges (stop exclusive), e.g. 0:218:5,217.
CLIP is a folder annotations/real/<clip>; frames come from data/<frames of source.txt>.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cyclesiam.sources import open_source  # noqa: E402

DATA = Path(os.environ.get("CYCLESIAM_DATA", ROOT / "data"))
ZOOM = 3
SHRINK = 0.2  # share of the seed box side left as probable background
EDGE_WINDOW = 60  # px of the frame around each box edge in the zoomed windows


def read_source_txt(clip: Path) -> dict[str, str]:
    """source.txt as a dict of its `key: value` lines."""
    info = {}
    for line in (clip / "source.txt").read_text().splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def read_rows(clip: Path) -> np.ndarray:
    """groundtruth_rect.txt as an (N, 4) float array, nan rows for non-keyframes/absent."""
    rows = [[float(v) for v in line.split(",")] for line in (clip / "groundtruth_rect.txt").read_text().split()]
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def write_rows(clip: Path, rows: np.ndarray) -> None:
    lines = ["nan,nan,nan,nan" if not np.isfinite(r).all() else ",".join(f"{v:.1f}" for v in r) for r in rows]
    (clip / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    (clip / "absent.txt").touch()


def read_absent(clip: Path) -> list[int]:
    path = clip / "absent.txt"
    return [int(v) for v in path.read_text().split()] if path.exists() else []


def parse_spec(spec: str) -> list[int]:
    frames: list[int] = []
    for part in spec.split(","):
        if ":" in part:
            start, stop, *step = (int(v) for v in part.split(":"))
            frames.extend(range(start, stop, step[0] if step else 1))
        elif part:
            frames.append(int(part))
    return sorted(set(frames))


def mask_path(clip: Path, frame: int) -> Path:
    return clip / "masks" / f"{frame:05d}.png"


def box_of_mask(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()], dtype=np.float64)


def grabcut_mask(image: np.ndarray, seed: np.ndarray, grow_by: float, convex: bool, prior: np.ndarray | None = None) -> np.ndarray:
    """Largest foreground component of cv2.grabCut seeded with a box, holes filled (mono8, 255 = target).

    Outside the box grown by `grow_by`: background; inside: probable background, except the
    probable foreground: the previous keyframe's mask `prior` eroded, or without one the box
    shrunk by SHRINK (a plain rectangle init loses targets that fill most of the rectangle).
    """
    h, w = image.shape[:2]
    gc = np.full((h, w), cv2.GC_BGD, np.uint8)
    x0, y0, x1, y1 = corners(grow(seed, grow_by), w, h)
    gc[y0:y1, x0:x1] = cv2.GC_PR_BGD
    if prior is not None and prior.any():
        k = max(3, int(0.1 * min(seed[2], seed[3])))
        core = cv2.erode(prior, np.ones((k, k), np.uint8))
        ring = cv2.dilate(prior, np.ones((k, k), np.uint8))
        gc[(ring == 0) & (gc == cv2.GC_PR_BGD)] = cv2.GC_BGD
        gc[core > 0] = cv2.GC_PR_FGD
    else:
        x0, y0, x1, y1 = corners(grow(seed, -SHRINK), w, h)
        gc[y0:y1, x0:x1] = cv2.GC_PR_FGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(image, gc, None, bgd, fgd, 5, cv2.GC_INIT_WITH_MASK)
    fg = np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n < 2:
        return np.zeros((h, w), np.uint8)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = (labels == largest).astype(np.uint8) * 255
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = np.zeros_like(mask)
    if convex:  # the targets chosen with --convex are convex solids / plates seen unoccluded
        cv2.fillPoly(out, [cv2.convexHull(np.vstack(contours))], 255)
    else:
        cv2.drawContours(out, contours, -1, 255, cv2.FILLED)
    return out


def add_texture(image: np.ndarray, mask: np.ndarray, region: np.ndarray, threshold: float) -> np.ndarray:
    """Convex hull of (grabcut foreground + textured pixels) inside `region`.

    For printed-paper solids whose light, textured faces grabCut in grey gives to the light
    desk (mbt_cube's top face): local 5x5 std above `threshold` marks the print, the shaded
    faces come from grabCut, and the hull (the cube's silhouette is convex) joins them.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    mean = cv2.blur(grey, (5, 5))
    std = np.sqrt(np.maximum(cv2.blur(grey * grey, (5, 5)) - mean * mean, 0))
    x0, y0, x1, y1 = corners(region, image.shape[1], image.shape[0])
    fg = np.zeros_like(mask)
    fg[y0:y1, x0:x1] = np.maximum((std[y0:y1, x0:x1] > threshold) * 255, mask[y0:y1, x0:x1]).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg)
    out = np.zeros_like(mask)
    if n > 1:
        largest = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
        contours, _ = cv2.findContours(largest, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.fillPoly(out, [cv2.convexHull(np.vstack(contours))], 255)
    return out


def between(rows: np.ndarray, keep: set[int], frame: int) -> np.ndarray:
    """Union of the hand-read boxes of the kept keyframes just before and after `frame`."""
    before = rows[max(k for k in keep if k < frame)]
    after = rows[min(k for k in keep if k > frame)]
    x0, y0 = min(before[0], after[0]), min(before[1], after[1])
    x1, y1 = max(before[0] + before[2], after[0] + after[2]), max(before[1] + before[3], after[1] + after[3])
    return np.array([x0, y0, x1 - x0, y1 - y0])


def plausible(mask: np.ndarray, seed: np.ndarray) -> bool:
    """A proposal within a factor 2 of the seed's area (between keyframes the size changes less)."""
    return bool(mask.any()) and 0.5 <= np.prod(box_of_mask(mask)[2:]) / np.prod(seed[2:]) <= 2.0


def grow(box: np.ndarray, factor: float) -> np.ndarray:
    x, y, w, h = box
    return np.array([x - w * factor / 2, y - h * factor / 2, w * (1 + factor), h * (1 + factor)])


def corners(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer x0, y0, x1, y1 of a box, clipped to the image."""
    x, y, w, h = box
    return (max(0, int(round(x))), max(0, int(round(y))), min(width, int(round(x + w))), min(height, int(round(y + h))))


def cmd_grabcut(args: argparse.Namespace) -> None:
    clip = Path(args.clip)
    source = open_source(DATA / read_source_txt(clip)["frames"])
    rows = read_rows(clip) if (clip / "groundtruth_rect.txt").exists() else np.full((len(source), 4), np.nan)
    keep = set(parse_spec(args.keep)) if args.keep else set()
    masks = set(parse_spec(args.masks)) if args.masks else set()
    absent = set(read_absent(clip))
    previous = np.array([float(v) for v in args.seed.split(",")]) if args.seed else None
    prior = None
    (clip / "masks").mkdir(exist_ok=True)
    for f in parse_spec(args.frames):
        if f in absent:
            continue
        seed = rows[f] if f in keep else previous
        if seed is None or not np.isfinite(seed).all():
            raise SystemExit(f"frame {f}: no seed (give --seed or annotate the previous keyframe)")
        mask = grabcut_mask(source.frame(f), seed, args.grow, args.convex, prior if f not in keep and not args.no_prior else None)
        if not plausible(mask, seed) and f not in keep:  # the prior led astray: start from the box alone
            mask = grabcut_mask(source.frame(f), seed, args.grow, args.convex)
        if args.texture or args.hull:
            region = seed if f in keep else grow(between(rows, keep, f) if args.between else seed, args.grow)
            mask = add_texture(source.frame(f), mask, region, args.texture or np.inf)
        if not plausible(mask, seed):
            mask[:] = 0
        if f not in keep:
            rows[f] = box_of_mask(mask) if mask.any() else np.nan
        if f in masks:
            cv2.imwrite(str(mask_path(clip, f)), mask)
        if np.isfinite(rows[f]).all():
            previous, prior = rows[f], mask
        print(f, ",".join(f"{v:.1f}" for v in rows[f]))
    write_rows(clip, rows)


def cmd_set(args: argparse.Namespace) -> None:
    clip = Path(args.clip)
    rows = read_rows(clip)
    absent = set(read_absent(clip))
    if args.box == "nan":
        rows[args.frame] = np.nan
        absent.add(args.frame)
    else:
        rows[args.frame] = [float(v) for v in args.box.split(",")]
        absent.discard(args.frame)
    (clip / "absent.txt").write_text("".join(f"{i}\n" for i in sorted(absent)))
    write_rows(clip, rows)


def cmd_poly(args: argparse.Namespace) -> None:
    path = mask_path(Path(args.clip), args.frame)
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    points = np.array([[int(float(v)) for v in p.split(",")] for p in args.points], np.int32)
    cv2.fillPoly(mask, [points], 255 if args.op == "add" else 0)
    cv2.imwrite(str(path), mask)


def stretch(grey: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(grey, (1, 99))
    return np.clip((grey.astype(np.float32) - lo) * 255.0 / max(hi - lo, 1.0), 0, 255).astype(np.uint8)


def edge_window(image: np.ndarray, mask: np.ndarray | None, box: np.ndarray, cx: float, cy: float, label: str) -> np.ndarray:
    """3x zoom of the EDGE_WINDOW px around (cx, cy) with a labelled 10 px grid, box and mask outline."""
    h, w = image.shape[:2]
    half = EDGE_WINDOW // 2
    x0 = int(np.clip(round(cx) - half, -half, w - half))
    y0 = int(np.clip(round(cy) - half, -half, h - half))
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    pad = cv2.copyMakeBorder(grey, EDGE_WINDOW, EDGE_WINDOW, EDGE_WINDOW, EDGE_WINDOW, cv2.BORDER_CONSTANT, value=0)
    crop = pad[y0 + EDGE_WINDOW:y0 + 2 * EDGE_WINDOW, x0 + EDGE_WINDOW:x0 + 2 * EDGE_WINDOW]
    tile = cv2.cvtColor(cv2.resize(stretch(crop), None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR)
    for gx in range((x0 // 10 + 1) * 10, x0 + EDGE_WINDOW, 10):
        px = (gx - x0) * ZOOM
        cv2.line(tile, (px, 0), (px, tile.shape[0]), (255, 160, 0) if gx % 50 else (255, 0, 255), 1)
        cv2.putText(tile, str(gx), (px + 1, 9), cv2.FONT_HERSHEY_PLAIN, 0.6, (255, 255, 0), 1)
    for gy in range((y0 // 10 + 1) * 10, y0 + EDGE_WINDOW, 10):
        py = (gy - y0) * ZOOM
        cv2.line(tile, (0, py), (tile.shape[1], py), (255, 160, 0) if gy % 50 else (255, 0, 255), 1)
        cv2.putText(tile, str(gy), (1, py - 1), cv2.FONT_HERSHEY_PLAIN, 0.6, (255, 255, 0), 1)
    if mask is not None:
        sub = np.pad(mask, EDGE_WINDOW)[y0 + EDGE_WINDOW:y0 + 2 * EDGE_WINDOW, x0 + EDGE_WINDOW:x0 + 2 * EDGE_WINDOW]
        big = cv2.resize(sub, None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(tile, contours, -1, (0, 0, 255), 1)
    bx, by, bw, bh = box
    p0 = (int(round((bx - x0) * ZOOM)), int(round((by - y0) * ZOOM)))
    p1 = (int(round((bx + bw - x0) * ZOOM)), int(round((by + bh - y0) * ZOOM)))
    cv2.rectangle(tile, p0, p1, (0, 255, 0), 1)
    cv2.putText(tile, label, (tile.shape[1] - 14, tile.shape[0] - 4), cv2.FONT_HERSHEY_PLAIN, 1, (0, 255, 255), 1)
    return tile


def review_row(image: np.ndarray, mask: np.ndarray | None, box: np.ndarray, frame: int) -> np.ndarray:
    size = EDGE_WINDOW * ZOOM
    overview = image.copy()
    if mask is not None:
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(overview, contours, -1, (0, 0, 255), 1)
    if np.isfinite(box).all():
        x, y, w, h = box
        cv2.rectangle(overview, (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h))), (0, 255, 0), 1)
    scale = size / overview.shape[0]
    overview = cv2.resize(overview, (int(overview.shape[1] * scale), size), interpolation=cv2.INTER_AREA)
    label = f"{frame}" + ("" if np.isfinite(box).all() else " absent/none")
    cv2.putText(overview, label, (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 2)
    tiles = [overview]
    if np.isfinite(box).all():
        x, y, w, h = box
        # windows centred on the extreme points of the mask when there is one, else mid-edge
        points = {"L": (x, y + h / 2), "T": (x + w / 2, y), "R": (x + w, y + h / 2), "B": (x + w / 2, y + h)}
        if mask is not None and mask.any():
            ys, xs = np.nonzero(mask)
            points = {
                "L": (xs.min(), ys[xs == xs.min()].mean()), "T": (xs[ys == ys.min()].mean(), ys.min()),
                "R": (xs.max(), ys[xs == xs.max()].mean()), "B": (xs[ys == ys.max()].mean(), ys.max()),
            }
        tiles += [edge_window(image, mask, box, px, py, k) for k, (px, py) in points.items()]
    row = np.hstack(tiles)
    return np.pad(row, ((0, 4), (0, 0), (0, 0)))


def cmd_render(args: argparse.Namespace) -> None:
    clip = Path(args.clip)
    source = open_source(DATA / read_source_txt(clip)["frames"])
    rows = read_rows(clip)
    frames = parse_spec(args.frames) if args.frames else [i for i in range(len(rows)) if np.isfinite(rows[i]).all() or i in read_absent(clip)]
    out = Path(args.out) / clip.name
    out.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(frames), args.per_sheet):
        sheet_rows = []
        for f in frames[start:start + args.per_sheet]:
            mp = mask_path(clip, f)
            mask = cv2.imread(str(mp), cv2.IMREAD_GRAYSCALE) if mp.exists() else None
            sheet_rows.append(review_row(source.frame(f), mask, rows[f], f))
        width = max(r.shape[1] for r in sheet_rows)
        sheet = np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in sheet_rows])
        path = out / f"sheet_{frames[start]:05d}.png"
        cv2.imwrite(str(path), sheet)
        print(path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("clip")
    r.add_argument("--frames")
    r.add_argument("--out", default=str(ROOT / "outputs" / "annotate"))
    r.add_argument("--per-sheet", type=int, default=6)
    g = sub.add_parser("grabcut")
    g.add_argument("clip")
    g.add_argument("--frames", required=True)
    g.add_argument("--seed")
    g.add_argument("--masks")
    g.add_argument("--keep")
    g.add_argument("--grow", type=float, default=0.15)
    g.add_argument("--convex", action="store_true")
    g.add_argument("--texture", type=float, help="also count pixels of local std above this as target (see add_texture)")
    g.add_argument("--hull", action="store_true", help="convex hull of the mask inside the box (--keep) / search region")
    g.add_argument("--between", action="store_true", help="with --texture: search between the neighbouring --keep boxes")
    g.add_argument("--no-prior", action="store_true", help="seed every keyframe with the box alone, not the previous mask")
    s = sub.add_parser("set")
    s.add_argument("clip")
    s.add_argument("frame", type=int)
    s.add_argument("box")
    q = sub.add_parser("poly")
    q.add_argument("clip")
    q.add_argument("frame", type=int)
    q.add_argument("op", choices=("add", "remove"))
    q.add_argument("points", nargs="+")
    args = p.parse_args(argv)
    {"render": cmd_render, "grabcut": cmd_grabcut, "set": cmd_set, "poly": cmd_poly}[args.cmd](args)


if __name__ == "__main__":
    main()
