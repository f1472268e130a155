"""Checkpoints: a folder with config.json, model.safetensors and MODEL_CARD.md. Never pickle.

Writes are atomic: every file goes to a temporary name, is flushed to disk, then replaces the
old one, so a kill at any moment leaves either the previous checkpoint or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
CARD = "MODEL_CARD.md"
_UMASK = os.umask(0)
os.umask(_UMASK)


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be used."""


@dataclass
class Checkpoint:
    id: str
    path: Path
    config: dict[str, Any]
    source: str = "shipped"  # shipped | user | folder
    _sha256: str | None = field(default=None, repr=False)

    @property
    def plugin(self) -> str:
        return str(self.config.get("plugin", ""))

    @property
    def family(self) -> str:
        return str(self.config.get("family", ""))

    @property
    def name(self) -> str:
        return str(self.config.get("name", self.id))

    @property
    def weights(self) -> Path:
        return self.path / WEIGHTS

    @property
    def size(self) -> int:
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = self.config.get("sha256") or file_sha256(self.weights)
        return self._sha256

    def card(self) -> str:
        card = self.path / CARD
        return card.read_text(encoding="utf-8") if card.exists() else ""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return ""
    return digest.hexdigest()


def open_checkpoint(path: Path, source: str = "folder") -> Checkpoint:
    path = Path(path)
    config_path = path / CONFIG
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint folder")
    if not config_path.exists():
        raise CheckpointError(f"{path}: not a checkpoint folder (no {CONFIG})")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{config_path}: unreadable config ({exc})") from None
    if not isinstance(config, dict) or "plugin" not in config:
        raise CheckpointError(f"{config_path}: the config does not name its plugin")
    return Checkpoint(id=str(config.get("id", path.name)), path=path, config=config, source=source)


def discover(roots: list[tuple[Path, str]]) -> list[Checkpoint]:
    """Every checkpoint folder directly under each (root, source), or the root itself when it is
    one (a model trained into a folder of the user's choice); broken ones are skipped."""
    found: dict[str, Checkpoint] = {}
    for root, source in roots:
        if not root.is_dir():
            continue
        for child in [root] if (root / CONFIG).exists() else sorted(root.iterdir()):
            if (child / CONFIG).exists():
                try:
                    ckpt = open_checkpoint(child, source)
                except CheckpointError:
                    continue
                found.setdefault(ckpt.id, ckpt)
    return list(found.values())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(
    path: Path,
    tensors: dict[str, Any],
    config: dict[str, Any],
    card: str | None = None,
    extra_files: dict[str, bytes] | None = None,
) -> Checkpoint:
    """Write weights (numpy arrays or torch tensors), config and card atomically.

    The weights go first and the config last, with the weights' sha256 in it, so a reader that
    finds a config always finds the weights it describes.
    """
    path = Path(path)
    data = _serialize(tensors, {"plugin": str(config.get("plugin", ""))})
    digest = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(path / WEIGHTS, data)
    for name, blob in (extra_files or {}).items():
        atomic_write_bytes(path / name, blob)
    if card is not None:
        atomic_write_bytes(path / CARD, card.encode("utf-8"))
    config = {**config, "sha256": digest}
    atomic_write_bytes(path / CONFIG, (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
    return Checkpoint(id=str(config.get("id", path.name)), path=path, config=config, source="user")


def _serialize(tensors: dict[str, Any], metadata: dict[str, str]) -> bytes:
    if tensors and all(type(t).__module__ == "numpy" for t in tensors.values()):
        from safetensors.numpy import save

        return save({k: _contiguous(v) for k, v in tensors.items()}, metadata=metadata)
    from safetensors.torch import save

    return save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)


def _contiguous(array):
    import numpy as np

    return np.ascontiguousarray(array)


def load_tensors(path: Path, framework: str = "numpy") -> dict[str, Any]:
    """Read model.safetensors from a checkpoint folder as numpy arrays or torch tensors."""
    weights = Path(path) / WEIGHTS if Path(path).is_dir() else Path(path)
    if not weights.exists():
        raise CheckpointError(f"{weights}: the weights file is missing")
    try:
        if framework == "numpy":
            from safetensors.numpy import load_file
        else:
            from safetensors.torch import load_file
        return load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{weights}: not a readable safetensors file ({exc})") from None
