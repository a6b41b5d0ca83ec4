"""CycleSiam core: Siamese box + mask tracker (ROS-free)."""

__version__ = "0.1.0"
