"""Image and audio files in and out, with generation metadata, and one-sentence errors.

Images in memory are uint8 arrays (H, W, C) with C in 1, 3 or 4. Audio is float32 (n, ch).
PNGs carry our JSON in an iTXt ``studio`` chunk and an AUTOMATIC1111-style ``parameters``
text chunk; WAV and FLAC carry the JSON in their comment field.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.plugin import Audio

MAX_PIXELS = 64_000_000  # larger images are refused as likely decompression bombs
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
AUDIO_SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT"}
METADATA_KEY = "studio"


class MediaError(ValueError):
    """A file that cannot be read or written; the message is one sentence naming the file."""


# images ---------------------------------------------------------------------------------------
def load_image(source: Path | str | bytes) -> np.ndarray:
    """Decode the first frame/page with EXIF rotation applied, as uint8 RGB or RGBA."""
    from PIL import Image, ImageOps

    name = "the image" if isinstance(source, bytes) else str(source)
    if not isinstance(source, bytes) and not Path(source).exists():
        raise MediaError(f"{name}: no such file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about broken metadata it skips
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        old_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        try:
            image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
            image.seek(0)
            image.load()
            with contextlib.suppress(Exception):  # broken EXIF: the pixels are good, keep them unrotated
                image = ImageOps.exif_transpose(image)
            return _to_array(image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise MediaError(f"{name}: the image is too large to open safely (over {MAX_PIXELS:,} pixels)") from None
        except Image.UnidentifiedImageError:
            raise MediaError(f"{name}: not an image file Studio can read") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError) as exc:
            raise MediaError(f"{name}: the image is damaged or truncated ({_short(exc)})") from None
        finally:
            Image.MAX_IMAGE_PIXELS = old_limit


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]


def _to_array(image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        data = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or data.max() > 255 else 255.0
        data = np.clip(data / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(data[..., None], 3, axis=2)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    image = image.convert("RGBA" if has_alpha else "RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def to_rgb(image: np.ndarray, background: int = 255) -> np.ndarray:
    """Any (H, W[, C]) uint8 image as (H, W, 3), alpha composited over a plain background."""
    if image.ndim == 2:
        image = image[..., None]
    channels = image.shape[2]
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 4:
        alpha = image[..., 3:4].astype(np.float32) / 255.0
        rgb = image[..., :3].astype(np.float32) * alpha + background * (1.0 - alpha)
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    return image[..., :3]


def to_gray(image: np.ndarray, background: int = 255) -> np.ndarray:
    rgb = to_rgb(image, background).astype(np.float32)
    gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(gray + 0.5, 0, 255).astype(np.uint8)[..., None]


def fit_square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to ``size`` (Lanczos); channels are kept."""
    from PIL import Image

    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[top : top + side, left : left + side]
    squeeze = crop.ndim == 3 and crop.shape[2] == 1
    pil = Image.fromarray(crop[..., 0] if squeeze else crop)
    if side != size:
        pil = pil.resize((size, size), Image.Resampling.LANCZOS)
    out = np.asarray(pil, dtype=np.uint8)
    return out[..., None] if squeeze else out


