"""LOST policies, chosen by tracker.lost_hold: "report" (false) | "hold" (true). A new policy is one
file with a `ReportLost` subclass and one entry in LOST_POLICIES (plus the key that names it)."""

from __future__ import annotations

from cyclesiam.config import TrackerConfig
from cyclesiam.tracking.lost.hold import HoldLost
from cyclesiam.tracking.lost.report import ReportLost

LOST_POLICIES: dict[str, type[ReportLost]] = {"report": ReportLost, "hold": HoldLost}


def lost_policy_name(cfg: TrackerConfig) -> str:
    return "hold" if cfg.lost_hold else "report"


def lost_policy(cfg: TrackerConfig) -> ReportLost:
    return LOST_POLICIES[lost_policy_name(cfg)](cfg)
