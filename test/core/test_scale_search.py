"""Scale search (tracker.scale_steps): unit behaviour, and the shipped model following a real zoom."""

from __future__ import annotations

import dataclasses
import re

import cv2
import numpy as np
import pytest
import torch

from cyclesiam.build import build_tracker
from cyclesiam.config import Config, ConfigError, TrackerConfig, field_info, validate
from cyclesiam.default_model import default_checkpoint
from cyclesiam.sources import ImageFolderSource
from cyclesiam.tracking import scale as scale_registry
from cyclesiam.tracking.scale.template import TemplateScale
from cyclesiam.tracker import PostResult
from cyclesiam.tracking.scale.common import scale_factors, template_similarity
from cyclesiam.tracking.scale.score import pick_scales, scale_bias, scale_biases
from cyclesiam.tracking.scale.template import pick_template_scales

IMAGE = (480, 640)


def test_scale_factors() -> None:
    assert scale_factors(TrackerConfig(scale_steps=1)).tolist() == [1.0]
    assert np.allclose(scale_factors(TrackerConfig(scale_steps=3, scale_step=1.1)), [1 / 1.1, 1.0, 1.1])


@pytest.mark.parametrize("field, value, message", [
    ("scale_steps", 2, "odd"), ("scale_steps", 0, "odd"), ("scale_step", 1.0, "> 1"), ("scale_penalty", 0.0, "(0, 1]"),
    ("scale_penalty", 1.5, "(0, 1]"), ("scale_from", "regression", "scale_from"),
])
def test_bad_scale_search_settings_are_refused(field: str, value: float, message: str) -> None:
    cfg = dataclasses.replace(TrackerConfig(), **{field: value})
    with pytest.raises(ValueError, match=re.escape(message)):
        validate(cfg)


def test_scale_from_choices_are_the_registry() -> None:
    assert field_info(TrackerConfig, "scale_from").choices == scale_registry.SCALE_SOURCES
    assert {"score", "template"} <= set(scale_registry.SCALE_SOURCES)


class _Halfway(TemplateScale):
    """A made-up strategy for the registry test: the template strategy under another name."""


def test_a_new_scale_strategy_is_its_class_and_one_registry_entry(monkeypatch) -> None:
    with pytest.raises(ConfigError, match="scale_from"):
        validate(TrackerConfig(scale_from="halfway"))
    monkeypatch.setitem(scale_registry.SCALE_STRATEGIES, "halfway", _Halfway)
    monkeypatch.setattr(scale_registry, "SCALE_SOURCES", (*scale_registry.SCALE_SOURCES, "halfway"))
    cfg = validate(TrackerConfig(scale_from="halfway"))  # the config accepts it with no word added there
    assert type(scale_registry.scale_strategy(cfg)) is _Halfway


def _post(best_pscores: list[float]) -> PostResult:
    n = len(best_pscores)
    return PostResult(best=np.zeros(n, int), score=np.full(n, 0.9), center=np.arange(2 * n, dtype=float).reshape(n, 2),
                      size=np.full((n, 2), -1.0), penalty=np.ones(n), pscore=np.array(best_pscores)[:, None],
                      lr=np.full(n, 0.5))


def test_pick_scales_keeps_the_best_scoring_scale_and_smooths_the_size() -> None:
    cfg = TrackerConfig(scale_steps=3, scale_step=1.1, scale_penalty=0.95)
    factors = scale_factors(cfg)
    sizes = np.array([[100.0, 50.0], [80.0, 80.0], [60.0, 40.0]])
    # target 0: larger scale clearly best; target 1: larger scale better but not by the penalty; target 2: smaller
    post = _post([0.5, 0.6, 0.9,   0.5, 0.8, 0.82,   0.9, 0.7, 0.6])
    chosen, picked = pick_scales(post, factors, sizes, cfg, IMAGE)
    assert chosen.tolist() == [2, 4, 6]
    assert np.allclose(picked.center, post.center[[2, 4, 6]])
    expected = sizes * (1 - 0.5) + sizes * np.array([1.1, 1.0, 1 / 1.1])[:, None] * 0.5
    assert np.allclose(picked.size, expected)


def test_scale_bias_damps_only_the_scales_that_beat_the_true_one() -> None:
    factors = np.array([1 / 1.1, 1.0, 1.1])
    bias = scale_bias(np.array([[0.90, 0.80, 0.85], [0.70, 0.80, 0.75], [0.5, 0.0, 0.4], [np.nan, 0.8, 0.9]]), factors)
    assert np.allclose(bias[0], [0.8 / 0.9, 1.0, 0.8 / 0.85])  # both neighbours beat the true scale
    assert np.allclose(bias[1], 1.0)  # the true scale wins already: nothing changes
    assert np.allclose(bias[2], [0.0, 1.0, 0.0]) and np.allclose(bias[3], [1.0, 1.0, 0.8 / 0.9])
    # with the bias, the calibrated target keeps its scale where the raw scores would shrink it
    cfg = TrackerConfig(scale_steps=3, scale_step=1.1, scale_penalty=0.998)
    post = _post([0.90, 0.80, 0.85])
    sizes = np.array([[100.0, 50.0]])
    assert pick_scales(post, factors, sizes, cfg, IMAGE)[0].tolist() == [0]
    assert pick_scales(post, factors, sizes, cfg, IMAGE, bias[:1])[0].tolist() == [1]


