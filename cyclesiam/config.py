"""One typed configuration system for the model, the tracker, the node, training and evaluation.

Every hyper-parameter has a name and a default here. Experiments are YAML files merged
over these defaults (`load_config`); unknown keys are an error, so a typo never silently
falls back to a default. Config objects are passed explicitly: there is no global config.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the key."""


@dataclass
class AnchorConfig:
    stride: int = 8
    ratios: list[float] = field(default_factory=lambda: [0.33, 0.5, 1.0, 2.0, 3.0])
    scales: list[float] = field(default_factory=lambda: [8.0])

    @property
    def num_anchors(self) -> int:
        return len(self.ratios) * len(self.scales)


@dataclass
class ModelConfig:
    """Network architecture. Stored in every checkpoint's metadata."""

    backbone: str = "mobilenet_v2"  # see cyclesiam.models.backbone.BACKBONES
    channels: int = 64  # neck output width C (correlation and heads work at this width)
    head_channels: int = 64  # width of the shared head tower after correlation
    template_size: int = 127
    search_size: int = 255
    template_feature_crop: int = 8  # centre crop of template features (SiamMask: 7 at 15x15)
    anchor: AnchorConfig = field(default_factory=AnchorConfig)
    mask: bool = True  # build the 63x63 mask head
    mask_size: int = 63
    mask_hidden: int = 256  # hidden width of the per-position mask MLP

    @property
    def score_size(self) -> int:
        """Side of the response map for the standard search size."""
        return response_size(self, self.search_size)


def response_size(model: ModelConfig, search_size: int) -> int:
    """Side of the response map for a search crop of `search_size` pixels."""
    feature = math.ceil(search_size / model.anchor.stride)
    template = math.ceil(model.template_size / model.anchor.stride)
    crop = min(model.template_feature_crop, template)
    return feature - crop + 1


@dataclass
class TrackerConfig:
    """Per-frame inference logic (SiamRPN/SiamMask post-processing). Reference defaults: pysot SiamMask."""

    # p = context_amount * (w + h). 0.3 in tracking: a tighter template than pysot's 0.5 gives the target a
    # larger share than its surroundings (docs/MODEL.md, "Robustness on the mire2 background"); the
    # shipped model was trained with 0.5 crops (config/train_default.yaml pins that)
    context_amount: float = 0.3
    penalty_k: float = 0.10  # scale/ratio change penalty
    window_influence: float = 0.30  # cosine window blend (pysot SiamMask: 0.41; see docs/MODEL.md)
    lr: float = 0.32  # size smoothing
    min_size: float = 4.0  # minimum box side in pixels
    # scale search: compare the target at size x scale_step^i, i in -(n//2)..n//2 (n odd), keep the best
    # scale (x scale_penalty when not 1) and move the size towards it, not towards the box regression's
    # size, which the default model's regression does not sense (docs/MODEL.md); 1 = off (pysot: size
    # from the regression). How the scales are compared: scale_from below
    scale_steps: int = 5
    scale_step: float = 1.05
    scale_penalty: float = 0.998
    # per-target scale calibration: when a target is added, its first frame is searched at the
    # scale-search scales too, where the true scale is known (the given box). A scale that scores
    # above the true one there is damped by that ratio for the rest of the track, so a model's
    # lean towards one scale on this target's appearance does not walk the size away (docs/MODEL.md)
    scale_calibration: bool = True
    # what the scale search compares: "template" = one search at the current size, then template-sized
    # crops at size x each scale around the new centre are embedded and the one whose features are most
    # similar (cosine) to the target's template wins (n template passes, each ~1/4 of a search pass);
    # "score" = the best penalised score of n searches (SiamFC; was the default with scale_steps 3,
    # scale_step 1.1). scale_calibration is used by "score" only
    scale_from: str = "template"
    # where the new centre comes from: "regression" = the box regression at the best anchor (pysot);
    # "peak" = the best cell of the penalised, windowed score refined to sub-cell precision by a
    # parabola through its neighbours (the regression's offset unused). With the default model "peak"
    # is better on the generated sequences and worse on the real dev clips (docs/MODEL.md).
    center_from: str = "regression"
    # distractor memory (DaSiamRPN's idea, by position; cyclesiam/distractors.py): while a target is
    # tracked, the other strong peaks of its score map (raw score >= distractor_score, farther than
    # distractor_distance target sizes from the new centre) are remembered for the next frame, and
    # there the penalised score of candidates within distractor_radius target sizes of one is
    # multiplied by (1 - distractor_penalty). 0 = off. Target size = sqrt(w * h)
    distractor_penalty: float = 0.0
    distractor_score: float = 0.5
    distractor_distance: float = 1.0
    distractor_radius: float = 0.3
    mask_enabled: bool = True  # compute masks at inference (needs a model with a mask head)
    mask_threshold: float = 0.5  # paper value
    # template update: "none" (SiamRPN: keep first template) | "last" (every frame from the
    # last prediction, the paper's wording) | "blend" (confidence-gated running average)
    template_update: str = "none"
    template_update_rate: float = 0.1  # blend weight of the new template
    template_update_min_score: float = 0.9  # only update when the score exceeds this
    # weight of the first template in the search kernel while updating: kernel = anchor x first +
    # (1 - anchor) x updated. The template similarity (scale pick, LOST) always compares with the first
    template_update_anchor: float = 0.0
    # LOST state hysteresis: lost when score < lost_threshold for lost_frames consecutive
    # frames; recovered when score >= recover_threshold. With lost_similarity > 0 a frame is low
    # only when, besides, the template-sized crop at the new box is less like the template than
    # lost_similarity (cosine of the features, best over the scales), and recovery needs
    # recover_similarity too: the cycle-trained score stays 0.6-0.85 on plain background, so the
    # score alone never reports a vanished target (docs/MODEL.md, "LOST")
    lost_threshold: float = 0.9
    recover_threshold: float = 0.95
    lost_similarity: float = 0.3  # 0 = off: the score alone decides
    recover_similarity: float = 0.35
    # true: a LOST target's box is held and searched for in the lost_search_size crop with
    # lost_window_influence; false: it is tracked as usual and only reported LOST (held boxes
    # on false alarms cost 6 failures on the seed-5 tuning set, 11 against 5; following costs nothing)
    lost_hold: bool = False
    lost_frames: int = 3
    lost_search_size: int = 415  # bigger search crop (pixels at network scale) while lost
    lost_window_influence: float = 0.0  # no motion prior while searching for a lost target


