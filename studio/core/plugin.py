"""The plugin contract: a validated manifest, and actions that are generators.

A manifest is a ``plugin.toml`` read without importing the plugin's code. Each action names
its code by import string (``package.module:function``). An action is called with an
``ActionContext`` and is a generator: it yields ``Progress`` and returns a ``Result``::

    def generate(ctx: ActionContext) -> Iterator[Progress]:
        for i in range(steps):
            ...
            yield Progress(i + 1, steps, preview=image)
        return Result(images=[image])
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.params import Param, ParamSet

VERBS = ("generate", "edit", "interpolate", "train", "encode", "likelihood")
MODALITIES = ("image", "audio", "symbolic", "text")


class ManifestError(ValueError):
    """A plugin.toml that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ActionSpec:
    id: str
    verb: str
    entry: str
    label: str = ""
    help: str = ""
    params: ParamSet = field(default_factory=ParamSet)
    needs_model: bool = True

    @property
    def title(self) -> str:
        return self.label or self.id.replace("_", " ").capitalize()


@dataclass(frozen=True)
class Manifest:
    id: str
    name: str
    family: str
    modality: str
    version: str
    actions: tuple[ActionSpec, ...]
    description: str = ""
    loader: str = ""
    trainer: str = ""
    views: tuple[str, ...] = ()
    checkpoints: tuple[str, ...] = ()
    devices: tuple[str, ...] = ("cuda", "mps", "cpu")
    path: Path | None = None

    def action(self, action_id: str) -> ActionSpec:
        for action in self.actions:
            if action.id == action_id:
                return action
        known = ", ".join(a.id for a in self.actions)
        raise KeyError(f"{self.name} has no action {action_id!r} (it has: {known})")

    def actions_for(self, verb: str) -> list[ActionSpec]:
        return [a for a in self.actions if a.verb == verb]

    @classmethod
    def from_file(cls, path: Path) -> Manifest:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ManifestError(f"{path}: cannot read the manifest: {exc}") from None
        try:
            return cls.from_dict(data, path=Path(path))
        except (KeyError, TypeError, ValueError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            raise ManifestError(f"{path}: {message}") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> Manifest:
        for key in ("id", "name", "family", "modality", "version", "actions"):
            if key not in data:
                raise ValueError(f"missing required key {key!r}")
        if data["modality"] not in MODALITIES:
            raise ValueError(f"modality {data['modality']!r} is not one of {', '.join(MODALITIES)}")
        actions = []
        for raw in data["actions"]:
            raw = dict(raw)
            verb = raw.pop("verb", None)
            if verb not in VERBS:
                raise ValueError(f"action {raw.get('id')!r}: verb {verb!r} is not one of {', '.join(VERBS)}")
            entry = raw.pop("entry", "")
            if ":" not in entry:
                raise ValueError(f"action {raw.get('id')!r}: entry must be 'module:function'")
            params = ParamSet(tuple(Param.from_dict(p) for p in raw.pop("params", [])))
            actions.append(ActionSpec(verb=verb, entry=entry, params=params, **raw))
        if not actions:
            raise ValueError("a plugin needs at least one action")
        ids = [a.id for a in actions]
        if len(set(ids)) != len(ids):
            raise ValueError("action ids must be unique")
        return cls(
            id=str(data["id"]),
            name=str(data["name"]),
            family=str(data["family"]),
            modality=str(data["modality"]),
            version=str(data["version"]),
            actions=tuple(actions),
            description=str(data.get("description", "")),
            loader=str(data.get("loader", "")),
            trainer=str(data.get("trainer", "")),
            views=tuple(data.get("views", ())),
            checkpoints=tuple(data.get("checkpoints", ())),
            devices=_devices(data.get("devices", ("cuda", "mps", "cpu"))),
            path=path,
        )


def _devices(values) -> tuple[str, ...]:
    devices = tuple(str(v) for v in values)
    unknown = [d for d in devices if d not in ("cuda", "mps", "cpu")]
    if unknown or not devices:
        raise ValueError(f"devices must be among cuda, mps, cpu, not {unknown or 'nothing'}")
    return devices


@dataclass(frozen=True)
class Progress:
    """One step of an action. ``metrics`` carries numbers to plot (losses while training)."""

    step: int
    total: int
    preview: Any = None
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Audio:
    samples: np.ndarray  # (n, channels) float32 in [-1, 1]
    rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate


@dataclass
class Result:
    """What an action returns. Images are uint8 (H, W, C) with C in 1, 3, 4."""

    images: list[np.ndarray] = field(default_factory=list)
    audio: list[Audio] = field(default_factory=list)
    latents: list[np.ndarray] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    model_dir: Path | None = None


@dataclass
class ActionContext:
    """Everything an action may use. ``model`` is the loaded checkpoint (cached by the engine)."""

    params: dict[str, Any]
    seed: int
    device: str
    model: Any = None
    checkpoint: Any = None
    inputs: dict[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def torch_generator(self):
        import torch

        generator = torch.Generator(device="cpu")
        generator.manual_seed(self.seed)
        return generator


ActionFn = Callable[[ActionContext], Generator[Progress, None, Result]]
