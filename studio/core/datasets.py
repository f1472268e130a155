"""User data folders: find, check and load training images or audio, skipping what cannot be read.

Labels come from the first folder level below the root (``root/cat/x.png`` is class ``cat``);
files directly in the root have no class. One bad file never stops a run: it is listed in
``skipped`` with the reason. ``summarize_folder`` says what a folder holds and what training
will do to it, for the training panel and the CLI, before anything is loaded.
"""

from __future__ import annotations

from collections import Counter
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

    def info(self) -> dict:
        """What a model card and a training checkpoint record about the data."""
        return _info(self.root, len(self), self.classes, self.labels, self.skipped)


def scan(root: Path, suffixes: tuple[str, ...] = media.IMAGE_SUFFIXES) -> list[Path]:
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: no such folder")
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def prepare_image(size: int, channels: int) -> Callable[[np.ndarray], np.ndarray]:
    """The usual ``prepare`` for load_image_folder: gray (1) or RGB (3, transparency over white),
    centre-cropped to a square and resized to ``size``: (size, size, channels) uint8."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (gray) or 3 (RGB), not {channels}")
    convert = media.to_gray if channels == 1 else media.to_rgb
    return lambda image: media.fit_square(convert(image), size)


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


def _info(root: Path, count: int, classes: list[str], labels: np.ndarray, skipped: list[tuple[Path, str]]) -> dict:
    per_class = {name: int((labels == i).sum()) for i, name in enumerate(classes)}
    return {
        "folder": str(root), "count": count, "classes": per_class,
        "skipped": [[str(path), why] for path, why in skipped],
    }


def _class_of(root: Path, path: Path, class_names: dict[str, int]) -> int:
    relative = path.relative_to(root)
    return class_names.setdefault(relative.parts[0], len(class_names)) if len(relative.parts) > 1 else -1


# audio ----------------------------------------------------------------------------------------
@dataclass
class AudioFolder:
    root: Path
    rate: int
    clips: list[np.ndarray]  # each (n,) float32 mono at ``rate``, silence trimmed
    labels: np.ndarray  # (N,) int64, -1 where the file has no class folder
    classes: list[str]
    files: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    originals: list[tuple[int, int, float]] = field(default_factory=list)  # (rate, channels, seconds)

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def seconds(self) -> float:
        return sum(len(c) for c in self.clips) / self.rate

    def stacked(self, length: int) -> np.ndarray:
        """(N, length) float32: each clip cut or zero-padded at the end to ``length`` samples."""
        out = np.zeros((len(self.clips), length), np.float32)
        for i, clip in enumerate(self.clips):
            out[i, : min(length, len(clip))] = clip[:length]
        return out

    def summary(self) -> str:
        text = f"{len(self)} clips ({self.seconds:.1f} s at {self.rate} Hz) in {self.root}"
        if self.classes:
            text += f", {len(self.classes)} classes"
        if self.skipped:
            text += f"; skipped {len(self.skipped)} unusable"
        return text

    def info(self) -> dict:
        return {**_info(self.root, len(self), self.classes, self.labels, self.skipped),
                "rate": self.rate, "seconds": round(self.seconds, 2)}


def trim_silence(samples: np.ndarray, threshold_db: float = 40.0, frame: int = 256) -> np.ndarray:
    """Cut leading and trailing frames quieter than ``threshold_db`` below the loudest frame."""
    if len(samples) == 0:
        return samples
    frames = len(samples) // frame + (len(samples) % frame > 0)
    padded = np.zeros(frames * frame, np.float32)
    padded[: len(samples)] = samples
    rms = np.sqrt(np.mean(padded.reshape(frames, frame) ** 2, axis=1))
    peak = rms.max()
    if peak <= 0:
        return samples[:0]
    loud = np.flatnonzero(rms >= peak * 10 ** (-threshold_db / 20))
    return samples[loud[0] * frame : min(len(samples), (loud[-1] + 1) * frame)]


def load_audio_folder(
    root: Path,
    rate: int,
    trim_db: float | None = 40.0,
    min_seconds: float = 0.01,
    limit: int | None = None,
) -> AudioFolder:
    """Every readable WAV/FLAC/OGG under ``root`` as mono float32 at ``rate``, silence trimmed
    (``trim_db=None`` keeps it). Unreadable, silent or too-short files are skipped with a reason."""
    root = Path(root).expanduser()
    files = scan(root)
    if not files:
        raise DatasetError(f"{root}: the folder is empty; add audio files (WAV, FLAC, OGG)")
    clips, labels, used, originals = [], [], [], []
    skipped: list[tuple[Path, str]] = []
    class_names: dict[str, int] = {}
    for path in files:
        if path.suffix.lower() not in media.AUDIO_SUFFIXES:
            skipped.append((path, "not an audio file type Studio reads"))
            continue
        try:
            audio = media.load_audio(path)
        except media.MediaError as exc:
            skipped.append((path, str(exc).removeprefix(f"{path}: ")))
            continue
        mono = media.resample(media.to_mono(audio.samples), audio.rate, rate)[:, 0].astype(np.float32)
        if not np.isfinite(mono).all():
            skipped.append((path, "the audio holds NaN or infinite samples"))
            continue
        if trim_db is not None:
            mono = trim_silence(mono, trim_db)
        if len(mono) < min_seconds * rate:
            skipped.append((path, "silent or shorter than " + f"{min_seconds:g} s"))
            continue
        clips.append(np.ascontiguousarray(mono))
        labels.append(_class_of(root, path, class_names))
        used.append(path)
        originals.append((audio.rate, audio.samples.shape[1], round(audio.duration, 3)))
        if limit and len(clips) >= limit:
            break
    if not clips:
        raise DatasetError(f"{root}: none of the {len(files)} files is usable audio")
    return AudioFolder(
        root=root, rate=rate, clips=clips, labels=np.asarray(labels, dtype=np.int64), classes=list(class_names),
        files=used, skipped=skipped, originals=originals,
    )


# summaries ----------------------------------------------------------------------------------
@dataclass
class FolderSummary:
    root: Path
    kind: str  # image | audio
    files: int  # every file found, usable or not
    usable: list[Path]
    skipped: list[tuple[Path, str]]
    classes: dict[str, int]
    formats: dict[str, int]  # "64x64 RGBA" or "44100 Hz stereo" -> count
    seconds: float = 0.0  # audio only
    plan: list[str] = field(default_factory=list)  # what training will do to the files

    @property
    def count(self) -> int:
        return len(self.usable)

    def text(self) -> str:
        noun = "images" if self.kind == "image" else "audio files"
        lines = [f"{self.count} {noun} of {self.files} files in {self.root}"]
        if self.kind == "audio":
            lines[0] += f" ({self.seconds:.1f} s in all)"
        if self.classes:
            lines.append(f"{len(self.classes)} class{'es' if len(self.classes) > 1 else ''}: " + ", ".join(f"{k} ({v})" for k, v in self.classes.items()))
        top = sorted(self.formats.items(), key=lambda kv: -kv[1])[:5]
        lines.append("found: " + ", ".join(f"{v} x {k}" for k, v in top) + (" ..." if len(self.formats) > 5 else ""))
        lines += [f"will {step}" for step in self.plan]
        if self.skipped:
            lines.append(f"skipping {len(self.skipped)}: " + "; ".join(f"{p.name} ({why})" for p, why in self.skipped[:5])
                         + (" ..." if len(self.skipped) > 5 else ""))
        return "\n".join(lines)


def guess_kind(files: list[Path]) -> str:
    images = sum(p.suffix.lower() in media.IMAGE_SUFFIXES for p in files)
    audio = sum(p.suffix.lower() in media.AUDIO_SUFFIXES for p in files)
    return "audio" if audio > images else "image"


def summarize_folder(
    root: Path,
    kind: str = "auto",
    size: int | None = None,
    channels: int | None = None,
    rate: int | None = None,
) -> FolderSummary:
    """Count, check and describe a training folder. Images are decoded (so corrupt ones are
    found now); audio files are checked from their headers. ``size``/``channels`` (images) or
    ``rate`` (audio) describe the model, to say what will be done to the files."""
    import soundfile as sf

    root = Path(root).expanduser()
    files = scan(root)
    if not files:
        raise DatasetError(f"{root}: the folder is empty; add images (PNG, JPEG, WebP, BMP, TIFF) or audio (WAV, FLAC, OGG)")
    kind = guess_kind(files) if kind == "auto" else kind
    if kind not in ("image", "audio"):
        raise DatasetError(f"unknown data kind {kind!r}: use image or audio")
    suffixes = media.IMAGE_SUFFIXES if kind == "image" else media.AUDIO_SUFFIXES
    usable, skipped = [], []
    formats: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    not_square = resized = converted = resampled = mixed = 0
    seconds = 0.0
    for path in files:
        if path.suffix.lower() not in suffixes:
            skipped.append((path, f"not an {kind} file type Studio reads"))
            continue
        if kind == "image":
            try:
                image = media.load_image(path)
            except media.MediaError as exc:
                skipped.append((path, str(exc).removeprefix(f"{path}: ")))
                continue
            h, w, c = image.shape
            formats[f"{w}x{h} {_MODES[c]}"] += 1
            not_square += h != w
            resized += size is not None and (h, w) != (size, size)
            converted += channels is not None and c != channels
        else:
            try:
                header = sf.info(str(path))
            except (RuntimeError, sf.LibsndfileError, ValueError) as exc:
                skipped.append((path, f"not a readable audio file ({str(exc).splitlines()[0][:120]})"))
                continue
            if header.frames <= 0:
                skipped.append((path, "the audio file holds no samples"))
                continue
            layout = {1: "mono", 2: "stereo"}.get(header.channels, f"{header.channels} channels")
            formats[f"{header.samplerate} Hz {layout}"] += 1
            seconds += header.frames / header.samplerate
            resampled += rate is not None and header.samplerate != rate
            mixed += header.channels != 1
        usable.append(path)
        parts = path.relative_to(root).parts
        if len(parts) > 1:
            classes[parts[0]] += 1
    if not usable:
        raise DatasetError(f"{root}: none of the {len(files)} files is a readable {kind} file")
    plan = []
    if kind == "image":
        if not_square:
            plan.append(f"centre-crop {not_square} non-square images to squares")
        if resized:
            plan.append(f"resize {resized} images to {size}x{size}")
        if converted:
            plan.append(f"convert {converted} images to {_MODES.get(channels, channels)} (transparency over white)")
    else:
        if mixed:
            plan.append(f"mix {mixed} multi-channel files down to mono")
        if resampled:
            plan.append(f"resample {resampled} files to {rate} Hz")
        plan.append("trim leading and trailing silence")
    return FolderSummary(root=root, kind=kind, files=len(files), usable=usable, skipped=skipped,
                         classes=dict(classes), formats=dict(formats), seconds=seconds, plan=plan)


_MODES = {1: "gray", 3: "RGB", 4: "RGBA"}
