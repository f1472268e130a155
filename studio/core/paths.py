"""Where things live: the install (read-only) and the user's platformdirs locations."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP = "Studio"


def install_root() -> Path:
    """The folder holding models/ and resources/: the repo, or the frozen bundle."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen)
    return Path(__file__).resolve().parents[2]


def shipped_models_dir() -> Path:
    return install_root() / "models"


def resources_dir() -> Path:
    return install_root() / "resources"


def _override(var: str) -> Path | None:
    value = os.environ.get(var)
    return Path(value) if value else None


def user_data_dir() -> Path:
    """STUDIO_HOME moves every user location (tests and portable installs use it)."""
    home = _override("STUDIO_HOME")
    return home / "data" if home else Path(platformdirs.user_data_dir(APP, appauthor=False))


def user_config_dir() -> Path:
    home = _override("STUDIO_HOME")
    return home / "config" if home else Path(platformdirs.user_config_dir(APP, appauthor=False))


def user_cache_dir() -> Path:
    home = _override("STUDIO_HOME")
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP, appauthor=False))


def user_models_dir() -> Path:
    return user_data_dir() / "models"


def default_project_dir() -> Path:
    return user_data_dir() / "projects" / "default"
