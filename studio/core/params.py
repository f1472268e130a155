"""Declarative parameter specs: one spec drives validation, CLI flags, the GUI form and metadata."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

PARAM_TYPES = ("int", "float", "bool", "choice", "str", "image", "audio", "path")
INPUT_TYPES = ("image", "audio", "path")


class ParamError(ValueError):
    """A parameter value that does not fit its spec; the message is one readable sentence."""


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Any = None
    label: str = ""
    help: str = ""
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False
    advanced: bool = False
    multiline: bool = False
    labels: str = ""  # int only: dotted key of the checkpoint config naming the values 0, 1, ...

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"parameter name {self.name!r} is not an identifier")
        if self.type not in PARAM_TYPES:
            raise ValueError(f"parameter {self.name!r}: unknown type {self.type!r}")
        if self.type == "choice" and not self.choices:
            raise ValueError(f"parameter {self.name!r}: a choice needs choices")
        if self.default is not None and not self.is_input:
            self.validate(self.default)

    def value_names(self, config: dict[str, Any]) -> list[str]:
        """The names of this int's values in a checkpoint config (``labels = "model.class_names"``), or []."""
        value: Any = config if self.labels else None
        for part in self.labels.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return [str(name) for name in value] if isinstance(value, list) else []

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def is_input(self) -> bool:
        """Inputs (images, audio, files) are paths or arrays, resolved by the engine."""
        return self.type in INPUT_TYPES

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Param:
        data = dict(data)
        if "choices" in data:
            data["choices"] = tuple(str(c) for c in data["choices"])
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"parameter {data.get('name')!r}: unknown keys {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "default": self.default}
        for key in ("label", "help", "min", "max", "step", "required", "advanced"):
            value = getattr(self, key)
            if value not in (None, "", False):
                out[key] = value
        if self.choices:
            out["choices"] = list(self.choices)
        return out

    def validate(self, value: Any) -> Any:
        """Coerce ``value`` (possibly a CLI string) to this spec's type or raise ParamError."""
        if value is None:
            if self.required:
                raise ParamError(f"{self.name} is required")
            return None
        kind = self.type
        try:
            if kind == "int":
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                value = int(value)
            elif kind == "float":
                if isinstance(value, bool):
                    raise ValueError
                value = float(value)
                if not math.isfinite(value):
                    raise ValueError
            elif kind == "bool":
                value = _to_bool(value)
            elif kind in ("choice", "str"):
                value = str(value)
        except (TypeError, ValueError):
            raise ParamError(f"{self.name} must be {_a(kind)}, not {value!r}") from None
        if kind in ("int", "float"):
            if self.min is not None and value < self.min:
                raise ParamError(f"{self.name} must be at least {self.min:g}, not {value:g}")
            if self.max is not None and value > self.max:
                raise ParamError(f"{self.name} must be at most {self.max:g}, not {value:g}")
        if kind == "choice" and value not in self.choices:
            raise ParamError(f"{self.name} must be one of {', '.join(self.choices)}, not {value!r}")
        return value


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


def _a(kind: str) -> str:
    names = {"int": "a whole number", "float": "a number", "bool": "true or false"}
    return names.get(kind, f"a {kind}")


@dataclass(frozen=True)
class ParamSet:
    """The ordered specs of one action."""

    params: tuple[Param, ...] = field(default_factory=tuple)

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def get(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def validate(self, values: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in, every value checked; unknown names are an error."""
        unknown = [k for k in values if self.get(k) is None]
        if unknown:
            known = ", ".join(p.name for p in self.params) or "none"
            raise ParamError(f"unknown parameter {unknown[0]!r} (known: {known})")
        out = {}
        for p in self.params:
            raw = values.get(p.name, p.default)
            out[p.name] = raw if p.is_input and raw is not None else p.validate(raw)
            if p.is_input and p.required and raw is None:
                raise ParamError(f"{p.name} is required")
        return out

    def parse_assignments(self, assignments: list[str]) -> dict[str, Any]:
        """``["steps=20", "sampler=ddim"]`` from the CLI's ``--set`` into validated-ready values."""
        values: dict[str, Any] = {}
        for item in assignments:
            name, sep, raw = item.partition("=")
            if not sep or not name.strip():
                raise ParamError(f"--set expects name=value, not {item!r}")
            values[name.strip()] = raw
        return values
