"""The typed configuration of the ROS-free core: model, tracker, runtime, and the node's own settings.

Every hyper-parameter has a name and a default here; every tunable one (tracker, runtime,
node) also carries, in ONE place, its description, its range (ge/gt/le/lt or choices) and
whether it can only change at start-up (`setting(...)` field metadata, `config_fields.py`).
The node declares its ROS parameters from that metadata and `validate` checks every config
against it, at load and on every run-time change. Training and evaluation configs live in
`cyclesiam_train.config`. Experiments are YAML files merged over these defaults (`load_config`);
unknown keys are an error (a typo never falls back to a default). There is no global config.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, TypeVar

import yaml

from cyclesiam.config_fields import (ConfigError, FieldInfo, Rule, default_of, field_info, fields_of, registry, setting,
                                     validate)

__all__ = ["AnchorConfig", "Config", "ConfigError", "DepthConfig", "FieldInfo", "ModelConfig", "NodeSettings",
           "RuntimeConfig", "TrackerConfig", "field_info", "fields_of", "from_dict", "load_config", "merge",
           "parse_dotted", "read_yaml", "response_size", "setting", "to_dict", "validate"]
T = TypeVar("T")

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


UNIT = {"ge": 0.0, "le": 1.0}  # a weight, share or probability


@dataclass
class TrackerConfig:
    """Per-frame inference logic (SiamRPN/SiamMask post-processing). Reference defaults: pysot SiamMask.
    Why each default is what it is: docs/MODEL.md."""

    context_amount: float = setting(
        0.5, "context around the target in the template crop: p = context_amount * (w + h) (pysot 0.5; chosen on "
        "the real validation set, docs/MODEL.md); training crops have their own (train.context_amount)", gt=0.0, le=2.0)
    penalty_k: float = setting(0.20, "scale/aspect change penalty k in exp(-(r_c*s_c-1)*k) (pysot SiamMask: 0.10; "
                               "0.20 chosen on the real validation set, docs/MODEL.md)",
                               ge=0.0, le=10.0)
    window_influence: float = setting(0.30, "cosine window weight against the score (pysot SiamMask: 0.41)", **UNIT)
    lr: float = setting(0.10, "size smoothing rate, multiplied by penalty*score (pysot SiamMask: 0.32; 0.10 chosen on "
                        "the real validation set, docs/MODEL.md)", **UNIT)
    min_size: float = setting(4.0, "minimum box side in pixels", ge=1.0, le=1000.0)
    scale_steps: int = setting(
        3, "scales compared per target, odd: 3 = sizes x scale_step^(-1..1), the size moves towards the best "
        "(not the regression's, which the default model does not sense); 1 = off (size from the regression)",
        ge=1, le=15, odd=True)
    scale_step: float = setting(1.10, "ratio between neighbouring scales", gt=1.0, le=2.0)
    scale_penalty: float = setting(
        0.99, "factor on the similarity/score of the scales other than 1 (1.0: follows zooms faster, drifts more)",
        gt=0.0, le=1.0)
    # a scale that outscores the true one on the first frame is damped by that ratio for the rest of the track,
    # so a model's lean towards one scale on this target's appearance does not walk the size away (docs/MODEL.md)
    scale_calibration: bool = setting(
        True, "scale_from score only: on ~/set_target, search the first frame at every scale and damp the scales "
        "that outscore the given box's there (per target)")
    # pooled since 2026-12-03 19:17 (template's comparison without its extra backbone passes: same AUC within
    # 0.005 and no more failures at 3 x 1.10, docs/MODEL.md); template: n template-sized crops, each ~1/4 of a
    # search pass; score was the default before both (scale_steps 3, step 1.1)
    scale_from: str = setting(
        "pooled", "template: one search, then the scale whose template-sized crop is most like the template | "
        "score: search every scale, best penalised score wins (SiamFC) | pooled: as template, the windows sampled "
        "out of the search features (no extra backbone pass)",
        choices=registry("cyclesiam.tracking.scale", "SCALE_SOURCES"))
    # with the default model "peak" is better on the generated sequences, worse on the real dev clips (docs/MODEL.md)
    center_from: str = setting(
        "regression", "regression: box offsets at the best anchor (pysot) | peak: score peak refined to sub-cell "
        "precision | soft: score-weighted mean of the regressed centres near the best (no jump between near-tied "
        "anchors; tracking/soft_center.py)", choices=("regression", "peak", "soft"))
    distractor_penalty: float = setting(
        0.0, "distractor memory (DaSiamRPN, by position): damp candidates near last frame's strong far peaks by "
        "this factor (score x (1 - penalty)); 0 = off", **UNIT)
    distractor_score: float = setting(0.5, "raw score at or above which a far peak is remembered as a distractor",
                                      **UNIT)
    distractor_distance: float = setting(
        1.0, "a peak is a distractor when farther than this many target sizes (sqrt(w*h)) from the target",
        gt=0.0, le=100.0)
    distractor_radius: float = setting(
        0.3, "candidates within this many target sizes of a remembered distractor are damped", ge=0.0, le=100.0)
    # the real set's boxes stop at the image border (the part outside cannot be seen): docs/MODEL.md
    box_in_image: str = setting(
        "report", "none: a box may hang over the image border (pysot) | report: the reported box is its part "
        "inside the image | state: the tracked box itself is cut to the image every frame",
        choices=registry("cyclesiam.tracking.image_bounds", "BOX_IN_IMAGE"))
    mask_enabled: bool = setting(True, "compute masks (needs a mask head; the node only while ~/mask or "
                                       "~/debug_image has subscribers)")
    mask_threshold: float = setting(0.5, "mask probability threshold (paper: 0.5)", **UNIT)
    # colour: mask J 0.620 against 0.460 (none) and the own box's 0.542 on the real val mask keyframes, +1 ms
    mask_refine: str = setting(
        "colour", "none (the network mask) | box (cut to the box, holes filled) | colour (averaged with a fg/bg "
        "colour model of this frame; chosen on the real set, docs/MODEL.md) | grabcut (GrabCut seeded by mask and box)",
        choices=registry("cyclesiam.tracking.mask_refine", "MASK_REFINERS"))
    template_update: str = setting(
        "none", "none (keep the first template, SiamRPN) | last (every frame) | blend (confidence-gated average)",
        choices=registry("cyclesiam.tracking.template_update", "TEMPLATE_UPDATERS"))
    template_update_rate: float = setting(0.1, "blend weight of the new template", gt=0.0, le=1.0)
    template_update_min_score: float = setting(0.9, "blend only when the score exceeds this", **UNIT)
    template_update_anchor: float = setting(
        0.0, "weight of the first template in the search kernel while updating (the template similarity "
        "always compares with the first)", **UNIT)
    # a target turning in-plane scores under an upright look-alike (the zebrafish clip): docs/MODEL.md,
    # "why the zebrafish fails"; rotations_on_drop is the default since 2026-12-03 (five-shift rule there)
    template_bank: str = setting(
        "rotations_on_drop", "none (one kernel) | rotations (also the first template turned by +-template_bank_angle; per target "
        "the kernel with the best windowed score wins; one more search row per kernel) | rotations_on_drop "
        "(rotations, searched only after the own kernel's score fell below template_bank_trigger, for "
        "template_bank_hold more frames; elsewhere exactly none)",
        choices=registry("cyclesiam.tracking.template_bank", "TEMPLATE_BANKS"))
    template_bank_angle: float = setting(60.0, "degrees the rotations bank turns the first template by, both ways",
                                         gt=0.0, lt=180.0)
    template_bank_trigger: float = setting(
        0.6, "rotations_on_drop: search the turned kernels on a frame after one where the target's own (upright) "
        "kernel's raw score was below this", **UNIT)
    template_bank_hold: int = setting(
        10, "rotations_on_drop: keep searching the turned kernels this many frames after the last frame that "
        "followed a low one", ge=0, le=10000)
    motion: str = setting(
        "none", "where the next search is centred: none = the last position (SiamRPN) | velocity = the last "
        "position plus the target's smoothed displacement per frame (a constant-velocity prior the cosine "
        "window follows; at most one target size, reset while not TRACKING)",
        choices=registry("cyclesiam.tracking.motion", "MOTION_MODELS"))
    motion_rate: float = setting(0.5, "velocity motion: weight of the newest frame's displacement in the smoothed "
                                      "velocity", gt=0.0, le=1.0)
    # LOST hysteresis: the cycle-trained score stays 0.6-0.85 on plain background, so the score alone never
    # reports a vanished target; the template similarity decides with it (docs/MODEL.md, "LOST")
    lost_threshold: float = setting(0.9, "score below which a frame counts towards LOST", **UNIT)
    recover_threshold: float = setting(0.95, "score at or above which a LOST target is TRACKING again", **UNIT)
    lost_similarity: float = setting(
        0.4, "a low-score frame counts towards LOST only when the crop at the new box is less like the template "
        "than this (cosine of the features); 0 = the score alone decides", **UNIT)
    recover_similarity: float = setting(
        0.45, "a LOST target recovers only when the crop at its box is at least this like the template (and its "
        "score reaches recover_threshold); 0 = the score alone decides", **UNIT)
    # held boxes on false alarms cost 6 failures on the seed-5 tuning set (11 against 5); following costs nothing
    lost_hold: bool = setting(
        False, "true: hold a LOST target's box and search the wider lost_search_size crop; false: keep tracking "
               "it as usual and only report it LOST")
    lost_frames: int = setting(3, "consecutive low frames before a target is LOST", ge=1, le=10000)
    lost_search_size: int = setting(415, "search crop size (network pixels) while LOST and lost_hold: a wider "
                                         "search", ge=64, le=1023)
    lost_window_influence: float = setting(0.0, "cosine window weight while LOST and lost_hold (0 = no motion "
                                                "prior)", **UNIT)

    rules: ClassVar[tuple[Rule, ...]] = (
        (lambda c: c.recover_threshold >= c.lost_threshold, "recover_threshold must be >= lost_threshold"),
    )


@dataclass
class RuntimeConfig:
    """Where and how the network runs (all read at start-up only)."""

    device: str = setting("auto", "auto | cpu | cuda | cuda:N", restart=True)
    half: bool = setting(False, "fp16 inference on CUDA only", restart=True)
    backend: str = setting("auto", "auto (onnxruntime on the CPU when installed, else torch) | torch | onnxruntime",
                           choices=("auto", "torch", "onnxruntime"), restart=True)
    providers: list[str] = setting(["CUDAExecutionProvider", "CPUExecutionProvider"],
                                   "onnxruntime execution providers in order of preference", restart=True)
    threads: int = setting(0, "intra-op threads of the network runtime (torch: inside the tracker's calls only); "
                           "0 = library default", ge=0, le=1024, restart=True)
    channels_last: bool = setting(True, "channels-last memory format for torch", restart=True)
    memory_arena: bool = setting(False, "onnxruntime CPU memory arena: faster allocation, but it keeps the largest "
                                 "batch's memory until restart (off: memory follows the current targets)", restart=True)
    max_batch: int = setting(4, "onnxruntime on the CPU: targets per network run; more run in chunks of this many "
                             "(outputs identical; one batch of 16 costs more than four of 4); 0 = all in one run; "
                             "a GPU provider always runs all at once",
                             ge=0, le=1024, restart=True)


@dataclass
class DepthConfig:
    """The target in 3D from aligned depth (`cyclesiam/depth3d.py`; node parameters `depth.*`)."""

    enabled: bool = setting(True, "subscribe to 'depth' and 'camera_info' and publish ~/detections_3d, "
                            "~/target_point, ~/markers; while no depth arrives the node behaves as without them",
                            restart=True)
    stamp_tolerance: float = setting(0.02, "max |stamp difference| (s) between a colour image and the depth frame "
                                     "paired with it (0 = identical stamps only)", ge=0.0, le=1.0)
    buffer_size: int = setting(5, "depth frames kept for pairing by stamp", ge=1, le=100)
    wait: float = setting(0.05, "s the worker waits for a depth frame not yet arrived for the image it tracked "
                          "(only while pairing works; 0 = never wait, e.g. for depth slower than the colour camera)",
                          ge=0.0, le=1.0)
    min_pixels: int = setting(50, "valid depth pixels a target's mask (or box) needs for a 3D output",
                              ge=1, le=10_000_000)
    min_range: float = setting(0.1, "m; nearer depth values are invalid", ge=0.0, le=1000.0)
    max_range: float = setting(10.0, "m; farther depth values are invalid", gt=0.0, le=1000.0)
    cluster_bin: float = setting(0.02, "m; depth histogram bin: an empty bin between two depths splits the "
                                 "target's pixels into clusters (object against background)", ge=0.001, le=1.0)
    cluster_min_share: float = setting(0.25, "the target is the nearest depth cluster holding at least this share of "
                                       "the valid pixels (else the largest cluster)", **UNIT)
    extent_percentile: float = setting(5.0, "the extent spans the p-th to (100-p)-th percentile of the points on "
                                       "each axis", ge=0.0, le=25.0)
    max_points: int = setting(20000, "at most this many pixels per target (an even grid over the region): bounds "
                              "the cost for large targets", ge=100, le=10_000_000)

    rules: ClassVar[tuple[Rule, ...]] = (
        (lambda c: c.max_range > c.min_range, "max_range must be > min_range"),
    )


@dataclass
class NodeSettings:
    """The ROS node's own parameters (top-level keys of config/tracker.yaml), besides tracker.* and runtime.*."""

    autostart: bool = setting(True, "configure and activate at start (lifecycle); false: stay unconfigured until "
                              "a lifecycle manager or `ros2 lifecycle set` drives the transitions", restart=True)
    checkpoint: str = setting("", "safetensors checkpoint; empty = the shipped default model", restart=True)
    input_transport: str = setting("raw", "raw (sensor_msgs/Image on 'image') | compressed ('image/compressed')",
                                   choices=("raw", "compressed"), restart=True)
    image_reliability: str = setting("best_effort", "image subscription reliability: best_effort (sensor data) | "
                                     "reliable", choices=("best_effort", "reliable"), restart=True)
    image_qos_depth: int = setting(1, "image subscription queue depth (1: only the newest frame matters)",
                                   ge=1, le=100, restart=True)
    history_size: int = setting(30, "frames kept so set_target can use the frame its box was drawn on", ge=1, le=1000)
    history_max_mb: int = setting(256, "MiB of pixels the frame history may hold (the newest frame is always kept)",
                                  ge=1, le=65536)
    history_reset_jump: float = setting(1.0, "s; a stamp this much older than the newest resets the frame history "
                                        "(bag loop); a later-arriving older frame is stored in order, not tracked",
                                        ge=0.0, le=3600.0)
    max_image_pixels: int = setting(1 << 24, "images with more pixels (width x height) are refused before decoding",
                                    ge=1, le=1 << 28)
    stamp_tolerance: float = setting(0.05, "max |stamp difference| (s) to match a set_target stamp to a stored frame",
                                     ge=0.0, le=10.0)
    max_targets: int = setting(16, "maximum number of simultaneous targets (hard ceiling 64: memory grows "
                                   "with targets)", ge=1, le=64)
    publish_mask: bool = setting(True, "publish ~/mask (union of target masks, mono8)")
    publish_debug_image: bool = setting(True, "publish ~/debug_image (only built while it has subscribers)")
    detector_min_score: float = setting(0.0, "~/target detections with a lower hypothesis score are ignored", **UNIT)
    detector_match_iou: float = setting(0.3, "a ~/target detection without an id updates the target it overlaps "
                                        "most at this IoU or more (else it starts a new target)", **UNIT)
    diagnostics_period: float = setting(1.0, "seconds between /diagnostics messages", ge=0.1, le=60.0)
    diagnostics_stale_after: float = setting(2.0, "/diagnostics WARN when no image arrived for this many seconds",
                                             ge=0.1, le=3600.0)
    diagnostics_drop_warn: float = setting(0.5, "/diagnostics WARN when more than this share of the period's "
                                                "frames was dropped (the node slower than the camera)", **UNIT)
    record_dir: str = setting("~/cyclesiam_recordings", "folder of the ~/record bags whose request names no path "
                              "(~ expanded; a new record_<time> bag folder each time)")
    record_max_frames: int = setting(3000, "~/record stops by itself after this many frames (a request's max_frames "
                                     "0)", ge=1, le=10_000_000)
    record_max_mb: int = setting(2048, "~/record stops by itself before the frames in the bag pass this many MiB "
                                 "(a request's max_bytes 0)", ge=1, le=1 << 20)
    record_every_nth: int = setting(3, "~/record keeps every n-th frame the node accepts (a request's every_nth 0)",
                                    ge=1, le=1000)
    record_detections: bool = setting(True, "~/record also writes the node's ~/detections of each recorded frame it "
                                      "tracked (the seeds of cyclesiam-adapt --seed-topic)")
    record_queue: int = setting(30, "frames waiting for the ~/record bag writer; a frame that finds it full is not "
                                "recorded and counted", ge=1, le=1000, restart=True)
    depth: DepthConfig = field(default_factory=DepthConfig)  # parameters depth.*


