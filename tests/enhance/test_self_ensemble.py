"""Geometric self-ensemble: the copies are the dihedral transforms the docstring names, each mapped back
exactly (checked against hand-built transforms of shift operators, which are not rotation-equivariant),
and an equivariant operator is left unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from medviewer.enhance.self_ensemble import ENSEMBLE_SIZES, check_ensemble_size, run_self_ensemble
from medviewer.errors import MedViewerError


def images(count=2, height=7, width=5, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, height, width)).astype(np.float32)


def shift_right(stack: np.ndarray) -> np.ndarray:
    """Moves content one column right: on a transposed copy that is one row down once mapped back."""
    return np.roll(stack, 1, axis=2)


def test_one_copy_is_the_single_pass():
    stack = images()
    assert np.array_equal(run_self_ensemble(lambda copy, i, n: shift_right(copy), stack, 1), shift_right(stack))


def test_two_copies_average_the_image_and_its_transpose():
    stack = images()
    expected = (np.roll(stack, 1, axis=2) + np.roll(stack, 1, axis=1)) / 2  # the transposed copy shifts rows
    result = run_self_ensemble(lambda copy, i, n: shift_right(copy), stack, 2)
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-6)


def test_eight_copies_average_the_shift_over_all_four_directions():
    stack = images(height=6, width=9)
    expected = (
        np.roll(stack, 1, axis=2) + np.roll(stack, -1, axis=2) + np.roll(stack, 1, axis=1) + np.roll(stack, -1, axis=1)
    ) / 4  # each direction is reached by two of the eight transforms
    result = run_self_ensemble(lambda copy, i, n: shift_right(copy), stack, 8)
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-6)
    assert result.shape == stack.shape and result.dtype == np.float32


def test_four_copies_are_a_group_closed_under_transpose():
    """x4 = {identity, transpose, 180 degrees, anti-transpose}: shifts right, down, left and up once each."""
    stack = images(height=8, width=8)
    four = run_self_ensemble(lambda copy, i, n: shift_right(copy), stack, 4)
    eight = run_self_ensemble(lambda copy, i, n: shift_right(copy), stack, 8)
    np.testing.assert_allclose(four, eight, rtol=0, atol=1e-6)
    transposed = run_self_ensemble(lambda copy, i, n: shift_right(copy), stack.transpose(0, 2, 1), 4)
    np.testing.assert_allclose(transposed.transpose(0, 2, 1), four, rtol=0, atol=1e-6)


@pytest.mark.parametrize("size", ENSEMBLE_SIZES)
def test_an_equivariant_upscaler_is_unchanged_and_sizes_follow_the_scale(size):
    """Pixel replication x2 commutes with every rotation and flip, so every size gives the same image."""
    stack = images(height=5, width=3)

    def upscale(copy, index, total):
        assert copy.flags.c_contiguous and total == size and 0 <= index < size
        return np.repeat(np.repeat(copy, 2, axis=1), 2, axis=2)

    result = run_self_ensemble(upscale, stack, size)
    np.testing.assert_allclose(result, upscale(stack, 0, size), rtol=0, atol=1e-6)


def test_the_runner_may_return_its_own_buffer():
    """A runner that reuses one output buffer must not corrupt the running sum."""
    buffer = np.zeros((1, 4, 4), np.float32)
    stack = images(count=1, height=4, width=4)

    def reusing(copy, index, total):
        buffer[...] = shift_right(copy)
        return buffer

    expected = run_self_ensemble(lambda copy, i, n: shift_right(copy), stack, 8)
    np.testing.assert_allclose(run_self_ensemble(reusing, stack, 8), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("size", [0, 3, 16, -1, True, 2.0, "2", None])
def test_other_sizes_are_refused_in_one_line(size):
    with pytest.raises(MedViewerError, match="must be one of 1, 2, 4, 8"):
        check_ensemble_size(size)
