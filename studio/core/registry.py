"""Plugin discovery: manifests are read without importing plugin code; code loads on first use.

Built-in plugins are listed explicitly (frozen builds can lose entry-point metadata) and also
register through the ``studio.plugins`` entry-point group, like third-party ones. An entry
point's value is the dotted name of a package holding ``plugin.toml``; the file is located
without executing the package. Third-party plugins stay off until the user enables them.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from studio.core.checkpoints import Checkpoint, CheckpointError, discover, open_checkpoint
from studio.core.paths import shipped_models_dir, user_models_dir
from studio.core.plugin import ActionFn, ActionSpec, Manifest, ManifestError

GROUP = "studio.plugins"
MANIFEST = "plugin.toml"
BUILTINS = (
    "plugins.ppca",
    "plugins.wavenet",
    "plugins.vae",
    "plugins.flow",
    "plugins.diffusion",
    "plugins.gan",
    "plugins.pixelcnn",
)


@dataclass
class PluginInfo:
    package: str
    source: str  # "builtin" or the distribution name of a third-party plugin
    manifest: Manifest | None = None
    enabled: bool = True
    error: str = ""

    @property
    def id(self) -> str:
        return self.manifest.id if self.manifest else self.package

    @property
    def builtin(self) -> bool:
        return self.source == "builtin"

    @property
    def usable(self) -> bool:
        return self.enabled and self.manifest is not None and not self.error


def locate_package(package: str) -> Path | None:
    """The folder of a dotted package name, found without running any of its code."""
    top, *rest = package.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location).joinpath(*rest)
        if (folder / MANIFEST).exists():
            return folder
    return None


class Registry:
    def __init__(
        self,
        enabled: list[str] | tuple[str, ...] = (),
        safe_mode: bool = False,
        model_roots: list[tuple[Path, str]] | None = None,
        builtins: tuple[str, ...] = BUILTINS,
    ) -> None:
        self.safe_mode = safe_mode
        self.enabled = set(enabled)
        self.model_roots = model_roots or [(shipped_models_dir(), "shipped"), (user_models_dir(), "user")]
        self.plugins: dict[str, PluginInfo] = {}
        self._actions: dict[tuple[str, str], ActionFn] = {}
        self._loaders: dict[str, Any] = {}
        self._checkpoints: list[Checkpoint] | None = None
        self._discover(builtins)

    # discovery -----------------------------------------------------------------------------
    def _discover(self, builtins: tuple[str, ...]) -> None:
        for package in builtins:
            self._add(package, "builtin")
        if self.safe_mode:
            return
        try:
            found = entry_points(group=GROUP)
        except Exception:  # a broken distribution's metadata must not stop the app
            found = []
        for ep in found:
            dist = ep.dist.name if ep.dist else ep.name
            if ep.value in builtins:
                continue
            self._add(ep.value, dist)

    def _add(self, package: str, source: str) -> None:
        info = PluginInfo(package=package, source=source)
        folder = locate_package(package)
        if folder is None:
            info.error = f"package {package!r} has no {MANIFEST}"
        else:
            try:
                info.manifest = Manifest.from_file(folder / MANIFEST)
            except ManifestError as exc:
                info.error = str(exc)
        if not info.builtin:
            info.enabled = info.id in self.enabled
        if info.id in self.plugins:
            info.error = info.error or f"another plugin already uses the id {info.id!r}"
            self.plugins[f"{info.id}@{source}"] = info
            return
        self.plugins[info.id] = info

    # queries --------------------------------------------------------------------------------
    def usable(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.usable]

    def get(self, plugin_id: str) -> PluginInfo:
        info = self.plugins.get(plugin_id)
        if info is None:
            raise KeyError(f"no plugin {plugin_id!r}")
        return info

    def manifest(self, plugin_id: str) -> Manifest:
        info = self.get(plugin_id)
        if not info.usable:
            reason = info.error or "it is disabled (enable it in Preferences)"
            raise KeyError(f"plugin {plugin_id!r} cannot run: {reason}")
        assert info.manifest is not None
        return info.manifest

    def by_family(self, family: str) -> PluginInfo:
        for info in self.usable():
            if info.manifest and info.manifest.family == family:
                return info
        families = sorted({p.manifest.family for p in self.usable() if p.manifest})
        raise KeyError(f"no plugin for family {family!r} (known: {', '.join(families)})")

    def checkpoints(self, refresh: bool = False) -> list[Checkpoint]:
        if self._checkpoints is None or refresh:
            self._checkpoints = discover(self.model_roots)
        return self._checkpoints

    def checkpoints_for(self, plugin_id: str) -> list[Checkpoint]:
        return [c for c in self.checkpoints() if c.plugin == plugin_id]

    def checkpoint(self, ref: str) -> Checkpoint:
        """A checkpoint folder path, or else a checkpoint id."""
        path = Path(ref).expanduser()
        if (path / "config.json").exists() or path.is_absolute():
            return open_checkpoint(path)
        for ckpt in self.checkpoints():
            if ckpt.id == ref:
                return ckpt
        known = ", ".join(c.id for c in self.checkpoints()) or "none"
        raise CheckpointError(f"no model {ref!r}: not a checkpoint id ({known}) nor a checkpoint folder")

    # lazy code --------------------------------------------------------------------------------
    def action_fn(self, plugin_id: str, action: ActionSpec) -> ActionFn:
        key = (plugin_id, action.id)
        if key not in self._actions:
            self._actions[key] = self._import(plugin_id, action.entry)
        return self._actions[key]

    def loader(self, plugin_id: str):
        if plugin_id not in self._loaders:
            entry = self.manifest(plugin_id).loader
            if not entry:
                raise KeyError(f"plugin {plugin_id!r} declares no model loader")
            self._loaders[plugin_id] = self._import(plugin_id, entry)
        return self._loaders[plugin_id]

    def _import(self, plugin_id: str, entry: str):
        module_name, _, attr = entry.partition(":")
        try:
            module = importlib.import_module(module_name)
            return getattr(module, attr)
        except Exception as exc:
            info = self.get(plugin_id)
            info.error = f"its code failed to import: {type(exc).__name__}: {exc}"
            raise PluginImportError(f"plugin {plugin_id!r} is disabled: {info.error}") from exc


class PluginImportError(RuntimeError):
    pass
