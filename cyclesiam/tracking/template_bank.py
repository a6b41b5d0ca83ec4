"""Template bank (tracker.template_bank): which kernels a target searches with.

none       the target's one kernel (Target.zf), as SiamRPN.
rotations  also its first template crop rotated in-plane by +-template_bank_angle degrees; per target
           the kernel whose best penalised, windowed score is highest wins, so the cosine window, not
           the raw score, decides between a turned target and a look-alike that still matches the
           upright template. A top-down camera sees turning targets among look-alikes (fish in a tank,
           parts on a conveyor, robots on a floor): with one kernel a target turned by 55+ degrees
           scores under its upright neighbours and the track jumps to one (docs/MODEL.md, the zebrafish).
           Costs one search row per extra kernel. The LOST rule's similarity and the size still compare
           with the first template; the rotated kernels are not updated by tracker.template_update.
rotations_on_drop
           rotations, gated: the turned kernels are searched only on frames after one where the target's
           own (upright) kernel scored below template_bank_trigger, and for template_bank_hold frames
           after the last such frame. On every other frame the search is exactly "none"'s (same rows,
           same boxes), so a target the upright kernel holds costs nothing extra.

A new bank is one class here and one entry in TEMPLATE_BANKS.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import cv2
import numpy as np
import torch

from cyclesiam.config import TrackerConfig
from cyclesiam.tracking.search import SearchRows
from cyclesiam.tracking.target import Target

Embed = Callable[[torch.Tensor], torch.Tensor]  # template crops [K, 3, T, T] -> features [K, C, t, t]


class OneTemplate:
    """"none": the target's own kernel only."""

    def __init__(self, cfg: TrackerConfig) -> None:
        self.cfg = cfg

    def kernels(self, target: Target, embed: Embed) -> list[torch.Tensor]:
        return [target.zf]


class RotatedTemplates(OneTemplate):
    """"rotations": the kernel plus the first template crop turned by +-template_bank_angle."""

    def kernels(self, target: Target, embed: Embed) -> list[torch.Tensor]:
        if target.template_crop is None:
            return [target.zf]
        angles = (self.cfg.template_bank_angle, -self.cfg.template_bank_angle)
        if target.bank is None or target.bank_angles != angles:
            crops = torch.stack([rotate_crop(target.template_crop, a) for a in angles])
            target.bank, target.bank_angles = embed(crops).clone(), angles
        return [target.zf, *target.bank]


class RotationsOnDrop(RotatedTemplates):
    """"rotations_on_drop": the rotations bank, searched only while the own kernel's score is low (or was, within
    template_bank_hold frames). The signal is the previous frame's, so no frame is searched twice."""

    def kernels(self, target: Target, embed: Embed) -> list[torch.Tensor]:
        if target.upright_score < self.cfg.template_bank_trigger:
            target.bank_hold = self.cfg.template_bank_hold
        elif target.bank_hold > 0:
            target.bank_hold -= 1
        else:
            return [target.zf]
        return super().kernels(target, embed)


TEMPLATE_BANKS: dict[str, type[OneTemplate]] = {"none": OneTemplate, "rotations": RotatedTemplates,
                                                "rotations_on_drop": RotationsOnDrop}


def template_bank(cfg: TrackerConfig) -> OneTemplate:
    return TEMPLATE_BANKS[cfg.template_bank](cfg)


def rotate_crop(crop: torch.Tensor, degrees: float) -> torch.Tensor:
    """A template crop [3, T, T] turned by `degrees` (counter-clockwise on screen) about its centre;
    the corners that come from outside repeat the crop's border (the crop is already padded with the
    image mean where it ran past the image)."""
    image = np.ascontiguousarray(crop.detach().cpu().permute(1, 2, 0).numpy(), dtype=np.float32)
    side = image.shape[0]
    matrix = cv2.getRotationMatrix2D(((side - 1) / 2.0, (side - 1) / 2.0), degrees, 1.0)
    turned = cv2.warpAffine(image, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return torch.from_numpy(turned).permute(2, 0, 1).to(device=crop.device, dtype=crop.dtype)


def best_kernel_rows(best_pscore: np.ndarray, counts: list[int], n_scales: int) -> np.ndarray:
    """Rows of the kernel that wins per target. best_pscore [sum(counts) * n_scales] is kernel-major
    within target, scale-minor; a kernel's value is its best over scales; ties go to the first kernel
    (the target's own). -> row indices [len(counts) * n_scales], target-major."""
    rows, start = [], 0
    for count in counts:
        block = best_pscore[start:start + count * n_scales].reshape(count, n_scales).max(axis=1)
        block = np.where(np.isfinite(block), block, -np.inf)
        k = int(np.argmax(block))
        rows.extend(range(start + k * n_scales, start + (k + 1) * n_scales))
        start += count * n_scales
    return np.asarray(rows, dtype=np.int64)


def own_kernel_scores(raw: np.ndarray, counts: list[int], n_scales: int) -> np.ndarray:
    """Each target's best raw score over the rows of its own kernel (the first of its block), as
    best_kernel_rows lays the rows out -> [len(counts)]."""
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) * n_scales
    return np.array([raw[s:s + n_scales].max() for s in starts], dtype=np.float64)


def bank_search(cfg: TrackerConfig, members: list[Target], n_scales: int, embed: Embed,
                run: Callable[[list[Target]], SearchRows]) -> SearchRows:
    """`run` (the search of a member list) over every member x each of its kernels, then only the
    winning kernel's rows per member: the same rows one kernel would give. Each member's
    `upright_score` becomes its own kernel's best raw score (the gate of "rotations_on_drop")."""
    bank = template_bank(cfg)
    kernels = [bank.kernels(t, embed) for t in members]
    counts = [len(k) for k in kernels]
    # a member searched with its own kernel only is its own view (no copy)
    found = run([t if k is t.zf else dataclasses.replace(t, zf=k) for t, ks in zip(members, kernels) for k in ks])
    for t, score in zip(members, own_kernel_scores(found.post.score, counts, n_scales)):
        t.upright_score = float(score)
    if all(c == 1 for c in counts):
        return found
    return found.take(best_kernel_rows(found.post.best_pscore(), counts, n_scales))
