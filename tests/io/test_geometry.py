"""Orientation letters follow DICOM's LPS patient axes; scale bars are hand-computed round lengths."""

from __future__ import annotations

import math

import pytest

from medviewer.io.geometry import EdgeLabels, ScaleBar, edge_labels, scale_bar


def test_axial():
    assert edge_labels((1, 0, 0, 0, 1, 0)) == EdgeLabels(left="R", right="L", top="A", bottom="P")


def test_coronal():
    assert edge_labels((1, 0, 0, 0, 0, -1)) == EdgeLabels(left="R", right="L", top="H", bottom="F")


def test_sagittal():
    assert edge_labels((0, 1, 0, 0, 0, -1)) == EdgeLabels(left="A", right="P", top="H", bottom="F")


def test_oblique_names_the_secondary_direction_after_the_main_one():
    # Rows turned 30 degrees from patient Left towards Posterior: (cos 30, sin 30, 0) = (0.87, 0.5, 0).
    # Columns mostly Feet with a 0.1 tilt towards Anterior: below the 0.25 threshold, so plain F.
    column = (0.0, -0.1, -math.sqrt(1 - 0.01))
    labels = edge_labels((math.cos(math.radians(30)), math.sin(math.radians(30)), 0.0, *column))
    assert labels == EdgeLabels(left="RA", right="LP", top="H", bottom="F")


def test_oblique_with_three_significant_components_orders_them_by_size():
    # (-0.8, 0.36, 0.48): mostly Right, then Head (0.48), then Posterior (0.36)
    labels = edge_labels((-0.8, 0.36, 0.48, 0.6, 0.48, 0.64))
    assert labels.right == "RHP" and labels.left == "LFA"


def test_unnormalised_cosines_are_normalised_first():
    assert edge_labels((2, 0, 0, 0, 0, -3)) == edge_labels((1, 0, 0, 0, 0, -1))


@pytest.mark.parametrize(
    "orientation", [None, (), (1, 0, 0, 0, 1), (1, 0, 0, 0, 1, 0, 0), (0, 0, 0, 0, 1, 0), (1, 0, float("nan"), 0, 1, 0)]
)
def test_missing_or_malformed_orientation_gives_no_labels(orientation):
    assert edge_labels(orientation) is None


def test_scale_bar_picks_the_longest_round_length_that_fits():
    # 0.7 mm columns at 1:1 zoom, 150 screen pixels: up to 105 mm -> 100 mm = 10 cm, 100 / 0.7 pixels
    bar = scale_bar((0.5, 0.7), image_pixels_per_screen_pixel=1.0, max_screen_pixels=150)
    assert bar.length_mm == 100.0 and bar.label == "10 cm"
    assert bar.length_pixels == pytest.approx(142.857142857, rel=1e-9)


def test_scale_bar_follows_zoom_in_screen_pixels():
    # zoomed in 4x: one screen pixel is 0.25 image pixels = 0.2 mm; 150 pixels hold 30 mm -> 20 mm in 100 pixels
    bar = scale_bar((0.8, 0.8), image_pixels_per_screen_pixel=0.25, max_screen_pixels=150)
    assert bar == ScaleBar(length_mm=20.0, length_pixels=pytest.approx(100.0), label="2 cm")
    # zoomed out 2x: 1.6 mm per screen pixel; 150 pixels hold 240 mm -> 200 mm in 125 pixels
    bar = scale_bar((0.8, 0.8), image_pixels_per_screen_pixel=2.0, max_screen_pixels=150)
    assert (bar.length_mm, bar.label) == (200.0, "20 cm") and bar.length_pixels == pytest.approx(125.0)


def test_scale_bar_uses_the_column_spacing():
    # rows 5 mm apart, columns 0.1 mm: 100 pixels hold 10 mm -> exactly 10 mm fits
    bar = scale_bar((5.0, 0.1), image_pixels_per_screen_pixel=1.0, max_screen_pixels=100)
    assert (bar.length_mm, bar.label) == (10.0, "10 mm") and bar.length_pixels == pytest.approx(100.0)


def test_scale_bar_below_a_millimetre():
    # 0.01 mm columns (microscopy-like), 80 pixels hold 0.8 mm -> 0.5 mm in 50 pixels
    bar = scale_bar((0.01, 0.01), image_pixels_per_screen_pixel=1.0, max_screen_pixels=80)
    assert bar == ScaleBar(length_mm=0.5, length_pixels=pytest.approx(50.0), label="0.5 mm")


@pytest.mark.parametrize(
    "spacing,zoom,room", [(None, 1.0, 100), ((0.5, 0.0), 1.0, 100), ((0.5, 0.5), 0.0, 100), ((0.5, 0.5), 1.0, 0)]
)
def test_no_scale_bar_without_usable_numbers(spacing, zoom, room):
    assert scale_bar(spacing, zoom, room) is None
