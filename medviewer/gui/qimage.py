"""Display brightness (numpy, [0, 1]) as Qt images and thumbnails, rounded exactly as exports are."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap

from medviewer.io.window import to_display_integers

_FORMATS = {1: QImage.Format.Format_Grayscale8, 3: QImage.Format.Format_RGB888, 4: QImage.Format.Format_RGBA8888}


def brightness_to_qimage(brightness: np.ndarray) -> QImage:
    """An 8-bit QImage of H x W (grey) or H x W x 3 (RGB) brightness in [0, 1].

    The QImage owns a copy of the pixels: a QImage built on a numpy buffer would read freed memory once
    the array is collected, which crashes far from the cause.
    """
    levels = np.ascontiguousarray(to_display_integers(np.asarray(brightness)))
    channels = 1 if levels.ndim == 2 else (levels.shape[2] if levels.ndim == 3 else 0)
    if channels not in _FORMATS:
        raise ValueError(f"expected brightness of shape (rows, columns) or (rows, columns, 3), got {levels.shape}")
    rows, columns = levels.shape[:2]
    image = QImage(levels.data, columns, rows, columns * channels, _FORMATS[channels])
    return image.copy()


def thumbnail_pixmap(brightness: np.ndarray, size: int = 96) -> QPixmap:
    """A pixmap at most `size` pixels on its longer side, aspect ratio kept, smoothly scaled."""
    pixmap = QPixmap.fromImage(brightness_to_qimage(brightness))
    return pixmap.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
