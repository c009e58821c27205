"""CT presets are the width/level pairs radiologists quote; a right-drag moves width and level as PACS do."""

from __future__ import annotations

import pytest

from medviewer.io.window import CT_PRESETS, Window, dragged_window, window


def test_ct_presets_are_the_quoted_width_level_pairs():
    # (name, width, level) as the issue lists them
    quoted = [
        ("Soft tissue", 400, 40),
        ("Lung", 1500, -600),
        ("Liver", 150, 90),
        ("Bone", 2500, 480),
        ("Brain", 80, 40),
    ]
    assert [(preset.name, preset.width, preset.center) for preset in CT_PRESETS] == quoted
    assert all(preset.function == "LINEAR" for preset in CT_PRESETS)


def test_a_preset_shows_its_range_from_black_to_white():
    soft_tissue = CT_PRESETS[0]
    # LINEAR (PS3.3 C.11.2.1.2): black at or below c - 0.5 - (w-1)/2 = -160, white above c - 0.5 + (w-1)/2 = 239
    assert window([-160.0, 240.0], soft_tissue.center, soft_tissue.width).tolist() == [0.0, 1.0]


def test_moving_right_widens_and_moving_down_raises_the_level():
    start = Window(center=40, width=400, function="LINEAR", name="Soft tissue")
    # value span 2048 HU: 2048 / 512 = 4 HU per screen pixel
    moved = dragged_window(start, dx_pixels=10, dy_pixels=-5, value_span=2048)
    assert moved == Window(center=20.0, width=440.0, function="LINEAR", name="custom")
    assert dragged_window(start, dx_pixels=-25, dy_pixels=30, value_span=2048) == Window(
        160.0, 300.0, "LINEAR", "custom"
    )


def test_the_same_drag_sweeps_the_same_share_of_an_8_bit_range():
    start = Window(center=127.5, width=255.0, function="LINEAR_EXACT", name="full range")
    moved = dragged_window(start, dx_pixels=512, dy_pixels=256, value_span=255)
    assert moved.width == pytest.approx(510.0)
    assert moved.center == pytest.approx(255.0)
    assert moved.function == "LINEAR_EXACT"


def test_linear_width_never_drops_below_one():
    moved = dragged_window(Window(40, 10), dx_pixels=-1000, dy_pixels=0, value_span=2048)
    assert moved.width == 1.0
    window([0.0, 100.0], moved.center, moved.width, moved.function)  # still a valid DICOM window


@pytest.mark.parametrize("function", ["LINEAR_EXACT", "SIGMOID"])
def test_other_functions_keep_a_tiny_positive_width(function):
    moved = dragged_window(Window(0.5, 0.2, function), dx_pixels=-1000, dy_pixels=0, value_span=1.0)
    assert 0 < moved.width < 1e-3
    window([0.0, 1.0], moved.center, moved.width, moved.function)


def test_a_constant_image_can_still_be_windowed_by_dragging():
    moved = dragged_window(Window(100, 10), dx_pixels=512, dy_pixels=0, value_span=0)
    assert moved.width > 10
