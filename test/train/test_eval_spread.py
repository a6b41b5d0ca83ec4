"""`eval.init_shift` and cyclesiam_train/eval/spread.py: the same evaluation under shifted start boxes,
on the hand-annotated mbt_cube dev clip (real ViSP frames) with the `still` baseline, whose every box
is its start box, so the shift can be read back exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cyclesiam_train.eval import cli, spread

REPO = Path(__file__).resolve().parents[2]
GT = REPO / "annotations" / "dev" / "mbt_cube" / "groundtruth_rect.txt"


@pytest.fixture()
def cube_otb(tmp_path: Path, cube_frames_dir: Path) -> Path:
    seq = tmp_path / "otb" / "mbt_cube"
    seq.mkdir(parents=True)
    (seq / "img").symlink_to(cube_frames_dir.resolve())
    (seq / "groundtruth_rect.txt").symlink_to(GT)
    return seq.parent


def test_every_start_box_is_shifted_and_scored_against_the_annotation(cube_otb: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "spread"
    code = spread.main(["--out", str(out), "--shifts", "0,0", "12,-3", "--", "--dataset", str(cube_otb),
                        "--format", "otb", "--tracker", "still"])
    assert code == 0
    first = np.loadtxt(GT, delimiter=",", max_rows=1)
    plain = np.loadtxt(out / "shift_0_0" / "predictions" / "still" / "mbt_cube.txt", delimiter=",")
    moved = np.loadtxt(out / "shift_12_-3" / "predictions" / "still" / "mbt_cube.txt", delimiter=",")
    assert np.allclose(plain[1:], np.round(first, 2))
    assert np.allclose(moved[1:], np.round(first + [12, -3, 0, 0], 2))  # row 0 is the given annotation
    summary = json.loads((out / "spread.json").read_text())
    assert summary["shifts"] == [[0.0, 0.0], [12.0, -3.0]]
    clip = summary["trackers"]["still"]["clips"]["mbt_cube"]
    plain_auc = json.loads((out / "shift_0_0" / "results.json").read_text())["trackers"]["still"]["sequences"]["mbt_cube"]["ope"]["auc"]
    assert clip["auc"][0] == pytest.approx(plain_auc)
    assert clip["auc"][1] != pytest.approx(clip["auc"][0])  # the shifted box overlaps the annotations otherwise
    # VOT re-initialises the still box on the annotation after each failure: shifted too, so it fails as often or more
    assert clip["failures"][1] >= clip["failures"][0] >= 1
    printed = capsys.readouterr().out
    assert "shifts of the start box (dx,dy px): (0,0) (12,-3)" in printed and "set mean AUC" in printed
    (out / "spread.json").unlink()
    assert spread.main(["--out", str(out), "--shifts", "0,0", "12,-3", "--reuse"]) == 0  # no evaluation run again
    assert json.loads((out / "spread.json").read_text()) == summary


def test_a_bad_shift_is_refused_with_a_clear_error(cube_otb: Path, tmp_path: Path, capsys) -> None:
    code = cli.main(["--dataset", str(cube_otb), "--format", "otb", "--tracker", "still", "--out", str(tmp_path / "a"),
                     "--set", "eval.init_shift=[1]"])
    assert code == 2 and "eval.init_shift must be two finite numbers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        spread.main(["--out", str(tmp_path / "b"), "--shifts", "1", "--", "--dataset", str(cube_otb)])
    assert "a shift is DX,DY in pixels" in capsys.readouterr().err
    assert spread.main(["--out", str(tmp_path / "c"), "--", "--dataset", str(cube_otb), "--out", "x"]) == 2