def test_template_similarity_is_the_cosine_per_target_and_scale() -> None:
    reference = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 2.0], [0.0, 0.0]]])  # 2 targets, 2x2 "features"
    candidates = torch.stack([
        torch.stack([reference[0], reference[0] * 3 + torch.tensor([[0.0, 1.0], [0.0, 0.0]]), -reference[0]]),
        torch.stack([torch.zeros(2, 2), reference[1], torch.ones(2, 2)]),
    ])
    sim = template_similarity(candidates, reference)
    assert sim.shape == (2, 3)
    assert np.allclose(sim[0], [1.0, 3 / np.sqrt(10), -1.0])
    assert np.isnan(sim[1, 0]) and np.allclose(sim[1, 1:], [1.0, 0.5])


def test_pick_template_scales_moves_the_size_towards_the_most_similar_crop() -> None:
    cfg = TrackerConfig(scale_steps=3, scale_step=1.1, scale_penalty=0.95)
    factors = scale_factors(cfg)
    sizes = np.array([[100.0, 50.0], [80.0, 80.0], [60.0, 40.0], [50.0, 50.0]])
    lr = np.array([0.5, 0.5, 0.25, 0.5])
    similarity = np.array([[0.5, 0.6, 0.9],  # larger crop clearly most similar
                           [0.5, 0.8, 0.82],  # larger, but not by the penalty: keep
                           [0.9, 0.7, np.nan],  # smaller; a NaN never wins
                           [np.nan, np.nan, np.nan]])  # nothing to compare: keep the size
    new = pick_template_scales(similarity, factors, sizes, lr, cfg, IMAGE)
    picked = np.array([1.1, 1.0, 1 / 1.1, 1.0])
    assert np.allclose(new, sizes * (1 - lr[:, None]) + sizes * picked[:, None] * lr[:, None])


def test_scale_calibration_is_measured_per_target_and_only_used_at_its_scales(cube_frames_dir) -> None:
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    frame = cv2.imread(str(ImageFolderSource(cube_frames_dir).files[0]))
    cfg = Config()
    cfg.runtime.device = "cpu"
    cfg.tracker.scale_calibration = False
    cfg.tracker.scale_from, cfg.tracker.scale_steps, cfg.tracker.scale_step = "score", 3, 1.1
    tracker = build_tracker(cfg, path)
    plain = tracker.add_target(frame, (315.0, 205.0, 129.0, 145.0))
    assert tracker._targets[plain].scale_bias is None
    tracker.cfg.scale_calibration = True
    calibrated = tracker.add_target(frame, (315.0, 205.0, 129.0, 145.0))
    factors, bias = tracker._targets[calibrated].scale_bias
    assert np.allclose(factors, scale_factors(tracker.cfg)) and bias.shape == (3,)
    assert bias[1] == 1.0 and np.all((bias > 0) & (bias <= 1))
    members = [tracker._targets[plain], tracker._targets[calibrated]]
    rows = scale_biases(members, scale_factors(tracker.cfg))
    assert np.allclose(rows[0], 1.0) and np.allclose(rows[1], bias)
    tracker.cfg.scale_step = 1.05  # measured at other scales: not applied
    assert np.allclose(scale_biases(members, scale_factors(tracker.cfg)), 1.0)
    tracker.track(frame)  # and tracking runs with it
    tracker.cfg.scale_from = "template"  # not measured for the template scale
    assert tracker._targets[tracker.add_target(frame, (315.0, 205.0, 129.0, 145.0))].scale_bias is None


