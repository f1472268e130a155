"""Latent-space helpers shared by every family and the explorer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


def lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (1.0 - t) * a + t * b


def slerp(a: np.ndarray, b: np.ndarray, t: float, eps: float = 1e-7) -> np.ndarray:
    """Spherical interpolation over flattened vectors; falls back to lerp when nearly parallel."""
    fa, fb = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    na, nb = np.linalg.norm(fa), np.linalg.norm(fb)
    if na < eps or nb < eps:
        return lerp(a, b, t)
    cos = np.clip(fa @ fb / (na * nb), -1.0, 1.0)
    omega = np.arccos(cos)
    if np.sin(omega) < eps:
        return lerp(a, b, t)
    out = (np.sin((1.0 - t) * omega) * fa + np.sin(t * omega) * fb) / np.sin(omega)
    return out.reshape(a.shape).astype(a.dtype)


def path(points: list[np.ndarray], steps: int, mode: str = "slerp") -> list[np.ndarray]:
    """``steps`` points evenly spaced along a chain of two or more latents, ends included."""
    if len(points) < 2:
        raise ValueError("a path needs at least two points")
    if steps < 2:
        raise ValueError("a path needs at least two steps")
    blend = slerp if mode == "slerp" else lerp
    segments = len(points) - 1
    out = []
    for position in np.linspace(0.0, segments, steps):
        index = min(int(position), segments - 1)
        out.append(blend(points[index], points[index + 1], float(position - index)))
    return out


def pca(points: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, the top-k principal directions (k, d) and the projected points (n, k)."""
    mean = points.mean(axis=0)
    centred = points - mean
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    directions = vt[:k]
    return mean, directions, centred @ directions.T


@runtime_checkable
class LatentModel(Protocol):
    """What a loaded model offers to be explored: any family whose loader returns one of these
    appears in the latent explorer. Images are uint8 (H, W, C); latents are float32 (n, d)."""

    latent_dim: int

    def encode_images(self, images: list[np.ndarray]) -> np.ndarray: ...

    def decode_latents(self, latents: np.ndarray) -> list[np.ndarray]: ...


# The explorer's maths and files: map projections, slider bases, variations, exports. -----------
PROJECTION_NEIGHBOURS = 8  # how many map points a non-linear projection blends
TSNE_EXACT_UP_TO = 200  # points; exact t-SNE is quicker than Barnes-Hut below this


def available_projections() -> list[str]:
    """PCA always; t-SNE with scikit-learn, UMAP with umap-learn installed."""
    import importlib.util

    methods = ["PCA"]
    if importlib.util.find_spec("sklearn") is not None:
        methods.append("t-SNE")
    if importlib.util.find_spec("umap") is not None:
        methods.append("UMAP")
    return methods


def blend_neighbours(queries: np.ndarray, keys: np.ndarray, values: np.ndarray, k: int = PROJECTION_NEIGHBOURS) -> np.ndarray:
    """Inverse-square-distance blend of the ``values`` of the ``k`` nearest ``keys`` per query row."""
    queries = np.atleast_2d(queries).astype(np.float64)
    keys = np.asarray(keys, dtype=np.float64)
    k = min(k, len(keys))
    # |q - k|^2 expanded, so wide latents never build an (m, n, d) array
    distances = (queries**2).sum(1)[:, None] - 2.0 * queries @ keys.T + (keys**2).sum(1)[None, :]  # (m, n)
    distances = np.maximum(distances, 0.0)
    nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]  # (m, k)
    weights = 1.0 / (np.take_along_axis(distances, nearest, axis=1) + 1e-12)
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("mk,mkd->md", weights, values[nearest])


