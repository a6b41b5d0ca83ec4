"""Where the shipped default checkpoint lives (no ROS import: also used by the CLIs)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

DEFAULT_CHECKPOINT_NAME = "cyclesiam_default.safetensors"
RANDOM_INIT = "random"  # the --checkpoint value that asks for an untrained, randomly initialised network
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


def cli_checkpoint(value: str | os.PathLike | None) -> Path | None:
    """A CLI's --checkpoint: None/empty = the shipped default, 'random' = None (random init, only
    on that explicit request), anything else = that file (an error if missing)."""
    if value is not None and str(value) == RANDOM_INIT:
        return None
    return resolve_checkpoint(value)


def sha256_prefix(path: str | os.PathLike, length: int = 16) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


def describe_model(requested: str | os.PathLike | None, resolved: Path | None) -> str:
    """One line naming the model a CLI runs: the shipped default, a given file, or random init."""
    if resolved is None:
        return f"model random-init (untrained network, asked for by --checkpoint {RANDOM_INIT})"
    kind = "shipped default" if not requested else "given"
    return f"model {_display(resolved)} ({kind}, sha256 {sha256_prefix(resolved)})"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
