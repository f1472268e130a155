"""User settings as a small JSON file in the config directory, written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from studio.core.checkpoints import atomic_write_bytes
from studio.core.paths import user_config_dir

DEFAULTS: dict[str, Any] = {
    "device": "auto",
    "enabled_plugins": [],
    "last_project": "",
    "recent_projects": [],
}


class Settings:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or user_config_dir() / "settings.json"
        self._data: dict[str, Any] = dict(DEFAULTS)
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                self._data.update(loaded)
        except (OSError, ValueError):
            pass

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, DEFAULTS.get(key, default))

    def set(self, key: str, value: Any) -> None:
        self._data[key] = value
        self.save()

    def save(self) -> None:
        atomic_write_bytes(self.path, json.dumps(self._data, indent=2).encode("utf-8"))