def _zoom_sequence(frame: np.ndarray, box: tuple[float, float, float, float], frames: int, rate: float):
    """Real frame seen through a window shrinking by `rate` per frame around the box centre
    (a camera moving towards the target): frames resized back to full size, true boxes."""
    h, w = frame.shape[:2]
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    images, boxes = [], []
    for i in range(frames):
        s = (1 - rate) ** i
        m = np.float32([[1 / s, 0, cx - cx / s], [0, 1 / s, cy - cy / s]])
        images.append(cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
        boxes.append((cx - box[2] / s / 2, cy - box[3] / s / 2, box[2] / s, box[3] / s))
    return images, boxes


def _final_size_ratio(checkpoint, scale_steps: int, images, boxes, scale_from: str = "score") -> float:
    cfg = Config()
    cfg.runtime.device = "cpu"
    step = 1.1 if scale_from == "score" else cfg.tracker.scale_step
    # score mode at the training crops' context 0.5: at the tracker's default 0.3 its 3-scale search
    # overshoots the zoom-out below (1.43 of the true size); template mode runs at the default
    context = 0.5 if scale_from == "score" else cfg.tracker.context_amount
    # score mode at the scale_penalty and lr it was tuned with: the real-set defaults 0.99 and 0.10 (chosen
    # for template mode, docs/MODEL.md) keep its 3-scale search at 1.43 / 1.33 of the true size on the zoom-out
    penalty = 0.998 if scale_from == "score" else cfg.tracker.scale_penalty
    lr = 0.32 if scale_from == "score" else cfg.tracker.lr
    cfg = dataclasses.replace(cfg, tracker=dataclasses.replace(cfg.tracker, scale_steps=scale_steps, scale_step=step,
                                                                mask_enabled=False, scale_from=scale_from,
                                                                context_amount=context, scale_penalty=penalty,
                                                                lr=lr))
    tracker = build_tracker(cfg, checkpoint)
    tracker.add_target(images[0], boxes[0])
    for image in images[1:]:
        (result,) = tracker.track(image)
    if scale_from == "template" and scale_steps > 1:
        assert tracker.timing["scale"] > 0  # the template-scale stage ran
    return float(np.sqrt(result.bbox[2] * result.bbox[3] / (boxes[-1][2] * boxes[-1][3])))


SCORE_MODE = pytest.mark.xfail(strict=True, reason=(
    "the default model since 2026-12-03 (pool recipe + 250 steps): score mode's 3-scale search does not follow "
    "either zoom within the bound (zoom-in 0.71 of the true size, regression alone 0.48; zoom-out 1.43, "
    "regression 0.96); the pool model before it followed the zoom-in (1.04), the model before that the "
    "zoom-out. The template search follows both (0.93, 1.19), and so does pooled, the default since 2026-12-03 19:17 "
    "(0.92, 1.19). Score mode is an option (docs/MODEL.md)"))


@pytest.mark.parametrize("scale_from, steps, rate", [
    pytest.param("score", 3, 0.01, marks=SCORE_MODE),  # towards the target (x1.27 over 25 frames)
    pytest.param("score", 3, -0.015, marks=SCORE_MODE),  # away (x0.70)
    ("template", Config().tracker.scale_steps, 0.01),
    ("template", Config().tracker.scale_steps, -0.015),
    ("pooled", Config().tracker.scale_steps, 0.01),  # the windows out of the search features
    ("pooled", Config().tracker.scale_steps, -0.015),
])
def test_shipped_model_follows_a_zoom_better_with_scale_search(cube_frames_dir, rate: float, scale_from: str,
                                                               steps: int) -> None:
    """score: the scales searched, the best-scoring one kept; template: one search per frame, the size
    from the template-sized crops' similarity."""
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    frame = cv2.imread(str(ImageFolderSource(cube_frames_dir).files[0]))
    images, boxes = _zoom_sequence(frame, (315.0, 205.0, 129.0, 145.0), frames=25, rate=rate)
    assert abs(np.log(boxes[-1][2] / boxes[0][2])) > 0.2  # the target really changes size
    with_search = _final_size_ratio(path, steps, images, boxes, scale_from=scale_from)
    without = _final_size_ratio(path, 1, images, boxes, scale_from=scale_from)  # size from the (scale-blind) regression
    assert 0.8 < with_search < 1.25, with_search
    # the search is needed where the regression alone leaves the bound (the current model: the zoom-in,
    # 0.68), and never makes the size worse where it does not (its zoom-out: 1.24 alone, 1.19 with search)
    if not 0.8 < without < 1.25:
        assert abs(np.log(with_search)) < abs(np.log(without)) - 0.05, (with_search, without)
    assert abs(np.log(with_search)) <= abs(np.log(without)), (with_search, without)


def test_scale_strategies_come_from_the_existing_keys():
    from cyclesiam.tracking.scale import SCALE_STRATEGIES, scale_strategy
    from cyclesiam.tracking.scale.none import RegressionScale
    from cyclesiam.tracking.scale.pooled import PooledScale
    from cyclesiam.tracking.scale.score import ScoreScale
    from cyclesiam.tracking.scale.template import TemplateScale

    assert isinstance(scale_strategy(TrackerConfig(scale_from="template", scale_steps=5)), TemplateScale)
    assert isinstance(scale_strategy(TrackerConfig(scale_from="score", scale_steps=3)), ScoreScale)
    assert isinstance(scale_strategy(TrackerConfig(scale_from="pooled", scale_steps=5)), PooledScale)
    for source in ("template", "score", "pooled"):  # one scale: the box regression's size, whatever scale_from says
        assert type(scale_strategy(TrackerConfig(scale_from=source, scale_steps=1))) is RegressionScale
    assert set(SCALE_STRATEGIES) == {"none", "score", "template", "pooled"}
