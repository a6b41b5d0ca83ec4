"""Configuration of training, seeding, evaluation and sequence generation (cyclesiam_train).

The training `Config` is the core's (model, tracker, runtime: `cyclesiam.config`) plus the
`train` and `eval` sections, with the same attribute names (`cfg.train.x`, `cfg.tracker.x`).
The core's loading and validation functions are re-exported so a training module needs one
import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from cyclesiam import config as core
from cyclesiam.config import (AnchorConfig, ConfigError, ModelConfig, RuntimeConfig, TrackerConfig, from_dict,
                              merge, parse_dotted, read_yaml, response_size, to_dict, validate)

__all__ = ["AnchorConfig", "Config", "ConfigError", "EvalConfig", "ModelConfig", "RuntimeConfig", "SeedConfig",
           "SyntheticConfig", "TrackerConfig", "TrainConfig", "from_dict", "load_config", "merge", "parse_dotted",
           "read_yaml", "response_size", "to_dict", "validate"]


@dataclass
class SeedConfig:
    """Where the initial target of each training clip comes from."""

    source: str = "random"  # random | file | topic
    file: str = ""  # YAML of seeds (bag, topic, stamp, box, optional mask)
    topic: str = ""  # recorded vision_msgs/Detection2DArray topic
    random_min_size: float = 0.1  # random boxes: side as a fraction of the shorter image side
    random_max_size: float = 0.4
    random_max_aspect: float = 2.0  # random boxes: w/h drawn log-uniformly in [1/a, a]
    random_candidates: int = 8  # random boxes: draw this many, keep the best by random_score (1 = purely random)
    # texture: most gradient energy inside | contrast: colours most unlike the ring around the box
    # (object-like boxes whose edges are real boundaries, which is what teaches the box size)
    random_score: str = "texture"
    image_topic: str = ""  # topic seeds: image topic the detections refer to ("" = the bag's only image topic)
    stamp_tolerance: float = 0.05  # seconds: a seed stamp matches the nearest frame within this
    box_mask: str = "ellipse"  # initial mask when a seed has none: ellipse (inscribed) | rectangle


@dataclass
class TrainConfig:
    """Self-supervised cycle training (cyclesiam_train). Paper: SGD, lr 1e-3, batch 32."""

    seed: int = 0
    steps: int = 2000
    # the crops' context: p = context_amount * (w + h) (pysot 0.5). The tracker's own
    # (tracker.context_amount, 0.3) is tuned for tracking and no longer changes the training recipe
    context_amount: float = 0.5
    batch_size: int = 32
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 10.0
    # cycle: frames t1 -> t2 (-> t3) -> ... -> t1
    cycle_length: int = 2  # 2 = 1->2->1, 3 = 1->2->3->2->1
    cycle_return: str = "retrace"  # longer cycles: retrace (1->2->3->2->1) | direct (1->2->3->1)
    canvas_size: int = 511  # per-frame working crop (search-crop scale of t1's box) the hops are cut from
    frame_gap_min: int = 1
    frame_gap_max: int = 10
    differentiable_hops: bool = False  # gradients through the middle hops' crops
    search_shift: float = 64.0  # max random shift of the search crop centre (pixels, crop scale)
    search_scale_jitter: float = 0.05
    # probability that all frames of a cycle are turned grey (3 equal channels): robots often run
    # monochrome cameras, and colour must not be the only cue the tracker learns (SiamFC trains so too)
    gray_probability: float = 0.0
    # illumination jitter: each frame of a cycle is scaled by exp(U(-j, j)) and shifted by
    # U(-j, j) x 50 grey levels, independently (lighting and auto-exposure change between frames;
    # the tracker must follow the object, not its brightness). 0 = off
    illumination_jitter: float = 0.0
    # rotation jitter: every cycle frame after the first is cut rotated by U(-r, r) degrees about
    # the seed box centre (the first frame carries the box and the loss and is never rotated);
    # the training clips have almost no in-plane rotation. 0 = off
    rotation_jitter: float = 0.0
    # losses: L = cls_weight * L_score + loc_weight * L_box + mask_weight * L_mask
    cls_weight: float = 1.0
    loc_weight: float = 1.2
    mask_weight: float = 36.0
    # true: the mask loss trains only the mask MLP, not the head tower it reads (shared with
    # score and box); stops the mask term from pulling the box regression off (docs/MODEL.md)
    mask_detach_tower: bool = False
    negative_weight: float = 0.2
    # fraction of the sampled negatives taken as the highest-scoring ones (online hard negatives:
    # distractors in the search crop) instead of at random; 0 = all random (the paper)
    hard_negatives: float = 0.0
    positive_iou: float = 0.6
    negative_iou: float = 0.3
    max_positives: int = 16
    max_anchors: int = 64
    smooth_l1_beta: float = 0.1111  # box loss: smooth L1 transition point (Faster R-CNN RPN: 1/9)
    # scale ranking (not in the paper; 0 = off): the last hop also searches t1 at a second crop
    # scale (x tracker.scale_step^+-1), and of the two crops the one whose scale is nearer the
    # initial target's must score higher near the target (logistic loss on the score margin).
    # Trains the decision the tracker's scale search makes (docs/MODEL.md, "Scale").
    scale_rank_weight: float = 0.0
    scale_rank_radius: int = 1  # response cells around the target's cell that the score margin is taken over
    # template the ranking's crops are searched with: hop (the final hop's, from the predicted box of
    # the last middle frame) | initial (t1's own initial box: the right scale is exactly known)
    scale_rank_template: str = "hop"
    # backbone
    backbone_weights: str = ""  # ImageNet weights (torchvision layout) for initialisation
    freeze_backbone_steps: int = -1  # -1 = frozen for the whole run; N = unfreeze after N steps
    backbone_lr_scale: float = 0.1
    # data
    topics: list[str] = field(default_factory=list)  # empty = every image topic
    seeds: SeedConfig = field(default_factory=SeedConfig)
    clip_length: int = 0  # frames per clip for seeding; 0 = whole stream is one clip
    workers: int = 2
    # checkpoints and logging
    checkpoint_every: int = 200
    log_every: int = 10
    amp: bool = True  # mixed precision on CUDA only
    plot_every: int = 0  # also redraw the loss plot every N steps (0 = only at the end)


@dataclass
class SyntheticConfig:
    """Composited evaluation sequences with exact ground truth (cyclesiam-gen-sequences).

    Real object cut-outs (mbt_cube / mire2 textures with real-shaped masks) over real
    background video (cityCC0 / tree / mire2); every value here is a per-sequence range
    or switch, sampled deterministically from the seed.
    """

    seed: int = 0
    num_sequences: int = 4
    frames: int = 100
    width: int = 384
    height: int = 288
    fps: float = 30.0
    object_size: list[float] = field(default_factory=lambda: [0.18, 0.3])  # initial object side / image height
    scale_range: list[float] = field(default_factory=lambda: [0.7, 1.4])  # object scale over the sequence
    max_rotation_deg: float = 30.0  # peak in-plane rotation
    max_speed: float = 6.0  # peak translation speed, pixels per frame
    occlusion: bool = True  # a second real cut-out passes over the object
    occlusion_fraction: float = 0.5  # how far the occluder reaches into the object box (0..1)
    illumination: bool = True  # gain/offset change of the whole frame over time
    motion_blur: bool = True  # linear blur along the motion when moving fast
    keyframe_every: int = 1  # bag YAML: annotate every N-th frame (sparse keyframes)
    topic: str = "/cam/image_raw"
    jpeg_quality: int = 95


@dataclass
class EvalConfig:
    """Evaluation protocols (cyclesiam_train.eval). Formulas: cyclesiam_train/eval/metrics.py."""

    success_thresholds: int = 21  # IoU thresholds 0..1 for the OTB success curve
    # OTB toolkit compares IoU > t (a perfect tracker then scores 20/21 = 0.952 AUC). False:
    # success at t when IoU >= t and IoU > 0 (perfect tracker = 1, zero overlap never succeeds).
    success_strict: bool = False
    precision_threshold: float = 20.0  # pixels, reported precision
    precision_max: float = 50.0  # precision curve over 0..precision_max pixels (1 px steps)
    norm_precision_threshold: float = 0.2  # reported normalised precision (LaSOT/TrackingNet)
    norm_precision_max: float = 0.5  # normalised precision curve over 0..0.5 (51 points)
    vot_skip: int = 5  # re-init this many frames after a failure
    vot_burn_in: int = 10  # frames after each (re-)initialisation excluded from accuracy
    vot_failure_iou: float = 0.0  # a failure is IoU <= this on an annotated frame
    eao_low: int = 0  # EAO length range in annotated frames; 0/0 = automatic (see metrics.eao_range)
    eao_high: int = 0
    davis_bound_th: float = 0.008  # F boundary tolerance: fraction of the image diagonal (>= 1: pixels)
    davis_resolution: str = "480p"  # DAVIS sub-folder of JPEGImages/ and Annotations/
    protocols: list[str] = field(default_factory=lambda: ["ope", "vot"])  # ope (OTB one-pass) and/or vot (re-init)
    # [dx, dy] pixels added to every initialisation box (one-pass start and VOT re-inits); scoring
    # uses the annotation unchanged. A few 1-px shifts show how much a figure owes to chance
    # (a tracker is chaotic: the host's float rounding moves it as much): cyclesiam_train/eval/spread.py
    init_shift: list[float] = field(default_factory=lambda: [0.0, 0.0])
    mask_from_box: bool = True  # box-only trackers: their filled box is the mask for J/F
    sequences: list[str] = field(default_factory=list)  # evaluate only these names; empty = all
    max_frames: int = 0  # truncate every sequence to this many frames; 0 = whole sequence
    bag_stamp_tolerance_ns: int = 1_000_000  # keyframe stamp to image header stamp matching
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class Config(core.Config):
    """The whole training/evaluation configuration: the core's sections plus train and eval."""

    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then the YAML file at `path` (if any), then `overrides` (nested dict)."""
    return core.load_config(path, overrides, cls=Config)
