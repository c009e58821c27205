"""Comparison figures: panels copied pixel for pixel at their place, titles above, caption below, PNG only."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medviewer.errors import OutputError
from medviewer.io.figure import MIN_FONT_SIZE, FigurePanel, write_comparison_figure


def _gradient(height: int, width: int) -> np.ndarray:
    rows, columns = np.mgrid[0:height, 0:width]
    return ((rows * 7 + columns * 3) % 256 / 255.0).astype(np.float32)


# Small panels use the smallest font, 16 px: a margin of 8 and lines 20 px apart (ceil(16 * 1.25)).
MARGIN, LINE = MIN_FONT_SIZE // 2, 20
PANEL_TOP = MARGIN + LINE  # below the title line


def test_panels_are_copied_unchanged_side_by_side(tmp_path):
    grey = _gradient(60, 70)
    colour = np.stack([_gradient(60, 50), 1.0 - _gradient(60, 50), np.full((60, 50), 0.5)], axis=-1)
    path = write_comparison_figure(
        [FigurePanel("Input", grey), FigurePanel("Enhanced", colour)], ["a"], tmp_path / "figure.png"
    )
    figure = np.asarray(Image.open(path))
    # width: margin, 70, margin, 50, margin; height: title line, 60 rows, half a margin, one caption line, margin
    assert figure.shape == (PANEL_TOP + 60 + MARGIN // 2 + LINE + MARGIN, MARGIN + 70 + MARGIN + 50 + MARGIN, 3)
    expected_grey = np.rint(grey * 255).astype(np.uint8)
    for channel in range(3):
        np.testing.assert_array_equal(figure[PANEL_TOP : PANEL_TOP + 60, MARGIN : MARGIN + 70, channel], expected_grey)
    second = MARGIN + 70 + MARGIN
    np.testing.assert_array_equal(
        figure[PANEL_TOP : PANEL_TOP + 60, second : second + 50], np.rint(colour * 255).astype(np.uint8)
    )
    # titles are drawn in the band above each panel, captions below; the gap between panels stays black
    assert figure[MARGIN:PANEL_TOP, MARGIN : MARGIN + 70].max() > 0
    assert figure[MARGIN:PANEL_TOP, second : second + 50].max() > 0
    assert figure[PANEL_TOP + 60 :, :].max() > 0
    assert figure[PANEL_TOP : PANEL_TOP + 60, MARGIN + 70 : second].max() == 0


def test_a_long_caption_widens_the_figure(tmp_path):
    caption = "PSNR 31.42 dB (input 28.10 dB), SSIM 0.912 (input 0.803), noise 12.1 -> 4.3 HU"
    path = write_comparison_figure([FigurePanel("A", _gradient(40, 40))], [caption, "second"], tmp_path / "wide.png")
    with Image.open(path) as image:
        # ~80 characters at 16 px are far wider than one 40-pixel panel
        assert image.width > 300 and image.height == PANEL_TOP + 40 + MARGIN // 2 + 2 * LINE + MARGIN


def test_smaller_panels_are_scaled_to_the_tallest(tmp_path):
    low_resolution = _gradient(30, 40)
    path = write_comparison_figure(
        [FigurePanel("Input", low_resolution), FigurePanel("SR x2", _gradient(60, 80))], [], tmp_path / "sr.png"
    )
    figure = np.asarray(Image.open(path))
    assert figure.shape == (PANEL_TOP + 60 + MARGIN // 2 + MARGIN, MARGIN + 80 + MARGIN + 80 + MARGIN, 3)
    # a whole factor: nearest neighbour, each input pixel becomes a 2x2 block
    upscaled = np.repeat(np.repeat(np.rint(low_resolution * 255).astype(np.uint8), 2, 0), 2, 1)
    np.testing.assert_array_equal(figure[PANEL_TOP : PANEL_TOP + 60, MARGIN : MARGIN + 80, 0], upscaled)


def test_only_png_and_never_over_an_input(tmp_path):
    panel = [FigurePanel("A", _gradient(20, 20))]
    with pytest.raises(OutputError, match="ending in .png") as raised:
        write_comparison_figure(panel, [], tmp_path / "figure.jpg")
    assert "\n" not in str(raised.value)
    source = tmp_path / "source.png"
    source.write_bytes(b"original")
    with pytest.raises(OutputError, match="refusing to overwrite"):
        write_comparison_figure(panel, [], source, protected=[source])
    assert source.read_bytes() == b"original"
    with pytest.raises(OutputError, match="at least one panel"):
        write_comparison_figure([], [], tmp_path / "empty.png")