def top_principal(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like ``pca``, but wide latents (flows: thousands of dimensions) use a randomized SVD,
    so the map of 5,000 such points takes a second rather than a minute."""
    if min(points.shape) <= 512:
        return pca(points, k)
    try:
        from sklearn.utils.extmath import randomized_svd
    except ImportError:  # scikit-learn is optional: the exact SVD is just slower
        return pca(points, k)

    mean = points.mean(axis=0)
    centred = points - mean
    _, _, vt = randomized_svd(centred, k, random_state=0)
    return mean, vt, centred @ vt.T


@dataclass
class MapProjection:
    """Latents (n, d) laid out in 2D, with a way back: PCA inverts exactly through its plane,
    t-SNE/UMAP blend the latents of the nearest map points."""

    method: str
    latents: np.ndarray  # (n, d)
    coords: np.ndarray  # (n, 2)
    mean: np.ndarray  # (d,)
    directions: np.ndarray  # (2, d), the PCA plane (used by the linear method only)

    @property
    def linear(self) -> bool:
        return self.method == "PCA"

    def to_map(self, latents: np.ndarray) -> np.ndarray:
        """(m, d) latents -> (m, 2) map positions."""
        latents = np.atleast_2d(latents).astype(np.float64)
        if self.linear:
            return (latents - self.mean) @ self.directions.T
        return blend_neighbours(latents, self.latents, self.coords)

    def to_latent(self, position: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        """A map position (2,) -> a latent (d,). With ``base`` (PCA only) the latent keeps the
        base's components outside the map plane and moves only within it."""
        position = np.asarray(position, dtype=np.float64).reshape(1, 2)
        if not self.linear:
            return blend_neighbours(position, self.coords, self.latents)[0].astype(np.float32)
        origin = self.mean if base is None else np.asarray(base, np.float64) - self.to_map(base)[0] @ self.directions
        return (origin + position[0] @ self.directions).astype(np.float32)


def fit_projection(latents: np.ndarray, method: str = "PCA", seed: int = 0) -> MapProjection:
    """Lay out (n, d) latents in 2D by PCA, t-SNE or UMAP."""
    latents = np.asarray(latents, dtype=np.float64)
    if latents.ndim != 2 or len(latents) < 3:
        raise ValueError("a map needs at least three encoded points")
    if not np.isfinite(latents).all():
        raise ValueError("the model encoded some images to NaN or infinite latents, so they cannot be mapped")
    mean, directions, coords = top_principal(latents, 2)
    if directions.shape[0] < 2:  # a one-dimensional latent: the map's y axis stays flat
        directions = np.vstack([directions, np.zeros_like(directions)])
        coords = np.hstack([coords, np.zeros_like(coords)])
    if method == "t-SNE":
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        perplexity = float(min(30.0, (len(latents) - 1) / 3.0))
        exact = len(latents) <= TSNE_EXACT_UP_TO
        # One thread: OpenMP's spinning threads stall on a busy 2-core machine and starve the UI.
        with threadpool_limits(1):
            coords = TSNE(2, perplexity=perplexity, init="pca", random_state=seed,
                          method="exact" if exact else "barnes_hut").fit_transform(latents)
    elif method == "UMAP":
        import umap

        coords = umap.UMAP(n_components=2, random_state=seed).fit_transform(latents)
    elif method != "PCA":
        raise ValueError(f"unknown projection {method!r}: use one of {', '.join(available_projections())}")
    return MapProjection(method, latents, np.asarray(coords, np.float64), mean, directions)


def principal_basis(latents: np.ndarray | None, dim: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (d,), up to k unit directions (k, d) and their standard deviations (k,) for sliders.
    Without enough points: the prior's axes (origin, the first k dimensions, unit spread)."""
    if latents is None or len(latents) <= 2:
        k = min(k, dim)
        return np.zeros(dim), np.eye(dim)[:k], np.ones(k)
    latents = np.asarray(latents, dtype=np.float64)
    k = min(k, dim, len(latents) - 1)
    mean, directions, projected = top_principal(latents, k)
    return mean, directions, np.maximum(projected.std(axis=0), 1e-6)


def variations(center: np.ndarray, count: int, spread: float, seed: int, scales: np.ndarray | None = None) -> np.ndarray:
    """``count`` seeded neighbours (count, d) of ``center``; per-dimension ``scales`` shape the noise."""
    center = np.asarray(center, dtype=np.float32).ravel()
    noise = np.random.default_rng(seed).standard_normal((count, center.size)).astype(np.float32)
    if scales is not None:
        noise *= np.asarray(scales, np.float32)
    return center + spread * noise


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so exported pixel art stays crisp."""
    return image if factor <= 1 else image.repeat(factor, axis=0).repeat(factor, axis=1)


def export_frames(
    folder: Path, images: list[np.ndarray], latents: np.ndarray, model_id: str, scale: int = 1, meta: dict | None = None
) -> list[Path]:
    """One PNG per frame, each carrying its latent, the model id and ``meta`` (e.g. the path's anchors)."""
    from studio.core import media

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    digits = max(4, len(str(len(images))))
    return [
        media.save_image(
            folder / f"frame_{i:0{digits}d}.png",
            upscale(image, scale),
            {**(meta or {}), "latent": np.asarray(latent, float).tolist(), "model_id": model_id, "frame": i,
             "frames": len(images)},
        )
        for i, (image, latent) in enumerate(zip(images, latents))
    ]


def export_animation(
    path: Path, images: list[np.ndarray], latents: np.ndarray, model_id: str, fps: float = 12.0, scale: int = 1,
    meta: dict | None = None,
) -> Path:
    """A looping GIF (``.gif``) or APNG (``.png``/``.apng``) holding every frame's latent."""
    import io
    import json

    from PIL import PngImagePlugin

    from studio.core import media
    from studio.core.checkpoints import atomic_write_bytes

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".png", ".apng"):
        raise media.MediaError(f"{path}: animations export as .gif, .png or .apng, not {suffix!r}")
    frames = [_pil_frame(upscale(image, scale), suffix == ".gif") for image in images]
    meta = {**(meta or {}), "latents": np.asarray(latents, float).tolist(), "model_id": model_id}
    options: dict = {"save_all": True, "append_images": frames[1:], "duration": round(1000.0 / fps), "loop": 0}
    if suffix == ".gif":
        options.update(format="GIF", comment=json.dumps(meta), disposal=1)
    else:
        info = PngImagePlugin.PngInfo()
        info.add_itxt(media.METADATA_KEY, json.dumps(meta))
        options.update(format="PNG", pnginfo=info)
    buffer = io.BytesIO()
    frames[0].save(buffer, **options)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        raise media.MediaError(f"{path}: cannot write the file ({exc.strerror or exc})") from None
    return path


def _pil_frame(image: np.ndarray, for_gif: bool):
    from PIL import Image

    from studio.core import media

    if image.shape[2] == 1:
        return Image.fromarray(image[..., 0], "L")
    return Image.fromarray(media.to_rgb(image) if for_gif else image)


def export_contact_sheet(
    path: Path, images: list[np.ndarray], latents: np.ndarray, model_id: str, columns: int | None = None, scale: int = 1,
    meta: dict | None = None,
) -> Path:
    """All frames tiled on one PNG that records every latent, in order."""
    from studio.core import media

    sheet = media.grid([upscale(image, scale) for image in images], columns)
    meta = {**(meta or {}), "latents": np.asarray(latents, float).tolist(), "model_id": model_id, "columns": columns}
    return media.save_image(Path(path).with_suffix(".png"), sheet, meta)


@dataclass
class ExportedLatents:
    """What an explorer export recorded, so it can be reopened."""

    latents: np.ndarray  # (n, d): every frame's latent, in order
    model_id: str | None
    anchors: np.ndarray | None  # (m, d): the points the path ran through, where recorded
    mode: str | None  # slerp or lerp, where recorded


def path_meta(anchors: list[np.ndarray], mode: str) -> dict:
    """Metadata that lets a path export be reopened as the same path."""
    return {"anchors": np.asarray(anchors, float).tolist(), "mode": mode}


def read_export_latents(path: Path) -> ExportedLatents | None:
    """The latents an explorer export recorded (PNG frame, contact sheet, APNG or GIF); None
    when the file holds none."""
    import json

    from PIL import Image

    from studio.core import media

    path = Path(path)
    meta = media.read_metadata(path)
    if meta is None and path.suffix.lower() == ".gif":
        with Image.open(path) as image:
            comment = image.info.get("comment", b"")
        try:
            meta = json.loads(comment.decode("utf-8") if isinstance(comment, bytes) else comment)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
    if not isinstance(meta, dict):
        return None
    try:
        latents = np.asarray(meta["latents"] if "latents" in meta else [meta["latent"]], dtype=np.float32)
        anchors = np.asarray(meta["anchors"], dtype=np.float32) if "anchors" in meta else None
    except (KeyError, TypeError, ValueError):
        return None
    if latents.ndim != 2 or latents.size == 0:
        return None
    if anchors is not None and (anchors.ndim != 2 or anchors.shape[1] != latents.shape[1]):
        anchors = None
    mode = meta.get("mode") if meta.get("mode") in ("slerp", "lerp") else None
    return ExportedLatents(latents, meta.get("model_id"), anchors, mode)


def _thumbnail(image: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    if max(image.shape[:2]) <= side:
        return image
    pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
    pil.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = np.asarray(pil, dtype=np.uint8)
    return out[..., None] if out.ndim == 2 else out


@dataclass
class EncodedFolder:
    latents: np.ndarray  # (n, d)
    labels: list[str]  # the first folder level under the root, else the root's name
    thumbnails: list[np.ndarray]  # uint8 (h, w, c), at most ``thumbnail_side`` pixels a side
    bits_per_dim: np.ndarray | None  # (n,) where the model scores images
    skipped: int


def encode_folder(model: LatentModel, root: Path, limit: int = 5000, batch: int = 128, thumbnail_side: int = 64):
    """A generator: yields (done, total, phase) while it reads, encodes and (when the model can)
    scores a folder of images, then returns an EncodedFolder. Folders larger than ``limit`` are
    sampled evenly so every class keeps its share."""
    from studio.core import media
    from studio.core.datasets import DatasetError, scan

    root = Path(root).expanduser()
    files = [p for p in scan(root) if p.suffix.lower() in media.IMAGE_SUFFIXES]
    if not files:
        raise DatasetError(f"{root}: no images in this folder (PNG, JPEG, WebP, BMP, TIFF)")
    if len(files) > limit:
        files = [files[i] for i in np.linspace(0, len(files) - 1, limit).astype(int)]
    scores = callable(getattr(model, "bits_per_dim_images", None))
    total = len(files) * (3 if scores else 2)
    images, labels, skipped = [], [], 0
    for i, file in enumerate(files):
        try:
            images.append(media.load_image(file))
        except media.MediaError:
            skipped += 1
            continue
        parts = file.relative_to(root).parts
        labels.append(parts[0] if len(parts) > 1 else root.name)
        if i % 64 == 0:
            yield i, total, "Reading images"
    if not images:
        raise DatasetError(f"{root}: none of the {len(files)} files could be read as an image")
    latents = []
    for start in range(0, len(images), batch):
        yield len(files) + start, total, "Encoding"
        latents.append(np.asarray(model.encode_images(images[start : start + batch]), dtype=np.float32))
    bits = None
    if scores:
        parts_bits = []
        for start in range(0, len(images), batch):
            yield 2 * len(files) + start, total, "Scoring bits/dim"
            parts_bits.append(np.asarray(model.bits_per_dim_images(images[start : start + batch]), dtype=np.float64))
        bits = np.concatenate(parts_bits)
    thumbnails = [_thumbnail(image, thumbnail_side) for image in images]
    return EncodedFolder(np.concatenate(latents), labels, thumbnails, bits, skipped)


def score_images(model: LatentModel, images: list[np.ndarray], batch: int = 128):
    """A generator: yields (done, total, phase) and returns bits/dim (n,) of the images."""
    out = []
    for start in range(0, len(images), batch):
        yield start, len(images), "Scoring bits/dim"
        out.append(np.asarray(model.bits_per_dim_images(images[start : start + batch]), dtype=np.float64))
    return np.concatenate(out)


def decode_in_batches(model: LatentModel, latents: np.ndarray, batch: int = 128) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for start in range(0, len(latents), batch):
        out.extend(model.decode_latents(np.asarray(latents[start : start + batch], dtype=np.float32)))
    return out


def sample_prior(model: LatentModel, count: int, seed: int = 0, batch: int = 128, thumbnail_side: int = 64):
    """A generator: yields (done, total, phase) while it decodes ``count`` seeded draws from the
    prior N(0, I), then returns their latents (count, d) and thumbnails, ready to map."""
    if count < 1:
        raise ValueError(f"sample at least one point, not {count}")
    latents = np.random.default_rng(seed).standard_normal((count, model.latent_dim)).astype(np.float32)
    thumbnails: list[np.ndarray] = []
    for start in range(0, count, batch):
        yield start, count, "Decoding samples"
        images = decode_in_batches(model, latents[start : start + batch], batch)
        thumbnails.extend(_thumbnail(image, thumbnail_side) for image in images)
    return latents, thumbnails


def model_basis(model: LatentModel) -> tuple[list[str], tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
    """A model's own named slider directions, from its optional ``latent_basis()`` (names, mean (d,),
    unit directions (k, d), scales (k,)); None when it has none."""
    latent_basis = getattr(model, "latent_basis", None)
    if not callable(latent_basis):
        return None
    names, mean, directions, scales = latent_basis()
    if not len(names):
        return None
    return [str(name) for name in names], (np.asarray(mean, np.float64), np.asarray(directions, np.float64),
                                           np.asarray(scales, np.float64))


def attribute_direction(
    model: LatentModel, with_folder: Path, without_folder: Path, prepare: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """mean(encode(with)) - mean(encode(without)): the latent step that adds an attribute."""
    from studio.core.datasets import load_image_folder

    means = []
    for folder in (with_folder, without_folder):
        data = load_image_folder(folder, prepare)
        means.append(model.encode_images(list(data.images)).mean(0))
    return means[0] - means[1]
