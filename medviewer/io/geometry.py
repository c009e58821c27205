"""What the viewer draws over an image to place it in the patient: orientation letters and a scale bar."""

from __future__ import annotations

import math
from dataclasses import dataclass

# A secondary direction is named only when it is this large: a few degrees of tilt are not worth a letter,
# a 15-degree oblique (component sin 15 = 0.26) is.
SECONDARY_COMPONENT = 0.25
# DICOM's patient coordinates (LPS): the letter for the positive and the negative direction of each axis.
_AXIS_LETTERS = (("L", "R"), ("P", "A"), ("H", "F"))
# Nice scale-bar lengths are these mantissas times a power of ten (in mm), largest first.
_NICE_MANTISSAS = (5.0, 2.0, 1.0)
# Lengths from this many mm upwards read better in cm ("2 cm", "5 cm"); below, in mm ("10 mm", "0.5 mm").
_CENTIMETRES_FROM_MM = 20.0


@dataclass(frozen=True)
class EdgeLabels:
    """The patient direction each edge of the displayed image faces, e.g. left "R", top "A" for axial."""

    left: str
    right: str
    top: str
    bottom: str


def edge_labels(orientation: tuple[float, ...] | None) -> EdgeLabels | None:
    """Orientation letters from DICOM ImageOrientationPatient (row cosines, then column cosines; LPS).

    Columns increase to the right, so the right edge faces where the row vector points; rows increase
    downwards, so the bottom edge faces where the column vector points; left and top are the opposites.
    Letters are L/R for x, P/A for y and H/F for z. An oblique vector is named by its components in order
    of size, the secondary ones only above `SECONDARY_COMPONENT` (e.g. "LP"), as DICOM viewers do. None
    when the orientation is missing or malformed (not six finite numbers, or a zero vector).
    """
    if orientation is None:
        return None
    try:
        cosines = [float(value) for value in orientation]
    except (TypeError, ValueError):
        return None
    if len(cosines) != 6 or not all(math.isfinite(value) for value in cosines):
        return None
    row, column = _unit(cosines[:3]), _unit(cosines[3:])
    if row is None or column is None:
        return None
    return EdgeLabels(
        left=_direction_letters([-value for value in row]),
        right=_direction_letters(row),
        top=_direction_letters([-value for value in column]),
        bottom=_direction_letters(column),
    )


def _unit(vector: list[float]) -> list[float] | None:
    length = math.sqrt(sum(value * value for value in vector))
    return None if length < 1e-6 else [value / length for value in vector]


def _direction_letters(vector: list[float]) -> str:
    """The letters of a unit vector's significant components, largest first."""
    by_size = sorted(range(3), key=lambda axis: abs(vector[axis]), reverse=True)
    letters = []
    for rank, axis in enumerate(by_size):
        component = vector[axis]
        if rank > 0 and abs(component) <= SECONDARY_COMPONENT:
            break
        positive, negative = _AXIS_LETTERS[axis]
        letters.append(positive if component > 0 else negative)
    return "".join(letters)


@dataclass(frozen=True)
class ScaleBar:
    """A horizontal bar of a round length in mm and how long it is on screen."""

    length_mm: float
    length_pixels: float  # in screen pixels
    label: str  # e.g. "5 cm", "10 mm", "0.5 mm"


def scale_bar(
    pixel_spacing_mm: tuple[float, float] | None, image_pixels_per_screen_pixel: float, max_screen_pixels: float
) -> ScaleBar | None:
    """The longest 1, 2 or 5 x 10^k mm bar that fits in `max_screen_pixels` screen pixels.

    `pixel_spacing_mm` is DICOM PixelSpacing (row spacing, column spacing); the bar is horizontal, so the
    column spacing (the distance between neighbouring columns) sets its length. `image_pixels_per_screen_pixel`
    is the zoom as image pixels under one screen pixel (2 when zoomed out to half size). None without
    spacing or when the numbers cannot give a bar.
    """
    if pixel_spacing_mm is None or len(pixel_spacing_mm) != 2:
        return None
    column_spacing = float(pixel_spacing_mm[1])
    zoom, room = float(image_pixels_per_screen_pixel), float(max_screen_pixels)
    if not all(math.isfinite(value) and value > 0 for value in (column_spacing, zoom, room)):
        return None
    mm_per_screen_pixel = column_spacing * zoom
    longest_mm = room * mm_per_screen_pixel
    # A hair of tolerance so that a bar exactly as long as the room (e.g. 50 mm in 50 mm) is not lost to rounding.
    allowed_mm = longest_mm * (1.0 + 1e-9)
    power = math.floor(math.log10(longest_mm))
    for exponent in (power + 1, power):  # log10 can land just below an exact power of ten
        for mantissa in _NICE_MANTISSAS:
            # Dividing for negative powers keeps 0.5 exactly 0.5 (5 * 10**-1 is 0.5000000000000001).
            length_mm = mantissa * 10.0**exponent if exponent >= 0 else mantissa / 10.0**-exponent
            if length_mm <= allowed_mm:
                return ScaleBar(length_mm, length_mm / mm_per_screen_pixel, _length_label(length_mm))
    return None  # unreachable: 1 x 10^power is never longer than longest_mm


def _length_label(length_mm: float) -> str:
    if length_mm >= _CENTIMETRES_FROM_MM:
        return f"{_round_number(length_mm / 10.0)} cm"
    return f"{_round_number(length_mm)} mm"


def _round_number(value: float) -> str:
    """A nice length without float noise: 0.5 not 0.5000000001, 20 not 20.0."""
    return f"{float(f'{value:.6g}'):g}"
