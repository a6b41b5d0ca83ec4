"""Where the shipped default checkpoint lives (no ROS import: also used by the CLIs)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CHECKPOINT_NAME = "cyclesiam_default.safetensors"
PACKAGE_SHARE = Path("share") / "cyclesiam_ros" / "models"


def default_checkpoint() -> Path | None:
    """The default model: $CYCLESIAM_DEFAULT_CHECKPOINT, the source tree's models/, or an
    installed `share/cyclesiam_ros/models/` under any AMENT_PREFIX_PATH / sys.prefix."""
    env = os.environ.get("CYCLESIAM_DEFAULT_CHECKPOINT")
    if env:
        return Path(env)
    for candidate in _candidates():
        if candidate.is_file():
            return candidate
    return None


def _candidates() -> list[Path]:
    import sys

    repo_models = Path(__file__).resolve().parents[1] / "models" / DEFAULT_CHECKPOINT_NAME
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    return [repo_models] + [Path(p) / PACKAGE_SHARE / DEFAULT_CHECKPOINT_NAME for p in prefixes]


def resolve_checkpoint(path: str | os.PathLike | None) -> Path:
    """`path` if given, else the default model; a clear error when neither exists."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"checkpoint not found: {p}")
        return p
    found = default_checkpoint()
    if found is None or not found.is_file():
        raise FileNotFoundError(
            f"no checkpoint given and no default model installed ({DEFAULT_CHECKPOINT_NAME} in models/ or "
            f"{PACKAGE_SHARE}); pass one, or train one with cyclesiam-train"
        )
    return found