def grid(images: list[np.ndarray], columns: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile same-sized images into one contact sheet on white."""
    if not images:
        raise ValueError("no images to tile")
    images = [to_rgb(im) for im in images]
    h, w = images[0].shape[:2]
    columns = columns or int(np.ceil(np.sqrt(len(images))))
    rows = int(np.ceil(len(images) / columns))
    sheet = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        sheet[y : y + h, x : x + w] = im[:h, :w]
    return sheet


def a1111_parameters(meta: dict[str, Any]) -> str:
    """An AUTOMATIC1111-style ``parameters`` text, so other tools show our settings."""
    params = dict(meta.get("params", {}))
    prompt = str(params.pop("prompt", "") or "")
    negative = str(params.pop("negative_prompt", "") or "")
    fields = []
    if "steps" in params:
        fields.append(f"Steps: {params.pop('steps')}")
    if "sampler" in params:
        fields.append(f"Sampler: {params.pop('sampler')}")
    if "guidance" in params:
        fields.append(f"CFG scale: {params.pop('guidance')}")
    fields.append(f"Seed: {meta.get('seed')}")
    if meta.get("width"):
        fields.append(f"Size: {meta['width']}x{meta['height']}")
    if meta.get("model_sha256"):
        fields.append(f"Model hash: {str(meta['model_sha256'])[:10]}")
    if meta.get("model_id"):
        fields.append(f"Model: {meta['model_id']}")
    for key, value in params.items():
        if value is not None and not isinstance(value, (list, dict)):
            fields.append(f"{key.replace('_', ' ').capitalize()}: {value}")
    fields.append(f"Version: Studio {meta.get('studio_version', '')}".rstrip())
    lines = [prompt]
    if negative:
        lines.append(f"Negative prompt: {negative}")
    lines.append(", ".join(fields))
    return "\n".join(lines)


def encode_png(image: np.ndarray, meta: dict[str, Any] | None = None) -> bytes:
    from PIL import Image, PngImagePlugin

    array = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
    info = PngImagePlugin.PngInfo()
    if meta:
        info.add_itxt(METADATA_KEY, json.dumps(meta, sort_keys=True, default=str))
        info.add_text("parameters", a1111_parameters(meta))
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", pnginfo=info, compress_level=4)
    return buffer.getvalue()


def save_image(path: Path, image: np.ndarray, meta: dict[str, Any] | None = None) -> Path:
    """PNG keeps the metadata; other formats (by suffix) keep the pixels only."""
    from studio.core.checkpoints import atomic_write_bytes

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in ("", ".png"):
        data = encode_png(image, meta)
        path = path.with_suffix(".png")
    elif suffix in IMAGE_SUFFIXES:
        from PIL import Image

        buffer = io.BytesIO()
        rgb = to_rgb(image) if suffix in (".jpg", ".jpeg", ".bmp") else image
        Image.fromarray(rgb[..., 0] if rgb.shape[2] == 1 else rgb).save(buffer, format=_PIL_FORMATS[suffix])
        data = buffer.getvalue()
    else:
        raise MediaError(f"{path}: cannot write images as {suffix!r} (use .png, .jpg, .webp, .bmp or .tif)")
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise MediaError(f"{path}: cannot write the file ({exc.strerror or exc})") from None
    return path


_PIL_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
    ".tif": "TIFF", ".tiff": "TIFF", ".gif": "GIF",
}


def read_metadata(path: Path) -> dict[str, Any] | None:
    """Our generation metadata embedded in a PNG, WAV or FLAC; None when there is none."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.suffix.lower() in AUDIO_SUFFIXES:
        import soundfile as sf

        try:
            with sf.SoundFile(str(path)) as fh:
                text = fh.comment
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise MediaError(f"{path}: not a readable audio file ({_short(exc)})") from None
    else:
        from PIL import Image

        try:
            with Image.open(path) as image:
                text = image.info.get(METADATA_KEY)
        except (OSError, SyntaxError, ValueError) as exc:
            raise MediaError(f"{path}: not a readable image ({_short(exc)})") from None
    if not text:
        return None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError:
        return None
    return meta if isinstance(meta, dict) else None


# audio ----------------------------------------------------------------------------------------
def load_audio(path: Path | str) -> Audio:
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, ValueError) as exc:
        raise MediaError(f"{path}: not a readable audio file ({_short(exc)})") from None
    if samples.size == 0:
        raise MediaError(f"{path}: the audio file holds no samples")
    if path.suffix.lower() == ".wav":  # libsndfile reads a cut-short WAV silently; it logs the gap
        log = sf.info(str(path)).extra_info
        if any(line.startswith("data") and "should be" in line for line in log.splitlines()):
            raise MediaError(f"{path}: the WAV file is truncated (its header promises more audio than the file holds)")
    return Audio(np.ascontiguousarray(samples), int(rate))


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Band-limited polyphase resampling along axis 0."""
    if rate == target:
        return samples
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    return resample_poly(samples, target // g, rate // g, axis=0).astype(np.float32)


def to_mono(samples: np.ndarray) -> np.ndarray:
    return samples.mean(axis=1, keepdims=True) if samples.ndim == 2 else samples[:, None]


def save_audio(
    path: Path, audio: Audio, subtype: str = "16", rate: int | None = None, meta: dict[str, Any] | None = None
) -> Path:
    """WAV (16, 24, float) or FLAC (16, 24), optionally resampled, with metadata as a comment."""
    import soundfile as sf

    from studio.core.checkpoints import atomic_write_bytes

    path = Path(path)
    suffix = path.suffix.lower() or ".wav"
    path = path.with_suffix(suffix)
    if suffix not in (".wav", ".flac"):
        raise MediaError(f"{path}: audio exports as .wav or .flac, not {suffix!r}")
    if subtype not in AUDIO_SUBTYPES:
        raise MediaError(f"{path}: sample format must be 16, 24 or float, not {subtype!r}")
    if suffix == ".flac" and subtype == "float":
        raise MediaError(f"{path}: FLAC stores 16 or 24 bit integers; choose WAV for float")
    samples = audio.samples if audio.samples.ndim == 2 else audio.samples[:, None]
    out_rate = rate or audio.rate
    samples = np.clip(resample(samples, audio.rate, out_rate), -1.0, 1.0)
    buffer = io.BytesIO()
    with sf.SoundFile(
        buffer, "w", samplerate=out_rate, channels=samples.shape[1],
        subtype=AUDIO_SUBTYPES[subtype], format=suffix[1:].upper(),
    ) as fh:
        if meta:
            fh.comment = json.dumps(meta, sort_keys=True, default=str)
        fh.write(samples)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        raise MediaError(f"{path}: cannot write the file ({exc.strerror or exc})") from None
    return path
