"""Side-by-side comparison figures as PNG: panels with titles above, metrics below, white on black."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from medviewer.errors import OutputError
from medviewer.io.atomic import write_atomically
from medviewer.io.export import refuse_overwriting_inputs

# Text grows with the panels so a figure of 1024-pixel images stays readable when shrunk into a page.
MIN_FONT_SIZE = 16
PANEL_HEIGHT_PER_FONT_PIXEL = 24
TEXT_COLOUR = (255, 255, 255)


@dataclass(frozen=True)
class FigurePanel:
    """One image of the figure: display brightness in [0, 1], (H, W) grey or (H, W, 3) colour."""

    title: str
    brightness: np.ndarray


@dataclass(frozen=True)
class FigureLayout:
    """Where everything goes, in figure pixels; every distance follows from the font size."""

    font_size: int
    margin: int  # around the figure, and between panels
    line_height: int
    panel_height: int
    panel_widths: tuple[int, ...]
    caption_lines: int

    @property
    def panel_top(self) -> int:
        return self.margin + self.line_height  # below the title line

    def panel_left(self, index: int) -> int:
        return self.margin + sum(self.panel_widths[:index]) + index * self.margin

    @property
    def caption_top(self) -> int:
        return self.panel_top + self.panel_height + self.margin // 2

    @property
    def height(self) -> int:
        return self.caption_top + self.caption_lines * self.line_height + self.margin

    @property
    def panels_width(self) -> int:
        return self.panel_left(len(self.panel_widths))  # the gap after the last panel is the right margin


def figure_layout(panel_height: int, panel_widths: Sequence[int], caption_lines: int) -> FigureLayout:
    """The layout for panels already scaled to `panel_height`: font size max(16, height / 24), a margin
    of half the font size, lines 1.25 font sizes apart."""
    font_size = max(MIN_FONT_SIZE, panel_height // PANEL_HEIGHT_PER_FONT_PIXEL)
    return FigureLayout(
        font_size=font_size,
        margin=font_size // 2,
        line_height=math.ceil(font_size * 1.25),
        panel_height=int(panel_height),
        panel_widths=tuple(int(width) for width in panel_widths),
        caption_lines=int(caption_lines),
    )


def write_comparison_figure(
    panels: Sequence[FigurePanel],
    caption_lines: Sequence[str],
    destination: Path,
    protected: Iterable[Path] = (),
) -> Path:
    """Write the panels side by side, each title above its panel and the caption lines below, as a PNG.

    Panels of different heights (a x2 super-resolution output beside its input) are scaled to the tallest:
    by whole factors with nearest neighbour, which shows the pixels the model was given, otherwise bicubic.
    Written atomically, never over one of the `protected` inputs.
    """
    destination = Path(destination)
    if destination.suffix.lower() != ".png":
        raise OutputError(f"{destination}: a comparison figure is written as PNG; use a name ending in .png")
    if not panels:
        raise OutputError(f"{destination}: a comparison figure needs at least one panel")
    refuse_overwriting_inputs(destination, protected)
    height = max(np.asarray(panel.brightness).shape[0] for panel in panels)
    images = [_panel_image(panel.brightness, height) for panel in panels]
    layout = figure_layout(height, [image.width for image in images], len(caption_lines))
    font = _font(layout.font_size)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    caption_width = max((measure.textlength(line, font=font) for line in caption_lines), default=0)
    width = max(layout.panels_width, 2 * layout.margin + math.ceil(caption_width))
    figure = Image.new("RGB", (width, layout.height), (0, 0, 0))
    draw = ImageDraw.Draw(figure)
    for index, (panel, image) in enumerate(zip(panels, images, strict=True)):
        left = layout.panel_left(index)
        figure.paste(image, (left, layout.panel_top))
        title = _fitted(draw, panel.title, font, image.width)
        title_left = left + (image.width - draw.textlength(title, font=font)) / 2
        draw.text((title_left, layout.margin), title, fill=TEXT_COLOUR, font=font)
    for number, line in enumerate(caption_lines):
        draw.text((layout.margin, layout.caption_top + number * layout.line_height), line, fill=TEXT_COLOUR, font=font)
    return write_atomically(destination, lambda path: figure.save(path, format="PNG"))


def _panel_image(brightness: np.ndarray, height: int) -> Image.Image:
    """8-bit RGB at `height` rows, rounded to nearest as the PNG export rounds."""
    values = np.nan_to_num(np.asarray(brightness, dtype=np.float64), nan=0.0)
    if values.ndim == 3 and values.shape[-1] in (3, 4):
        values = values[..., :3]
    elif values.ndim == 2:
        values = np.repeat(values[..., None], 3, axis=-1)
    else:
        raise OutputError(f"cannot draw an image of shape {values.shape} in a figure: expected (H, W) or (H, W, 3)")
    image = Image.fromarray(np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8))
    if image.height == height:
        return image
    factor = height / image.height
    width = max(1, round(image.width * factor))
    whole = factor == int(factor)
    return image.resize((width, height), Image.Resampling.NEAREST if whole else Image.Resampling.BICUBIC)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _fitted(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """`text`, shortened with '...' so that it does not run into the next panel's title."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "..." if text else ""
