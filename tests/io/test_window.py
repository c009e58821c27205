"""Window/level equals DICOM's formulas as pydicom implements them; properties hold for any input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydicom.dataset import Dataset
from pydicom.pixels import apply_windowing

from medviewer.io.window import Window, apply_window, auto_window, to_display_integers, window


def _pydicom_window_01(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """pydicom's apply_windowing on unsigned 16-bit data maps onto [0, 65535]; rescale it to [0, 1]."""
    dataset = Dataset()
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsStored = 16
    dataset.PixelRepresentation = 0
    dataset.WindowCenter = center
    dataset.WindowWidth = width
    dataset.VOILUTFunction = function
    with np.errstate(over="ignore"):  # pydicom's sigmoid overflows exp() far from the center, harmlessly
        return apply_windowing(values.astype(np.float64), dataset) / 65535.0


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize("center,width", [(40, 400), (-600, 1500), (480, 2500), (1000.5, 1), (0, 2), (30000, 12)])
def test_window_equals_pydicom(function, center, width):
    values = np.linspace(-3000, 33000, 5001)
    if function != "LINEAR" and width <= 1:
        width = 1.5
    ours = window(values, center, width, function)
    np.testing.assert_allclose(ours, _pydicom_window_01(values, center, width, function), atol=1e-6)


@given(
    values=arrays(np.float64, st.integers(1, 50), elements=st.floats(-5000, 5000)),
    center=st.floats(-2000, 2000),
    width=st.floats(1, 5000),
    function=st.sampled_from(["LINEAR", "LINEAR_EXACT", "SIGMOID"]),
)
def test_window_is_monotone_and_bounded(values, center, width, function):
    brightness = window(np.sort(values), center, width, function)
    assert brightness.dtype == np.float32
    assert np.all((brightness >= 0) & (brightness <= 1))
    assert np.all(np.diff(brightness) >= 0)


def test_monochrome1_inverts_display_only():
    values = np.array([-1000.0, 0.0, 1000.0])
    chosen = Window(0, 2000)
    np.testing.assert_allclose(apply_window(values, chosen, invert=True), 1 - apply_window(values, chosen))


def test_auto_window_spans_the_percentiles():
    values = np.concatenate([np.linspace(-100, 100, 100_000), [1e9, -1e9]])  # two outliers are ignored
    chosen = auto_window(values)
    low, high = np.percentile(values, [0.1, 99.9])
    assert chosen.center == pytest.approx((low + high) / 2)
    assert chosen.width == pytest.approx(high - low)


def test_auto_window_of_a_flat_image_is_valid():
    chosen = auto_window(np.full((4, 4), 7.0))
    assert chosen.width > 0
    assert np.all(np.isfinite(apply_window(np.full((4, 4), 7.0), chosen)))


@given(arrays(np.float64, st.integers(1, 30), elements=st.floats(0, 1)), st.sampled_from([8, 16]))
def test_display_integers_round_to_nearest(brightness, bits):
    integers = to_display_integers(brightness, bits)
    top = (1 << bits) - 1
    assert np.all(np.abs(integers.astype(np.float64) - brightness * top) <= 0.5 + 1e-9)
