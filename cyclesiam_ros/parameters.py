"""The node's ROS parameters: declaration (descriptions and ranges), reading them into the
core Config, and checking run-time changes."""

from __future__ import annotations

import dataclasses
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from cyclesiam.config import Config, RuntimeConfig, TrackerConfig, merge

TRACKER_DESCRIPTIONS = {
    "context_amount": "context around the target in the template crop: p = context_amount * (w + h)",
    "penalty_k": "scale/aspect change penalty k in exp(-(r_c*s_c-1)*k) (pysot SiamMask: 0.10)",
    "window_influence": "cosine window weight against the score (pysot SiamMask: 0.41)",
    "lr": "size smoothing rate, multiplied by penalty*score (pysot SiamMask: 0.32)",
    "min_size": "minimum box side in pixels",
    "scale_steps": "scales compared per target, odd: 5 = sizes x scale_step^(-2..2), size from the best; 1 = off",
    "scale_step": "ratio between neighbouring scales (> 1)",
    "scale_penalty": "factor on the similarity/score of the scales other than 1 (1.0: follows zooms faster, drifts more)",
    "scale_calibration": "scale_from score only: on ~/set_target, search the first frame at every scale and damp "
                         "the scales that outscore the given box's there (per target)",
    "center_from": "regression (box offsets, as pysot) | peak (score peak refined to sub-cell precision)",
    "distractor_penalty": "distractor memory: damp candidates near last frame's strong far peaks by this factor "
                          "(score x (1 - penalty)); 0 = off",
    "distractor_score": "raw score at or above which a far peak is remembered as a distractor",
    "distractor_distance": "a peak is a distractor when farther than this many target sizes (sqrt(w*h)) from the target",
    "distractor_radius": "candidates within this many target sizes of a remembered distractor are damped",
    "mask_enabled": "compute masks (only done while ~/mask or ~/debug_image has subscribers)",
    "mask_threshold": "mask probability threshold (paper: 0.5)",
    "template_update": "none (keep first template) | last (every frame) | blend (confidence-gated average)",
    "template_update_rate": "blend weight of the new template",
    "template_update_min_score": "blend only when the score exceeds this",
    "template_update_anchor": "weight of the first template in the search kernel while updating (the template "
                              "similarity always compares with the first)",
    "lost_threshold": "score below which a frame counts towards LOST",
    "recover_threshold": "score at or above which a LOST target is TRACKING again",
    "lost_similarity": "a low-score frame counts towards LOST only when the crop at the new box is less like the "
                       "template than this (cosine of the features); 0 = the score alone decides",
    "recover_similarity": "a LOST target recovers only when the crop at its box is at least this like the template "
                          "(and its score reaches recover_threshold); 0 = the score alone decides",
    "lost_frames": "consecutive low frames before a target is LOST",
    "lost_hold": "true: hold a LOST target's box and search the wider lost_search_size crop; "
                 "false: keep tracking it as usual and only report it LOST",
    "lost_search_size": "search crop size (network pixels) while LOST and lost_hold: a wider search",
    "lost_window_influence": "cosine window weight while LOST and lost_hold (0 = no motion prior)",
}
RUNTIME_DESCRIPTIONS = {
    "device": "auto | cpu | cuda | cuda:N (restart to change)",
    "half": "fp16 inference on CUDA (restart to change)",
    "backend": "auto (onnxruntime on the CPU when installed, else torch) | torch | onnxruntime (restart to change)",
    "providers": "onnxruntime execution providers in order of preference (restart to change)",
    "threads": "intra-op threads of the network runtime; 0 = library default (restart to change)",
    "channels_last": "channels-last memory format for torch (restart to change)",
}
RESTART_ONLY = {"checkpoint", "input_transport", "image_reliability", "image_qos_depth"} | {
    f"runtime.{name}" for name in RUNTIME_DESCRIPTIONS
}


