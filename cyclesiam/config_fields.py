"""Config field metadata: a field's description, range (ge/gt/le/lt, choices, odd) and whether
it can change only at start-up, kept in ONE place (`setting(...)` dataclass field metadata),
and the one validation built on it (`validate`). Read by `cyclesiam.config` (the fields),
the node (its ROS parameter declarations) and every loader."""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the key."""


def setting(default: Any, description: str, *, ge: float | None = None, gt: float | None = None,
            le: float | None = None, lt: float | None = None,
            choices: Sequence[str] | Callable[[], Sequence[str]] | None = None, odd: bool = False,
            restart: bool = False) -> Any:
    """A config field with its description, range and restart-only flag (read by `validate` and the node).
    `choices` may be a `registry(...)`: the names of a strategy registry, read when first needed."""
    if choices is not None and not callable(choices):
        choices = tuple(choices)
    meta = {"description": description, "ge": ge, "gt": gt, "le": le, "lt": lt,
            "choices": choices, "odd": odd, "restart": restart}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class FieldInfo:
    """What `setting` recorded about one field: description, bounds, choices, restart-only."""

    name: str
    default: Any
    description: str
    ge: float | None
    gt: float | None
    le: float | None
    lt: float | None
    choices: tuple[str, ...] | None
    odd: bool
    restart: bool

    @property
    def lower(self) -> float | None:
        return self.ge if self.ge is not None else self.gt

    @property
    def upper(self) -> float | None:
        return self.le if self.le is not None else self.lt

    def problem(self, value: Any) -> str | None:
        """Why `value` is outside this field's range, or None when it is inside."""
        if self.choices is not None and value not in self.choices:
            return f"must be one of {list(self.choices)}, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if self.odd and value % 2 == 0:
            return f"must be odd, got {value!r}"
        inside = ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                  and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))
        if not inside:  # NaN lands here too: every comparison with it is false
            return f"must be {self.bounds()} (in {self.interval()}), got {value!r}"
        return None

    def bounds(self) -> str:
        """The range in words: '> 1 and <= 2'."""
        parts = [f"{op} {v:g}" for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
                 if v is not None]
        return " and ".join(parts)

    def interval(self) -> str:
        lo = f"[{self.ge:g}" if self.ge is not None else (f"({self.gt:g}" if self.gt is not None else "(-inf")
        hi = f"{self.le:g}]" if self.le is not None else (f"{self.lt:g})" if self.lt is not None else "inf)")
        return f"{lo}, {hi}"


def registry(module: str, attribute: str) -> Callable[[], tuple[str, ...]]:
    """A field's choices taken from a strategy registry (`module.attribute`, a dict or a sequence of
    names), so a new strategy is its file plus its registry entry and no word here. Read lazily:
    the registries import this config."""
    def names() -> tuple[str, ...]:
        return tuple(getattr(importlib.import_module(module), attribute))
    return names


def fields_of(cls_or_obj: Any) -> list[FieldInfo]:
    """The `setting` metadata of a config dataclass's fields (fields without it are skipped)."""
    out = []
    for f in dataclasses.fields(cls_or_obj):
        if "description" in f.metadata:
            meta = dict(f.metadata)
            if callable(meta["choices"]):
                meta["choices"] = tuple(meta["choices"]())
            out.append(FieldInfo(name=f.name, default=default_of(f), **meta))
    return out


def field_info(cls_or_obj: Any, name: str) -> FieldInfo:
    """The `setting` metadata of one field."""
    return next(info for info in fields_of(cls_or_obj) if info.name == name)


def validate(obj: Any, path: str = "") -> Any:
    """ConfigError naming the key unless every field of dataclass `obj` (nested ones too) is in
    its range and every cross-field rule (`rules`) holds; returns `obj`."""
    infos = {info.name: info for info in fields_of(obj)}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{path}.{f.name}" if path else f.name
        if dataclasses.is_dataclass(value):
            validate(value, key)
        elif f.name in infos and (problem := infos[f.name].problem(value)) is not None:
            raise ConfigError(f"{key} {problem}")
    for rule, message in getattr(obj, "rules", ()):
        if not rule(obj):
            raise ConfigError(f"{path + '.' if path else ''}{message}")
    return obj


Rule = tuple[Callable[[Any], bool], str]


def default_of(f: dataclasses.Field) -> Any:
    """A dataclass field's default value (a fresh one for default_factory fields)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None
