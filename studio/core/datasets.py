"""User data folders: find, check and load training images, skipping what cannot be read.

Labels come from the first folder level below the root (``root/cat/x.png`` is class ``cat``);
files directly in the root have no class. One bad file never stops a run: it is listed in
``skipped`` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studio.core import media


class DatasetError(ValueError):
    """A data folder that cannot be trained on (missing, empty, nothing usable)."""


@dataclass
class ImageFolder:
    root: Path
    images: np.ndarray  # (N, H, W, C) uint8
    labels: np.ndarray  # (N,) int64, -1 where the file has no class folder
    classes: list[str]
    files: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    original_sizes: list[tuple[int, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def summary(self) -> str:
        text = f"{len(self)} images in {self.root}"
        if self.classes:
            text += f", {len(self.classes)} classes"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} unreadable"
        return text


def scan(root: Path, suffixes: tuple[str, ...] = media.IMAGE_SUFFIXES) -> list[Path]:
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: no such folder")
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def load_image_folder(
    root: Path,
    prepare: Callable[[np.ndarray], np.ndarray],
    limit: int | None = None,
) -> ImageFolder:
    """Every readable image under ``root``, passed through ``prepare`` (mode + size)."""
    root = Path(root).expanduser()
    files = scan(root)
    if not files:
        raise DatasetError(f"{root}: the folder is empty; add images (PNG, JPEG, WebP, BMP, TIFF)")
    images, labels, used, sizes = [], [], [], []
    skipped: list[tuple[Path, str]] = []
    class_names: dict[str, int] = {}
    for path in files:
        if path.suffix.lower() not in media.IMAGE_SUFFIXES:
            skipped.append((path, "not an image file type Studio reads"))
            continue
        try:
            image = media.load_image(path)
        except media.MediaError as exc:
            skipped.append((path, str(exc).removeprefix(f"{path}: ")))
            continue
        relative = path.relative_to(root)
        label = -1
        if len(relative.parts) > 1:
            label = class_names.setdefault(relative.parts[0], len(class_names))
        sizes.append(image.shape[:2])
        images.append(prepare(image))
        labels.append(label)
        used.append(path)
        if limit and len(images) >= limit:
            break
    if not images:
        raise DatasetError(f"{root}: none of the {len(files)} files is a readable image")
    return ImageFolder(
        root=root, images=np.stack(images), labels=np.asarray(labels, dtype=np.int64),
        classes=list(class_names), files=used, skipped=skipped, original_sizes=sizes,
    )
