"""uint8 numpy images <-> QImage, for the image canvas."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

_FORMATS = {
    1: QImage.Format.Format_Grayscale8,
    3: QImage.Format.Format_RGB888,
    4: QImage.Format.Format_RGBA8888,
}
DISPLAY_FORMAT = QImage.Format.Format_ARGB32_Premultiplied  # the raster engine's fastest to draw


def as_image_array(image: np.ndarray) -> np.ndarray:
    """A read-only (H, W, C) uint8 copy, C in 1/3/4; a one-sentence ValueError otherwise."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in _FORMATS:
        raise ValueError(f"the canvas shows uint8 (H, W, C) images with C in 1, 3 or 4, not {array.dtype} {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"the image is empty ({array.shape[1]} x {array.shape[0]} pixels)")
    array = np.array(array, dtype=np.uint8, order="C", copy=True)
    array.flags.writeable = False
    return array


def qimage_from_array(image: np.ndarray) -> QImage:
    """A self-owned QImage in the display format (the numpy buffer is not referenced)."""
    height, width, channels = image.shape
    data = np.ascontiguousarray(image)
    view = QImage(data.data, width, height, width * channels, _FORMATS[channels])
    return view.convertToFormat(DISPLAY_FORMAT)


def array_from_qimage(image: QImage) -> np.ndarray:
    """(H, W, 3) RGB, or (H, W, 4) RGBA when the QImage has an alpha channel."""
    channels = 4 if image.hasAlphaChannel() else 3
    image = image.convertToFormat(QImage.Format.Format_RGBA8888 if channels == 4 else QImage.Format.Format_RGB888)
    height, width = image.height(), image.width()
    rows = np.frombuffer(image.constBits(), np.uint8, count=image.sizeInBytes()).reshape(height, image.bytesPerLine())
    return rows[:, : width * channels].reshape(height, width, channels).copy()


def alpha_from_qimage(image: QImage) -> np.ndarray:
    """The alpha channel as (H, W) uint8."""
    alpha = image.convertToFormat(QImage.Format.Format_Alpha8)
    height, width = alpha.height(), alpha.width()
    rows = np.frombuffer(alpha.constBits(), np.uint8, count=alpha.sizeInBytes()).reshape(height, alpha.bytesPerLine())
    return rows[:, :width].copy()
