"""Labelled grids of grey images for README.md's figures, written atomically as 8-bit PNGs.

Pillow draws the labels (it is already installed for scikit-image; matplotlib is not a dependency and a figure
of tiles with a caption needs nothing more).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from medviewer.io.atomic import write_atomically

_LABEL_HEIGHT = 18
_GAP = 4


def _tile(image: np.ndarray, size: int, nearest: bool) -> Image.Image:
    """An image in [0, 1] as an 8-bit tile of `size` pixels on its long side, centred on black."""
    grey = Image.fromarray(np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8))
    scale = size / max(grey.size)
    resized = grey.resize(
        (max(1, round(grey.width * scale)), max(1, round(grey.height * scale))),
        Image.Resampling.NEAREST if nearest else Image.Resampling.LANCZOS,
    )
    tile = Image.new("L", (size, size), 0)
    tile.paste(resized, ((size - resized.width) // 2, (size - resized.height) // 2))
    return tile


def labelled_grid(
    rows: Sequence[Sequence[np.ndarray]],
    column_titles: Sequence[str],
    row_titles: Sequence[str] = (),
    tile: int = 192,
    nearest: bool = False,
) -> np.ndarray:
    """Rows of images (each in [0, 1]) as one 8-bit grid with a title over each column and, optionally, a
    caption under each row's first tile. `nearest` keeps pixels square when crops are enlarged, so that
    sharpness is judged on the pixels a method produced, not on the figure's resampling."""
    columns = max(len(row) for row in rows)
    if len(column_titles) != columns:
        raise ValueError(f"{columns} columns but {len(column_titles)} titles")
    captioned = bool(row_titles)
    row_height = tile + (_LABEL_HEIGHT if captioned else 0) + _GAP
    canvas = Image.new("L", (columns * (tile + _GAP) + _GAP, _LABEL_HEIGHT + len(rows) * row_height + _GAP), 255)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=13)
    for column, title in enumerate(column_titles):
        draw.text((_GAP + column * (tile + _GAP) + 2, 2), title, fill=0, font=font)
    for index, row in enumerate(rows):
        top = _LABEL_HEIGHT + index * row_height
        for column, image in enumerate(row):
            canvas.paste(_tile(np.asarray(image, np.float32), tile, nearest), (_GAP + column * (tile + _GAP), top))
        if captioned:
            draw.text((_GAP + 2, top + tile + 1), row_titles[index], fill=0, font=font)
    return np.asarray(canvas)


def save_png(path: Path, pixels: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, lambda temporary: Image.fromarray(pixels).save(temporary, format="PNG"))
