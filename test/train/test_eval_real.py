"""The real validation set format (annotations/real/<clip>/): loader, scoring of absent
keyframes and mask keyframes, and cyclesiam-eval on it, on small real folders made here over
real footage (ViSP mbt_cube frames, opencv tree.avi)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from cyclesiam_train.config import EvalConfig
from cyclesiam_train.eval import cli
from cyclesiam_train.eval.datasets import DatasetError, load_dataset
from cyclesiam_train.eval.runner import evaluate_tracker, overall

REPO = Path(__file__).resolve().parents[2]
CUBE_GT = REPO / "annotations" / "dev" / "mbt_cube" / "groundtruth_rect.txt"
ROWS = 41  # frames 0..40 of mbt_cube: keyframes 0, 10, 20, 30, 40
ABSENT = 20  # declared absent here (its box row becomes nan) to exercise the absent path


def _rows(path: Path, n: int) -> np.ndarray:
    return np.array([[float(v) for v in line.split(",")] for line in path.read_text().splitlines()[:n]])


def _write_clip(folder: Path, frames: str, rows: np.ndarray, split: str, absent: list[int],
                masks: dict[int, np.ndarray] | None = None) -> None:
    folder.mkdir(parents=True)
    (folder / "source.txt").write_text(f"frames: {frames}\ncount: {len(rows)}\nsplit: {split}\n"
                                       "target: the cube\nattributes: partial-occlusion, out-of-plane\n")
    lines = ["nan,nan,nan,nan" if not np.isfinite(r).all() else ",".join(f"{v:.1f}" for v in r) for r in rows]
    (folder / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    (folder / "absent.txt").write_text("".join(f"{i}\n" for i in absent))
    for index, mask in (masks or {}).items():
        (folder / "masks").mkdir(exist_ok=True)
        cv2.imwrite(str(folder / "masks" / f"{index:05d}.png"), mask)


def _ellipse_in(box: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    x, y, w, h = box
    cv2.ellipse(mask, (int(x + w / 2), int(y + h / 2)), (int(w / 2), int(h / 2)), 0, 0, 360, 255, -1)
    return mask


@pytest.fixture()
def real_set(tmp_path: Path, cube_frames_dir: Path, tree_video: Path) -> tuple[Path, Path, np.ndarray]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "mbt_cube").symlink_to(cube_frames_dir.resolve())
    (data / "tree.avi").symlink_to(tree_video.resolve())
    root = tmp_path / "annotations" / "real"
    cube = _rows(CUBE_GT, ROWS)
    cube[ABSENT] = np.nan
    _write_clip(root / "cube_hand", "mbt_cube", cube, "val", [ABSENT], {10: _ellipse_in(cube[10], (480, 640))})
    tree = np.full((68, 4), np.nan)
    tree[0], tree[67] = [120, 60, 80, 80], [118, 58, 80, 80]
    _write_clip(root / "tree_pan", "tree.avi", tree, "test-once", [])
    return root, data, cube


def test_real_loader_reads_rows_absent_masks_and_split(real_set) -> None:
    root, data, cube = real_set
    seqs = {s.name: s for s in load_dataset(root, "real", data_root=data)}
    assert sorted(seqs) == ["cube_hand", "tree_pan"]
    s = seqs["cube_hand"]
    assert len(s) == ROWS and s.info["split"] == "val"
    np.testing.assert_allclose(s.boxes[[0, 10, 30]], cube[[0, 10, 30]])
    assert np.flatnonzero(s.absent).tolist() == [ABSENT] and np.isnan(s.boxes[ABSENT]).all()
    assert sorted(s.masks) == [10] and s.mask(10).sum() > 0.7 * cube[10, 2] * cube[10, 3]
    frames = [f for _, f in s.iter_frames()]
    assert len(frames) == ROWS and frames[0].shape == (480, 640, 3)
    video = [f for _, f in seqs["tree_pan"].iter_frames()]
    assert len(video) == 68 and video[0].shape == (240, 320, 3)
    assert [x.name for x in load_dataset(root, "real", data_root=data, split="val")] == ["cube_hand"]


@pytest.mark.parametrize("damage, message", [
    (lambda c: (c / "groundtruth_rect.txt").write_text("nan,nan,nan,nan\n" * ROWS), "row 0"),
    (lambda c: (c / "absent.txt").write_text("10\n"), "keyframe 10"),
    (lambda c: (c / "source.txt").write_text("frames: mbt_cube\ncount: 5\n"), "count: 5"),
    (lambda c: (c / "source.txt").write_text("frames: nowhere\n"), "not found"),
    (lambda c: (c / "masks" / "00099.png").write_bytes((c / "masks" / "00010.png").read_bytes()), "00099.png"),
])
def test_real_loader_names_the_broken_file(real_set, damage, message) -> None:
    root, data, _ = real_set
    damage(root / "cube_hand")
    with pytest.raises(DatasetError, match=message):
        load_dataset(root, "real", data_root=data)


class Oracle:
    """A harness tracker that knows the cube's keyframe boxes and masks: every score is fixed
    by construction, so the scoring rules (what counts, what is excluded) are what is tested."""

    name = "oracle"

    def __init__(self, boxes: np.ndarray, masks: dict[int, np.ndarray], absent: int) -> None:
        self.boxes, self.masks, self.absent = boxes, masks, absent
        self.i, self.lost, self.last = 0, False, None

    def init(self, frame, box, mask=None) -> None:
        self.i, self.last = 0, box

    def update(self, frame):
        self.i += 1
        if np.isfinite(self.boxes[self.i]).all():
            self.last = tuple(self.boxes[self.i])
        self.lost = self.i == self.absent
        mask = self.masks.get(self.i)
        return self.last, 1.0, None if mask is None else mask > 0


def test_absent_keyframes_are_reported_not_scored_and_masks_beside_their_box(real_set) -> None:
    root, data, cube = real_set
    (seq,) = load_dataset(root, "real", data_root=data, split="val")
    gt_mask = seq.mask(10).astype(np.uint8) * 255
    cfg = EvalConfig(protocols=["ope", "vot"])
    result = evaluate_tracker(Oracle(cube, {10: gt_mask}, ABSENT), [seq], cfg)
    entry = result.sequences["cube_hand"]
    assert entry["annotated"] == 4  # 0, 10, 30, 40: the absent keyframe is not a box keyframe
    assert entry["ope"]["frames"] == 3 and entry["ope"]["auc"] == pytest.approx(1.0)
    assert entry["vot"]["failures"] == 0
    assert entry["absent"] == {"keyframes": 1, "box": 0, "lost": 1}
    davis = entry["davis"]
    assert davis["frames"] == 1 and davis["J"]["mean"] == pytest.approx(1.0)
    # the filled keyframe box against the ellipse inside it: about pi/4
    assert davis["J_box"] == pytest.approx(np.pi / 4, abs=0.03)
    summary = overall(result, cfg)
    assert summary["absent"] == {"keyframes": 1, "box": 0, "lost": 1}
    assert summary["davis"]["J_box"] == pytest.approx(davis["J_box"])


def test_eval_cli_on_the_real_format(real_set, tmp_path: Path, capsys) -> None:
    root, data, _ = real_set
    out = tmp_path / "out"
    code = cli.main(["--dataset", str(root), "--format", "real", "--data", str(data), "--split", "val",
                     "--tracker", "kcf", "--out", str(out)])
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["split"] == "val"
    entry = doc["trackers"]["kcf"]["sequences"]["cube_hand"]
    assert set(entry) >= {"ope", "vot", "davis", "absent"}
    assert entry["absent"]["keyframes"] == 1 and entry["absent"]["box"] + entry["absent"]["lost"] == 1
    assert entry["davis"]["mask_from_box"] and entry["davis"]["J"]["mean"] == pytest.approx(entry["davis"]["J_box"])
    assert "Jbox" in capsys.readouterr().out


def test_quality_table_leads_with_the_real_set(real_set, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root, data, _ = real_set
    outs = []
    for tracker in ("csrt", "kcf"):  # two runs (as per tracker or per clip), merged by the table
        outs += ["--real", str(tmp_path / f"eval_{tracker}")]
        assert cli.main(["--dataset", str(root / "cube_hand"), "--format", "real", "--data", str(data),
                         "--tracker", tracker, "--out", outs[-1]]) == 0
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "quality_table.py"), "--out", str(tmp_path / "q"),
                           *outs], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    table = (tmp_path / "q" / "table.md").read_text().splitlines()
    assert table[2].startswith(f"## Real validation set (1 clips, split val; {root})")
    doc = json.loads((tmp_path / "q" / "results.json").read_text())
    for tracker in ("csrt", "kcf"):
        per_clip = doc["real"]["trackers"][tracker]["per_clip"]["cube_hand"]
        row = next(line for line in table if line.startswith(f"| {tracker} |")).split(" | ")
        assert row[1] == f"{per_clip['ope']['auc']:.3f}" and row[3] == str(per_clip["vot"]["failures"])
        assert row[4] == f"{per_clip['absent']['box']} / {per_clip['absent']['lost']}"
        assert row[5] == f"{per_clip['davis']['J']['mean']:.3f} (box)"
    clip_row = next(line for line in table if line.startswith("| cube_hand |"))
    assert "4/41; partial-occlusion, out-of-plane" in clip_row and clip_row.count("(J ") == 2
