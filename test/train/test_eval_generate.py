"""Generated sequences (exact ground truth) and whole harness runs over them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from cyclesiam_train.config import EvalConfig, SyntheticConfig, load_config
from cyclesiam_train.eval import cli, generate
from cyclesiam_train.eval.baselines import OpenCVTracker, SiamTrackerAdapter
from cyclesiam_train.eval.datasets import Sequence, load_dataset
from cyclesiam_train.eval.metrics import mask_to_box
from cyclesiam_train.eval.runner import evaluate_tracker, overall, run_ope, run_vot

SMALL = dict(frames=24, width=192, height=144, num_sequences=2, max_speed=4.0)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate.generate(out, SyntheticConfig(seed=3, keyframe_every=1, **SMALL), data_dir)
    return out


@pytest.fixture(scope="module")
def otb_seq(generated: Path) -> Sequence:
    return load_dataset(generated / "otb", "otb")[0]


class Oracle:
    """Returns the exact ground truth (box and mask) of the frame it is shown."""

    name = "oracle"

    def __init__(self, seq: Sequence) -> None:
        self.seq, self.i = seq, 0

    def init(self, frame: np.ndarray, box: tuple, mask: np.ndarray | None = None) -> None:
        self.i = next(k for k in range(len(self.seq)) if np.array_equal(self.seq.boxes[k], box))

    def update(self, frame: np.ndarray) -> tuple:
        self.i += 1
        return tuple(self.seq.boxes[self.i]), 1.0, self.seq.mask(self.i)


class ConstantBox:
    """Always answers the box it was initialised with (and no mask)."""

    name = "constant"

    def init(self, frame: np.ndarray, box: tuple, mask: np.ndarray | None = None) -> None:
        self.box = tuple(box)

    def update(self, frame: np.ndarray) -> tuple:
        return self.box, 0.5, None


def test_generation_is_deterministic_and_seed_dependent(data_dir: Path) -> None:
    cfg = SyntheticConfig(seed=11, **{**SMALL, "frames": 6, "num_sequences": 1})
    (spec,) = generate.plan_sequences(cfg)
    a = generate.render_sequence(data_dir, cfg, spec)
    (spec_b,) = generate.plan_sequences(cfg)
    b = generate.render_sequence(data_dir, cfg, spec_b)
    assert all(np.array_equal(x.image, y.image) and x.box == y.box and np.array_equal(x.mask, y.mask) for x, y in zip(a, b))
    (other,) = generate.plan_sequences(SyntheticConfig(seed=12, **{**SMALL, "frames": 6, "num_sequences": 1}))
    c = generate.render_sequence(data_dir, cfg, other)
    assert not np.array_equal(a[0].image, c[0].image)


def test_ground_truth_is_exact_box_of_the_object_and_mask_is_visible_part(generated: Path, otb_seq: Sequence) -> None:
    info = json.loads((generated / "sequences.json").read_text())["sequences"][0]
    t0, t1 = info["events"]["occlusion_frames"]
    occluded = 0
    for i in range(len(otb_seq)):
        mask, box = otb_seq.mask(i), tuple(otb_seq.boxes[i])
        mbox = mask_to_box(mask)
        assert mbox is not None
        if t0 <= i < t1 and mbox != box:
            occluded += 1
            # the visible mask lies inside the (amodal) object box
            assert mbox[0] >= box[0] and mbox[1] >= box[1]
            assert mbox[0] + mbox[2] <= box[0] + box[2] and mbox[1] + mbox[3] <= box[1] + box[3]
        else:
            assert mbox == box, f"frame {i}: box {box} is not the tight box of the mask {mbox}"
    assert occluded > 0, "the occluder never covered the object"


def test_bag_holds_the_same_frames_and_annotation_as_the_render(generated: Path, data_dir: Path) -> None:
    bag_seqs = {s.name: s for s in load_dataset(generated / "bag", "bag")}
    otb_seqs = {s.name: s for s in load_dataset(generated / "otb", "otb")}
    assert sorted(bag_seqs) == sorted(otb_seqs)
    name = sorted(bag_seqs)[0]
    np.testing.assert_array_equal(bag_seqs[name].boxes, otb_seqs[name].boxes)
    cfg = SyntheticConfig(seed=3, **SMALL)
    spec = next(s for s in generate.plan_sequences(cfg) if s.name == name)
    rendered = generate.render_sequence(data_dir, cfg, spec)
    frames = [f for _, f in bag_seqs[name].iter_frames()]
    assert len(frames) == cfg.frames
    np.testing.assert_array_equal(frames[5], rendered[5].image)  # bgr8 in the bag is lossless
    np.testing.assert_array_equal(bag_seqs[name].mask(5), rendered[5].mask)


def test_sparse_keyframes(tmp_path: Path, data_dir: Path) -> None:
    cfg = SyntheticConfig(seed=5, keyframe_every=4, **{**SMALL, "frames": 10, "num_sequences": 1})
    generate.generate(tmp_path, cfg, data_dir)
    (s,) = load_dataset(tmp_path / "bag", "bag")
    assert np.nonzero(np.isfinite(s.boxes).all(axis=1))[0].tolist() == [0, 4, 8]
    res = evaluate_tracker(ConstantBox(), [s], EvalConfig(protocols=["ope"]))
    assert res.sequences[s.name]["ope"]["frames"] == 2  # keyframes 4 and 8; the init frame is given


def test_oracle_scores_perfectly(otb_seq: Sequence) -> None:
    cfg = EvalConfig()
    res = evaluate_tracker(Oracle(otb_seq), [otb_seq], cfg)
    summary = overall(res, cfg)
    assert summary["ope"]["auc"] == 1.0
    assert summary["curves"]["success"] == [1.0] * cfg.success_thresholds
    assert summary["ope"]["precision"] == 1.0 and summary["ope"]["norm_precision"] == 1.0
    assert summary["vot"]["failures"] == 0 and summary["vot"]["accuracy"] == 1.0
    assert summary["vot"]["eao"] == pytest.approx(1.0)
    assert summary["davis"]["J"]["mean"] == 1.0 and summary["davis"]["F"]["mean"] == 1.0
    assert summary["davis"]["mask_from_box"] is False


def _hand_iou(a: tuple, b: tuple) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return iw * ih / (aw * ah + bw * bh - iw * ih)


def test_constant_box_scores_what_the_ground_truth_says(otb_seq: Sequence) -> None:
    cfg = EvalConfig(protocols=["ope"])
    gt = [tuple(map(float, b)) for b in otb_seq.boxes]
    first = gt[0]
    ious = [_hand_iou(first, g) for g in gt[1:]]
    thresholds = [k / 20 for k in range(21)]
    success = [sum(1 for v in ious if v > 0 and v >= t - 1e-9) / len(ious) for t in thresholds]
    centre = (first[0] + first[2] / 2, first[1] + first[3] / 2)
    errors = [math.hypot(g[0] + g[2] / 2 - centre[0], g[1] + g[3] / 2 - centre[1]) for g in gt[1:]]
    res = evaluate_tracker(ConstantBox(), [otb_seq], cfg)
    ope = res.sequences[otb_seq.name]["ope"]
    assert ope["frames"] == len(gt) - 1
    np.testing.assert_allclose(res.ope[otb_seq.name].ious, ious, atol=1e-12)
    assert ope["auc"] == pytest.approx(sum(success) / 21, abs=1e-12)
    assert ope["precision"] == pytest.approx(sum(e <= 20 for e in errors) / len(errors))
    assert ope["auc"] < 1.0  # the object moves: a constant box cannot be perfect
    # J from the filled first box against each gt mask
    davis = res.sequences[otb_seq.name]["davis"]
    assert davis["mask_from_box"] is True
    x, y, w, h = (int(v) for v in first)
    box_mask = np.zeros(otb_seq.mask(0).shape, bool)
    box_mask[y:y + h, x:x + w] = True
    js = []
    for i in range(1, len(otb_seq)):
        g = otb_seq.mask(i)
        js.append((box_mask & g).sum() / (box_mask | g).sum())
    assert davis["J"]["mean"] == pytest.approx(float(np.mean(js)))


def test_vot_protocol_reinitialises_after_failures(otb_seq: Sequence) -> None:
    run = run_vot(ConstantBox(), otb_seq, skip=5)
    gt = [tuple(map(float, b)) for b in otb_seq.boxes]
    # replay the protocol by hand from the ground truth
    inits, failures, i, box = [0], [], 1, gt[0]
    while i < len(gt):
        if _hand_iou(box, gt[i]) <= 0:
            failures.append(i)
            i += 5
            if i < len(gt):
                inits.append(i)
                box = gt[i]
            i += 1
            continue
        i += 1
    assert run.record.inits == inits and run.record.failures == failures


def test_csrt_baseline_runs_through_the_harness(otb_seq: Sequence) -> None:
    cfg = EvalConfig()
    summary = overall(evaluate_tracker(OpenCVTracker("csrt"), [otb_seq], cfg), cfg)
    for key in ("auc", "precision", "norm_precision"):
        assert 0.0 <= summary["ope"][key] <= 1.0
    assert 0.0 <= summary["vot"]["accuracy"] <= 1.0 and math.isfinite(summary["vot"]["eao"])
    assert summary["ope"]["auc"] > 0.2  # CSRT follows a textured object over 24 frames


def test_siam_tracker_runs_through_the_harness(otb_seq: Sequence) -> None:
    cfg = load_config(overrides={"runtime": {"device": "cpu"}, "model": {"backbone": "light"}})
    short = otb_seq.truncated(8)
    run = run_ope(SiamTrackerAdapter(None, cfg), short)
    assert run.updates == 7 and np.isfinite(run.boxes).all()
    assert set(run.masks) == set(range(1, 8))


def test_cli_writes_results_and_plots(generated: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    code = cli.main(["--tracker", "kcf", "--tracker", "csrt", "--dataset", str(generated / "otb"), "--format", "otb",
                     "--out", str(out), "--set", "eval.max_frames=12", "--set", "eval.protocols=[ope]"])
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    assert sorted(doc["trackers"]) == ["csrt", "kcf"]
    assert len(doc["trackers"]["csrt"]["sequences"]) == 2
    assert doc["trackers"]["csrt"]["sequences"][next(iter(doc["trackers"]["csrt"]["sequences"]))]["frames"] == 12
    for png in ("success.png", "precision.png", "per_sequence_auc.png"):
        assert (out / png).stat().st_size > 1000
    assert cli.main(["--tracker", "csrt", "--dataset", str(tmp_path / "none"), "--format", "otb", "--out", str(out)]) == 2
    # no --checkpoint/--tracker now means the shipped model (test_eval_cli.py); a missing file is an error
    assert cli.main(["--checkpoint", str(tmp_path / "none.safetensors"), "--dataset", str(generated / "otb"),
                     "--format", "otb", "--out", str(out)]) == 2


def test_cli_compares_checkpoints_and_a_baseline(generated: Path, tmp_path: Path) -> None:
    from cyclesiam.checkpoint import save_checkpoint
    from cyclesiam.config import ModelConfig
    from cyclesiam.models.builder import build_model

    model_cfg = ModelConfig(backbone="light")
    ckpt = save_checkpoint(tmp_path / "light.safetensors", build_model(model_cfg), model_cfg)
    out = tmp_path / "eval"
    code = cli.main(["--checkpoint", str(ckpt), "--checkpoint", str(ckpt), "--tracker", "cyclesiam",
                     "--tracker", "csrt", "--dataset", str(generated / "otb"), "--format", "otb", "--out", str(out),
                     "--set", "eval.max_frames=5", "--set", "eval.protocols=[ope]", "--set", "runtime.device=cpu",
                     "--set", "eval.sequences=[" + sorted(p.name for p in (generated / "otb").iterdir())[0] + "]"])
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    assert sorted(doc["trackers"]) == ["csrt", "light", "light_2"]
    # what runtime.backend "auto" resolved to is recorded (onnxruntime: the CPU, and it is installed here)
    assert doc["trackers"]["light"]["backend"] == "onnxruntime" and doc["trackers"]["csrt"]["backend"] == "opencv"
    # same weights, same deterministic tracker: identical numbers
    assert doc["trackers"]["light"]["overall"]["ope"]["auc"] == doc["trackers"]["light_2"]["overall"]["ope"]["auc"]
    assert (out / "predictions" / "light_2").is_dir()


def test_if_missing_keeps_a_complete_set_and_regenerates_anything_else(generated: Path, tmp_path: Path,
                                                                       data_dir: Path) -> None:
    import shutil

    cfg = SyntheticConfig(seed=3, keyframe_every=1, **SMALL)
    assert generate.already_generated(generated, cfg, bag=True)
    other = SyntheticConfig(seed=4, keyframe_every=1, **SMALL)
    assert not generate.already_generated(generated, other, bag=True)
    assert generate.other_set(generated, other) == "seed 3, 2 sequences of 24 frames"
    assert generate.other_set(generated, cfg) is None
    partial = tmp_path / "partial"
    shutil.copytree(generated, partial)
    gt = next((partial / "otb").glob("*/groundtruth_rect.txt"))
    gt.unlink()
    assert not generate.already_generated(partial, cfg, bag=True)
    args = ["--out", str(partial), "--data", str(data_dir), "--seed", "3", "--frames", "24", "--set",
            "eval.synthetic.width=192", "--set", "eval.synthetic.height=144", "--num", "2", "--set",
            "eval.synthetic.max_speed=4.0", "--set", "eval.synthetic.keyframe_every=1", "--if-missing"]
    assert generate.main(args) == 0
    assert gt.is_file()  # the missing sequence was written again
    stamp = gt.stat().st_mtime_ns
    assert generate.main(args) == 0
    assert gt.stat().st_mtime_ns == stamp  # complete now: nothing rewritten
    # another seed into the same folder would mix two sets: refused, nothing written
    assert generate.main([*args[:4], "--seed", "4", *args[6:]]) == 2
    assert gt.stat().st_mtime_ns == stamp
