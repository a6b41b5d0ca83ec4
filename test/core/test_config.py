"""The core config: one place per field (description, range, restart-only), one validation
path, and the split from the training config."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import yaml

from cyclesiam import config as core
from cyclesiam.config import (Config, ConfigError, DepthConfig, NodeSettings, RuntimeConfig, TrackerConfig, fields_of, load_config,
                              merge, validate)
from cyclesiam_train import config as train_config

REPO = Path(__file__).resolve().parents[2]
TUNABLE = (TrackerConfig, RuntimeConfig, NodeSettings, DepthConfig)


@pytest.mark.parametrize("cls", TUNABLE)
def test_every_tunable_field_has_a_description_and_numbers_a_finite_range(cls) -> None:
    infos = {info.name: info for info in fields_of(cls)}
    sections = {f.name for f in dataclasses.fields(cls) if dataclasses.is_dataclass(core.default_of(f))}  # depth.*
    assert set(infos) == {f.name for f in dataclasses.fields(cls)} - sections, "a field without setting(...) metadata"
    for info in infos.values():
        assert len(info.description) > 10, info.name
        if isinstance(info.default, (int, float)) and not isinstance(info.default, bool):
            assert info.lower is not None and info.upper is not None, f"{info.name} has no range"
            assert math.isfinite(info.lower) and math.isfinite(info.upper)
        assert info.problem(info.default) is None, f"default of {info.name} outside its own range"


@pytest.mark.parametrize("key, value, words", [
    ("lr", 1e308, "[0, 1]"), ("lr", -1.0, "[0, 1]"), ("penalty_k", -1e308, "penalty_k"),
    ("scale_step", 1e308, "scale_step"), ("scale_step", 1.0, "(1, 2]"), ("min_size", 1e308, "min_size"),
    ("scale_steps", 2**63 - 1, "[1, 15]"), ("scale_steps", 2, "odd"), ("scale_steps", 0, "odd"), ("scale_steps", -1, "[1, 15]"),
    ("lost_frames", 0, "lost_frames"), ("lost_frames", -3, "lost_frames"), ("lost_search_size", 0, "lost_search_size"),
    ("recover_threshold", 100.0, "recover_threshold"), ("recover_threshold", 0.5, ">= lost_threshold"),
    ("center_from", "mask", "center_from"), ("scale_from", "regression", "scale_from"),
    ("template_update", "sometimes", "template_update"), ("template_update_rate", 0.0, "(0, 1]"),
    ("lost_similarity", float("nan"), "lost_similarity"), ("distractor_distance", 0.0, "distractor_distance"),
])
def test_out_of_range_tracker_values_are_refused_naming_the_key(key, value, words) -> None:
    with pytest.raises(ConfigError) as err:
        validate(dataclasses.replace(Config(), tracker=dataclasses.replace(TrackerConfig(), **{key: value})))
    assert f"tracker.{key}" in str(err.value)
    assert words in str(err.value)


def test_loading_refuses_out_of_range_values_too() -> None:
    with pytest.raises(ConfigError, match="tracker.lr"):
        merge(Config(), {"tracker": {"lr": 5.0}})
    with pytest.raises(ConfigError, match="runtime.backend"):
        load_config(None, {"runtime": {"backend": "tensorrt"}})
    with pytest.raises(ConfigError, match="max_targets"):
        core.from_dict(NodeSettings, {"max_targets": 256})


def test_exponent_floats_without_a_dot_are_numbers(tmp_path) -> None:
    """PyYAML reads `2e-3` as a string; `--set train.lr=2e-3` and a YAML `lr: 2e-3` mean the number."""
    from cyclesiam.config import parse_dotted

    cfg = train_config.load_config(None, parse_dotted(["train.lr=2e-3", "tracker.lr=1E-1"]))
    assert cfg.train.lr == pytest.approx(0.002) and cfg.tracker.lr == pytest.approx(0.1)
    (tmp_path / "t.yaml").write_text("train:\n  lr: 5e-4\n")
    assert train_config.load_config(tmp_path / "t.yaml").train.lr == pytest.approx(5e-4)
    for bad in ("2e", "e-3", "fast", "1e999"):
        with pytest.raises(ConfigError, match="train.lr"):
            train_config.load_config(None, parse_dotted([f"train.lr={bad}"]))


def test_shipped_yaml_values_are_inside_the_ranges() -> None:
    params = yaml.safe_load((REPO / "config" / "tracker.yaml").read_text())["/**"]["ros__parameters"]
    sections = {k: params.pop(k) for k in ("tracker", "runtime")}
    merge(Config(), sections)
    core.from_dict(NodeSettings, params)


def test_shipped_yaml_tracker_values_are_the_code_defaults() -> None:
    """config/tracker.yaml (the node) and cyclesiam/config.py (CLIs, eval) ship the same tracker
    settings: the defaults chosen on the real validation set (docs/MODEL.md) are in both."""
    params = yaml.safe_load((REPO / "config" / "tracker.yaml").read_text())["/**"]["ros__parameters"]
    assert params["tracker"] == core.to_dict(TrackerConfig())


def test_core_config_has_no_training_sections_and_the_training_one_keeps_the_names() -> None:
    assert {f.name for f in dataclasses.fields(Config)} == {"model", "tracker", "runtime"}
    assert not hasattr(core, "NodeConfig") and not hasattr(core, "TrainConfig")
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(REPO / "config" / "train.yaml")
    cfg = train_config.load_config(REPO / "config" / "train.yaml")
    assert isinstance(cfg, Config) and cfg.train.steps > 0 and cfg.eval.vot_skip > 0


@pytest.mark.parametrize("name", ["train.yaml", "train_default.yaml", "train_pool.yaml"])
def test_training_crops_have_their_own_context(name) -> None:
    """Tuning the tracker's context must not change the training recipe (both YAMLs pinned
    tracker.context_amount 0.5 for that); the crops read train.context_amount."""
    cfg = train_config.load_config(REPO / "config" / name)
    assert cfg.train.context_amount == 0.5
    assert cfg.tracker.context_amount == TrackerConfig().context_amount
    assert "context_amount" not in yaml.safe_load((REPO / "config" / name).read_text()).get("tracker", {})