def declare_parameters(node: Node) -> None:
    """Declare every parameter of the tracker node (with descriptions and ranges) on `node`."""
    d = lambda *a, **k: _declare(node, *a, **k)  # noqa: E731
    d("checkpoint", "", "safetensors checkpoint; empty = the shipped default model")
    d("input_transport", "raw", "raw (sensor_msgs/Image on 'image') | compressed ('image/compressed')")
    d("image_reliability", "best_effort", "image subscription reliability: best_effort (sensor data) | reliable")
    d("image_qos_depth", 1, "image subscription queue depth (1: only the newest frame matters)", int_range=(1, 100))
    d("history_size", 30, "frames kept so set_target can use the frame its box was drawn on", int_range=(1, 1000))
    d("history_max_mb", 256, "MiB of pixels the frame history may hold (the newest frame is always kept)",
      int_range=(1, 65536))
    d("history_reset_jump", 1.0, "s; a stamp this much older than the newest resets the frame history (bag loop); "
      "a later-arriving older frame is stored in order and not tracked", (0.0, 3600.0))
    d("max_image_pixels", 1 << 24, "images with more pixels (width x height) are refused before decoding",
      int_range=(1, 1 << 28))
    d("stamp_tolerance", 0.05, "max |stamp difference| (s) to match a set_target stamp to a stored frame", (0.0, 10.0))
    d("max_targets", 16, "maximum number of simultaneous targets", int_range=(1, 256))
    d("publish_mask", True, "publish ~/mask (union of target masks, mono8)")
    d("publish_debug_image", True, "publish ~/debug_image (only built while it has subscribers)")
    d("detector_min_score", 0.0, "~/target detections with a lower hypothesis score are ignored", (0.0, 1.0))
    d("detector_match_iou", 0.3, "a ~/target detection without an id updates the target it overlaps most at "
      "this IoU or more (else it starts a new target)", (0.0, 1.0))
    d("diagnostics_period", 1.0, "seconds between /diagnostics messages", (0.1, 60.0))
    defaults = Config()
    for f in dataclasses.fields(TrackerConfig):
        d(f"tracker.{f.name}", getattr(defaults.tracker, f.name), TRACKER_DESCRIPTIONS.get(f.name, f.name))
    for f in dataclasses.fields(RuntimeConfig):
        d(f"runtime.{f.name}", getattr(defaults.runtime, f.name), RUNTIME_DESCRIPTIONS.get(f.name, f.name))


def _declare(node: Node, name: str, default: Any, description: str, float_range=None, int_range=None) -> None:
    descriptor = ParameterDescriptor(description=description, read_only=False)
    if float_range is not None:
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=float(float_range[0]), to_value=float(float_range[1]), step=0.0)
        ]
    if int_range is not None:
        descriptor.integer_range = [IntegerRange(from_value=int_range[0], to_value=int_range[1], step=1)]
    node.declare_parameter(name, default, descriptor)


def config_from_parameters(node: Node, overrides: dict[str, Any] | None = None) -> Config:
    """The core Config built from the node's `tracker.*` and `runtime.*` parameters."""
    values = {p.name: p.value for p in node._parameters.values()}
    values.update(overrides or {})
    tracker = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("tracker.")}
    runtime = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("runtime.")}
    return merge(Config(), {"tracker": tracker, "runtime": runtime})


def check_changes(node: Node, changes: dict[str, Any]) -> tuple[Config | None, str]:
    """The Config after run-time `changes`, or None and the reason they are refused."""
    restart = sorted(set(changes) & RESTART_ONLY)
    if restart:
        return None, f"{restart} only take effect at start-up; restart the node"
    try:
        new_cfg = config_from_parameters(node, changes)
        from cyclesiam.tracker import check_tracker_config

        check_tracker_config(new_cfg.tracker)
        if new_cfg.tracker.recover_threshold < new_cfg.tracker.lost_threshold:
            raise ValueError("tracker.recover_threshold must be >= tracker.lost_threshold")
    except Exception as exc:  # ConfigError/ValueError: report, keep the old values
        return None, str(exc)
    return new_cfg, ""
