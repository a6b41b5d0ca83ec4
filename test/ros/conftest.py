from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def rclpy_context():
    """An initialised rclpy for the module (DDS env comes from test/conftest.py)."""
    import rclpy

    rclpy.init()
    yield rclpy
    rclpy.shutdown()
