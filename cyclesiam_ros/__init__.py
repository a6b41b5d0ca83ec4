"""CycleSiam ROS 2 node and generated interfaces (`cyclesiam_ros.msg`, `cyclesiam_ros.srv`).

The generated interface modules and this hand-written package may live in two directories
(an editable checkout and the install prefix). Extending the package path lets
`cyclesiam_ros.msg` resolve from either place.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)  # type: ignore[name-defined]
