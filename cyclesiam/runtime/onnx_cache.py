"""The ONNX export cache, keyed by the checkpoint's SHA-256.

Where: `$XDG_CACHE_HOME/cyclesiam/onnx/<sha256[:16]>/` (or `~/.cache/...`) first when the
checkpoint lies in an install tree (a colcon install space, a Python prefix such as a venv or
/usr, or site-/dist-packages), so an installed package is never written into; otherwise next to
the checkpoint, `<ckpt dir>/.onnx_cache/<sha256[:16]>/`, falling back to the user cache when that
directory is not writable. A valid entry in any candidate is reused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from torch import nn

from cyclesiam.config import ModelConfig
from cyclesiam.runtime.onnx_export import export_model
from cyclesiam.runtime.onnx_format import DEFAULT_OPSET, OnnxError, check_metadata, parts_of, read_metadata

log = logging.getLogger(__name__)

CACHE_DIR_NAME = ".onnx_cache"
# files that mark the root of a colcon install space
INSTALL_MARKERS = (".colcon_install_layout", "local_setup.sh")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def user_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cyclesiam" / "onnx"


def in_install_tree(path: str | Path) -> bool:
    """True when `path` lies in a colcon install space, a Python installation prefix or a
    site-/dist-packages folder: places a package manager owns, never to be written into."""
    p = Path(path).resolve()
    if any(part in ("site-packages", "dist-packages") for part in p.parts):
        return True
    prefixes = {Path(prefix).resolve() for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    if any(p.is_relative_to(prefix) for prefix in prefixes if prefix != Path("/")):
        return True
    return any((parent / marker).is_file() for parent in p.parents for marker in INSTALL_MARKERS)


def cache_dirs(checkpoint: str | Path, sha256: str) -> list[Path]:
    """Candidate cache directories, preferred first: the user cache for a checkpoint in an
    install tree, else next to the checkpoint, then the user cache."""
    key = sha256[:16]
    user = user_cache_root() / key
    if in_install_tree(checkpoint):
        return [user]
    return [Path(checkpoint).resolve().parent / CACHE_DIR_NAME / key, user]


@dataclass
class CachedExport:
    paths: dict[str, Path]
    sha256: str
    exported: bool  # False = cache hit
    directory: Path = field(default_factory=Path)


def ensure_exported(
    checkpoint: str | Path,
    model: nn.Module | None = None,
    model_cfg: ModelConfig | None = None,
    opset: int = DEFAULT_OPSET,
) -> CachedExport:
    """The ONNX files of `checkpoint`, exported on the first call and reused afterwards
    (a cache entry is reused only when its metadata names the same checkpoint hash, format
    version and opset). `model`/`model_cfg` avoid loading the checkpoint twice."""
    ckpt = Path(checkpoint)
    if not ckpt.is_file():
        raise OnnxError(f"checkpoint not found: {ckpt}")
    sha = file_sha256(ckpt)
    if model is None or model_cfg is None:
        from cyclesiam.checkpoint import load_model

        model, model_cfg, _ = load_model(ckpt)
    wanted = parts_of(model_cfg)
    candidates = cache_dirs(ckpt, sha)
    for directory in candidates:
        if _cache_valid(directory, wanted, sha, model_cfg, opset):
            return CachedExport({p: directory / f"{p}.onnx" for p in wanted}, sha, False, directory)
    for directory in candidates:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if not os.access(directory, os.W_OK):
                raise PermissionError(f"{directory} is not writable")
            paths = export_model(model, model_cfg, directory, checkpoint_sha256=sha, opset=opset)
        except PermissionError as exc:
            log.info("ONNX cache %s not usable (%s); trying the next location", directory, exc)
            continue
        log.info("exported ONNX models of %s to %s", ckpt, directory)
        return CachedExport(paths, sha, True, directory)
    raise OnnxError(f"no writable ONNX cache directory for {ckpt}; tried {[str(d) for d in candidates]}")


def _cache_valid(directory: Path, parts: Sequence[str], sha: str, model_cfg: ModelConfig, opset: int) -> bool:
    for part in parts:
        path = directory / f"{part}.onnx"
        if not path.is_file():
            return False
        try:
            meta = read_metadata(path)
            check_metadata(meta, path, part, model_cfg, sha)
        except OnnxError as exc:
            log.warning("stale or bad ONNX cache entry, re-exporting: %s", exc)
            return False
        if meta.get("opset") != str(opset):
            return False
    return True

