"""Tile plans: every pixel covered, weights summing to one, enough context, windows on the network's grid."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medviewer.enhance.tiling import plan_axis


def test_small_axis_is_one_pass():
    plan = plan_axis(100, core=256, halo=10, overlap=16)
    assert plan.read_length == 100
    assert len(plan.tiles) == 1 and plan.tiles[0].core_start == 0 and plan.tiles[0].core_stop == 100
    assert np.all(plan.tiles[0].weights == 1)


def test_length_must_fit_the_multiple():
    with pytest.raises(ValueError):
        plan_axis(100, core=32, halo=4, overlap=4, multiple=8)


@settings(max_examples=300, deadline=None)
@given(
    length_units=st.integers(1, 300),
    core=st.integers(8, 200),
    halo=st.integers(0, 40),
    overlap=st.integers(0, 32),
    multiple=st.sampled_from([1, 2, 4, 8, 16]),
)
def test_plans_cover_blend_and_keep_context(length_units, core, halo, overlap, multiple):
    length = length_units * multiple
    core = max(core, multiple + 2 * min(overlap, core // 2))
    plan = plan_axis(length, core=core, halo=halo, overlap=overlap, multiple=multiple)
    total = np.zeros(length)
    for tile in plan.tiles:
        assert tile.read_start % multiple == 0
        assert 0 <= tile.read_start and tile.read_start + plan.read_length <= length
        assert tile.read_start <= tile.core_start < tile.core_stop <= tile.read_start + plan.read_length
        # context: halo pixels on each side, unless the window reaches the image edge there
        assert tile.read_start == 0 or tile.core_start - tile.read_start >= halo
        assert (
            tile.read_start + plan.read_length == length or tile.read_start + plan.read_length - tile.core_stop >= halo
        )
        assert len(tile.weights) == tile.core_stop - tile.core_start
        assert np.all(tile.weights >= 0)
        total[tile.core_start : tile.core_stop] += tile.weights
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    assert plan.read_length % multiple == 0


def test_weights_ramp_across_overlaps():
    plan = plan_axis(1000, core=200, halo=8, overlap=32)
    first, second = plan.tiles[0], plan.tiles[1]
    shared = first.core_stop - second.core_start
    assert shared >= 30
    fade_out = first.weights[-shared:]
    fade_in = second.weights[:shared]
    assert np.all(np.diff(fade_out) < 0) and np.all(np.diff(fade_in) > 0)
    np.testing.assert_allclose(fade_out + fade_in, 1.0, atol=1e-6)
