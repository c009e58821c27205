"""Window/level: mapping values in real units (HU ...) to display brightness in [0, 1].

Why not pydicom's `apply_windowing`: it maps onto the stored bit depth's range, which depends on Bits
Stored and on whether a modality LUT was applied; a viewer needs [0, 1] for any source (DICOM, PNG,
enhanced output). The formulas are DICOM PS3.3 C.11.2.1.2 and C.11.2.1.3, and the tests check that
we equal `apply_windowing` rescaled to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AUTO_PERCENTILES = (0.1, 99.9)


@dataclass(frozen=True)
class Window:
    """A VOI window in the values' own units (HU for CT), as DICOM's Window Center/Width define it."""

    center: float
    width: float
    function: str = "LINEAR"  # LINEAR, LINEAR_EXACT or SIGMOID (PS3.3 C.11.2.1.3)
    name: str = ""


def window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Display brightness in [0, 1] (float32) for `values` under a DICOM window; NaN is shown as 0."""
    values = np.asarray(values, dtype=np.float64)
    function = function.upper()
    if function == "SIGMOID":
        if width <= 0:
            raise ValueError("window width must be > 0")
        with np.errstate(over="ignore"):  # exp overflows to inf far below the center: brightness 0, as intended
            out = 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    elif function == "LINEAR_EXACT":
        if width <= 0:
            raise ValueError("window width must be > 0")
        out = np.clip((values - center) / width + 0.5, 0.0, 1.0)
    else:
        if width < 1:
            raise ValueError("window width must be >= 1 for a LINEAR window")
        if width == 1:  # PS3.3: a width of 1 is a threshold at the center
            out = (values > center - 0.5).astype(np.float64)
        else:
            out = np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
    # NaN (a missing measurement in a float image) is shown black; +/-infinity already clip to 1 and 0.
    return np.nan_to_num(out, nan=0.0).astype(np.float32)


def apply_window(values: np.ndarray, chosen: Window, invert: bool = False) -> np.ndarray:
    """`window` for a Window record; `invert` for MONOCHROME1, where low values are shown bright."""
    brightness = window(values, chosen.center, chosen.width, chosen.function)
    return 1.0 - brightness if invert else brightness


def auto_window(values: np.ndarray, percentiles: tuple[float, float] = AUTO_PERCENTILES) -> Window:
    """A window spanning the given percentiles of the finite values, robust to a few outliers."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return Window(0.5, 1.0, "LINEAR_EXACT", "auto")
    low, high = np.percentile(finite, percentiles)
    if high <= low:
        low, high = float(finite.min()), float(finite.max())
    if high <= low:
        high = low + 1.0
    return Window((low + high) / 2.0, high - low, "LINEAR_EXACT", "auto")


def to_display_integers(brightness: np.ndarray, bits: int = 8) -> np.ndarray:
    """Brightness in [0, 1] as 8- or 16-bit integers for PNG/TIFF, rounded to nearest."""
    if bits not in (8, 16):
        raise ValueError("bits must be 8 or 16")
    top = (1 << bits) - 1
    return np.rint(np.clip(brightness, 0.0, 1.0) * top).astype(np.uint8 if bits == 8 else np.uint16)


# The usual CT presets (width/level as radiologists quote them: soft tissue 400/40, lung 1500/-600, liver
# 150/90, bone 2500/480, brain 80/40), in HU.
CT_PRESETS: tuple[Window, ...] = (
    Window(center=40, width=400, function="LINEAR", name="Soft tissue"),
    Window(center=-600, width=1500, function="LINEAR", name="Lung"),
    Window(center=90, width=150, function="LINEAR", name="Liver"),
    Window(center=480, width=2500, function="LINEAR", name="Bone"),
    Window(center=40, width=80, function="LINEAR", name="Brain"),
)

# One screen pixel of drag moves the width or center by this fraction of the image's value span, so a
# drag across a 512-pixel view sweeps the whole range, for HU and 8-bit grey alike.
DRAG_PIXELS_PER_SPAN = 512.0
# LINEAR_EXACT and SIGMOID only need a width above 0; keep it a small fraction of the span, not 0.
_SMALLEST_NONLINEAR_WIDTH_FRACTION = 1e-6


def dragged_window(start: Window, dx_pixels: float, dy_pixels: float, value_span: float) -> Window:
    """The window after a right-button drag of (dx, dy) screen pixels from where it was `start`.

    The convention of most PACS: horizontal is width, vertical is level. Moving right (dx > 0) widens the
    window (less contrast), moving down (dy > 0, screen y grows downwards) raises the center (darker
    image). Each screen pixel changes width or center by `value_span / 512`, where `value_span` is the
    image's max - min; the width never drops below 1 for LINEAR (DICOM's minimum) or a tiny positive
    number for the other functions. The function is kept; the name becomes "custom".
    """
    span = float(value_span)
    if not np.isfinite(span) or span <= 0:  # a constant image: still let the drag do something
        span = 1.0
    step = span / DRAG_PIXELS_PER_SPAN
    width = float(start.width) + float(dx_pixels) * step
    center = float(start.center) + float(dy_pixels) * step
    smallest = 1.0 if start.function.upper() == "LINEAR" else span * _SMALLEST_NONLINEAR_WIDTH_FRACTION
    return Window(center=center, width=max(width, smallest), function=start.function, name="custom")
