"""The node's ROS parameters, declared from the core config's field metadata (description,
range, choices, restart-only: `cyclesiam.config.setting`), read back into the core config,
and run-time changes checked by the same validation as a config file."""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from cyclesiam.config import (Config, ConfigError, DepthConfig, FieldInfo, NodeSettings, RuntimeConfig, TrackerConfig,
                              fields_of, from_dict, merge)

# parameter name prefix -> the config section it fills ("" = the node's own settings)
SECTIONS = {"": NodeSettings, "tracker.": TrackerConfig, "runtime.": RuntimeConfig, "depth.": DepthConfig}
FIELDS: dict[str, FieldInfo] = {prefix + info.name: info for prefix, cls in SECTIONS.items() for info in fields_of(cls)}
RESTART_ONLY = frozenset(name for name, info in FIELDS.items() if info.restart)


def declare_parameters(node: Node) -> None:
    """Declare every parameter of the tracker node (with descriptions and ranges) on `node`."""
    for name, info in FIELDS.items():
        node.declare_parameter(name, info.default, descriptor(info))


def descriptor(info: FieldInfo) -> ParameterDescriptor:
    """The ROS descriptor of one field: description, range, choices/oddness as constraints."""
    restart = " (read at configure only: restart, or cleanup and configure, to change)" if info.restart else ""
    desc = ParameterDescriptor(description=info.description + restart, read_only=False)
    constraints = []
    if info.choices:
        constraints.append(f"one of {list(info.choices)}")
    if info.lower is not None or info.upper is not None:
        constraints.append(f"in {info.interval()}")
    if info.odd:
        constraints.append("odd")
    desc.additional_constraints = "; ".join(constraints)
    if isinstance(info.default, bool) or info.lower is None or info.upper is None:
        return desc  # every numeric field has both bounds (test/core/test_config.py)
    if isinstance(info.default, int):
        desc.integer_range = [IntegerRange(from_value=int(info.lower), to_value=int(info.upper), step=1)]
    elif isinstance(info.default, float):
        desc.floating_point_range = [FloatingPointRange(from_value=float(info.lower), to_value=float(info.upper),
                                                        step=0.0)]
    return desc


def settings_from_parameters(node: Node, overrides: dict[str, Any] | None = None) -> tuple[Config, NodeSettings]:
    """The core Config (`tracker.*`, `runtime.*`) and the node's settings from the node's
    parameters with `overrides` applied; ConfigError when a value is out of range."""
    values = {name: node.get_parameter(name).value for name in FIELDS}
    values.update(overrides or {})
    sections: dict[str, dict[str, Any]] = {prefix: {} for prefix in SECTIONS}
    for name, value in values.items():
        prefix = name.split(".", 1)[0] + "." if "." in name else ""
        sections[prefix][name[len(prefix):]] = value
    config = merge(Config(), {"tracker": sections["tracker."], "runtime": sections["runtime."]})
    return config, from_dict(NodeSettings, {**sections[""], "depth": sections["depth."]})


def check_changes(node: Node, changes: dict[str, Any], configured: bool = True
                  ) -> tuple[tuple[Config, NodeSettings] | None, str]:
    """The config after run-time `changes`, or None and the reason they are refused. Restart-only
    parameters may change only while the node is unconfigured: configure reads them."""
    restart = sorted(set(changes) & RESTART_ONLY)
    if restart and configured:
        return None, (f"{restart} only take effect at configure; restart the node, or cleanup, set them "
                      "and configure (lifecycle)")
    try:
        return settings_from_parameters(node, changes), ""
    except ConfigError as exc:
        return None, str(exc)
