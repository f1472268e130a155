"""Builders of the data sets our shipped models train on, from packages only (no downloads).

Each builder writes ``OUT/train/LABEL/*.png`` and ``OUT/test/LABEL/*.png`` (or audio) plus a
``dataset.json`` with counts and licence, and produces identical files every run.
"""

from __future__ import annotations

import importlib
from pathlib import Path

BUILDERS = {
    "mnist-5k": "studio.data.mnist:build",
    "emoji-32": "studio.data.emoji:build_32",
    "emoji-64": "studio.data.emoji:build_64",
    "emoji-groups-32": "studio.data.emoji:build_groups_32",
    "gm-notes-16k": "studio.data.notes:build",
}


def build(name: str, out: Path) -> dict:
    if name not in BUILDERS:
        raise KeyError(f"no data set {name!r} (known: {', '.join(BUILDERS)})")
    module, _, attr = BUILDERS[name].partition(":")
    return getattr(importlib.import_module(module), attr)(Path(out))