@dataclass
class Config:
    """The core's whole configuration: model, tracker and runtime (CLI, node, benchmarks).
    Training adds its own sections: cyclesiam_train.config.Config."""

    model: ModelConfig = field(default_factory=ModelConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


def to_dict(obj: Any) -> dict[str, Any]:
    """A config dataclass as plain nested dicts/lists (YAML/JSON serialisable)."""
    return dataclasses.asdict(obj)


def from_dict(cls: type[T], data: Mapping[str, Any] | None, path: str = "") -> T:
    """Build dataclass `cls` from `data` over its defaults; unknown keys and values out of
    range raise ConfigError."""
    return validate(_build(cls, data, path), path)


def _build(cls: type[T], data: Mapping[str, Any] | None, path: str) -> T:
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
        default = default_of(f)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, Mapping):
                raise ConfigError(f"'{key}' must be a mapping, got {type(value).__name__}")
            kwargs[name] = _build(type(default), value, key)
        else:
            kwargs[name] = _coerce(value, default, key)
    return cls(**kwargs)


def merge(base: T, override: Mapping[str, Any] | None) -> T:
    """A copy of dataclass `base` with the (nested) keys of `override` replaced (validated)."""
    merged = _deep_merge(to_dict(base), dict(override or {}))
    return from_dict(type(base), merged)


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                cls: type[T] = Config) -> T:  # type: ignore[assignment]
    """Defaults of `cls`, then the YAML file at `path` (if any), then `overrides` (nested dict)."""
    cfg = cls()
    if path:
        cfg = merge(cfg, read_yaml(path))
    if overrides:
        cfg = merge(cfg, overrides)
    return validate(cfg)


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


def _yaml11_float(value: Any) -> Any:
    """YAML 1.1 (PyYAML) reads `2e-3` and `1e4` as strings (it wants a dot: `2.0e-3`); a float
    setting takes them as the numbers a user means. Any other string is left to be refused."""
    if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value.strip()):
        return float(value)
    return value


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
        value = _yaml11_float(value)
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