@dataclass
class RuntimeConfig:
    """Where and how the network runs."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    half: bool = False  # fp16 on CUDA only
    backend: str = "auto"  # auto (onnxruntime on the CPU when installed, else torch) | torch | onnxruntime
    providers: list[str] = field(default_factory=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    threads: int = 0  # torch/onnxruntime intra-op threads; 0 = library default
    channels_last: bool = True


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
    mask_from_box: bool = True  # box-only trackers: their filled box is the mask for J/F
    sequences: list[str] = field(default_factory=list)  # evaluate only these names; empty = all
    max_frames: int = 0  # truncate every sequence to this many frames; 0 = whole sequence
    bag_stamp_tolerance_ns: int = 1_000_000  # keyframe stamp to image header stamp matching
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class NodeConfig:
    """ROS node specifics that are not ROS parameters of the core (see config/tracker.yaml)."""

    history_size: int = 30  # frames kept to match a set_target stamp
    stale_after: float = 0.5  # seconds


@dataclass
class Config:
    """The whole configuration: one object for node, CLI, training and evaluation."""

    model: ModelConfig = field(default_factory=ModelConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def to_dict(obj: Any) -> dict[str, Any]:
    """A config dataclass as plain nested dicts/lists (YAML/JSON serialisable)."""
    return dataclasses.asdict(obj)


def from_dict(cls: type[T], data: Mapping[str, Any] | None, path: str = "") -> T:
    """Build dataclass `cls` from `data` over its defaults; unknown keys raise ConfigError."""
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = path or cls.__name__
        raise ConfigError(f"unknown key(s) {unknown} in '{where}'; known: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        f = fields[name]
        key = f"{path}.{name}" if path else name
        default = _default_of(f)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, Mapping):
                raise ConfigError(f"'{key}' must be a mapping, got {type(value).__name__}")
            kwargs[name] = from_dict(type(default), value, key)
        else:
            kwargs[name] = _coerce(value, default, key)
    return cls(**kwargs)


def merge(base: Any, override: Mapping[str, Any] | None) -> Any:
    """A copy of dataclass `base` with the (nested) keys of `override` replaced."""
    merged = _deep_merge(to_dict(base), dict(override or {}))
    return from_dict(type(base), merged)


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then the YAML file at `path` (if any), then `overrides` (nested dict)."""
    cfg = Config()
    if path:
        cfg = merge(cfg, read_yaml(path))
    if overrides:
        cfg = merge(cfg, overrides)
    return cfg


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping")
    return data


def parse_dotted(items: list[str]) -> dict[str, Any]:
    """`["tracker.lr=0.3", "runtime.device=cpu"]` -> nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not KEY=VALUE")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _coerce(value: Any, default: Any, key: str) -> Any:
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"'{key}' must be true/false, got {value!r}")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{key}' must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"'{key}' must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ConfigError(f"'{key}' must be finite, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"'{key}' must be a string, got {value!r}")
        return value
    if isinstance(default, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{key}' must be a list, got {value!r}")
        return list(value)
    return value


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], dict(value))
        else:
            out[key] = value
    return out
