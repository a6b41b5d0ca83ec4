"""CycleSiam self-supervised cycle training and evaluation (no ROS graph needed)."""
