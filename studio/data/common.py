"""Writing a built data set: image files per split and label, and dataset.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from studio.core import media


def write_split(out: Path, split: str, images: list[np.ndarray], labels: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = out / split / label
        folder.mkdir(parents=True, exist_ok=True)
        media.save_image(folder / f"{index:05d}.png", image)
        counts[label] = counts.get(label, 0) + 1
    return counts


def write_manifest(out: Path, info: dict) -> dict:
    (out / "dataset.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info
