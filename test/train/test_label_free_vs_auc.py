"""The probe's rank statistics (numpy, no scipy): known values, ties, and the direction of agreement."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SPEC = importlib.util.spec_from_file_location("label_free_vs_auc",
                                              Path(__file__).resolve().parents[2] / "probes" / "label_free_vs_auc.py")
probe = importlib.util.module_from_spec(SPEC)
sys.modules[SPEC.name] = probe  # its dataclasses look their module up there
SPEC.loader.exec_module(probe)


def test_ranks_share_ties() -> None:
    assert probe.ranks([0.3, 0.1, 0.3, 0.9]).tolist() == [2.5, 1.0, 2.5, 4.0]


def test_spearman_is_rank_based_and_signed() -> None:
    x = [0.1, 0.2, 0.5, 0.9]
    assert probe.spearman(x, np.exp(x)) == pytest.approx(1.0)  # monotone, not linear
    assert probe.spearman(x, [-v for v in x]) == pytest.approx(-1.0)
    # the textbook case: d = (0, 1, -1, 0) -> 1 - 6 * 2 / (4 * 15) = 0.8
    assert probe.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)


def test_kendall_tau_b() -> None:
    assert probe.kendall([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # 5 concordant, 1 discordant
    assert probe.kendall([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # one tie in b: tau-b = (2 - 0) / sqrt(3 * 2)
    assert probe.kendall([1, 2, 3], [1, 2, 2]) == pytest.approx(2 / np.sqrt(6))
    assert np.isnan(probe.kendall([1, 1, 1], [1, 2, 3]))


def test_report_flags_a_verdict_against_the_auc_and_is_json() -> None:
    """Candidate b wins every paired trip but has the lower AUC: the verdict is flagged; the figures serialise."""
    import json

    from cyclesiam_train.label_free_check import TripResult

    cands = [probe.Candidate("a", "random", {}), probe.Candidate("b", "random", {})]
    trips = {"a": [[TripResult(0.3 + 0.01 * k, 0.0, 0.1) for k in range(6)]],
             "b": [[TripResult(0.6 + 0.01 * k, 0.0, 0.1) for k in range(6)]]}
    out = probe.report(cands, ["clip"], np.array([[0.3], [0.6]]), np.array([[0.7], [0.4]]), trips)
    flagged = [v for v in out["verdicts"] if v["contradicts_auc"]]
    assert [(v["base"], v["candidate"]) for v in flagged] == [("a", "b")]
    assert json.loads(json.dumps(out))["same_best_clips"] == 0
