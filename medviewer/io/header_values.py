"""Numeric DICOM header fields checked where the loader reads them: each value is used, called unknown, or refused.

A damaged or hand-made header can put anything in any element: 0, -3, 2**40, 'abc', NaN, raw bytes of a
mistaken VR, several values where one belongs. Fields without which the pixels cannot be decoded or given
their units (size, bits, samples, sign, rescale) are refused with `InvalidHeaderError`, which names the
field, the value and why; fields that only add information (spacing, orientation, position, thickness)
become unknown instead, with a note the user sees, because a missing scale bar misleads nobody while a
scale bar from a spacing of 0 would.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from medviewer.errors import InvalidHeaderError, describe_value

_MISSING = object()

# The largest float32: modality values are float32, so a rescale that overflows it is refused.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def is_multiple(value: object) -> bool:
    """A multi-valued element's value: a list, tuple or pydicom MultiValue."""
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"


def _absent(value: object) -> bool:
    return value is None or value == "" or (is_multiple(value) and len(value) == 0)


def as_number(value: object) -> float | None:
    """One number from what pydicom or the fast scanner gives (int, float, their DICOM subclasses, a numeric
    string); None for anything else: bytes from a wrong VR, text, a sequence."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _one_number(path, keyword: str, value: object) -> tuple[float, object]:
    """The number a single-valued field holds, and the value it came from (for the message), or
    InvalidHeaderError when there are several values or the one is not a number."""
    if is_multiple(value):
        if len(value) != 1:
            raise InvalidHeaderError(path, keyword, value, "expected one value")
        value = value[0]
    number = as_number(value)
    if number is None:
        raise InvalidHeaderError(path, keyword, value, "not a number")
    return number, value


def whole_number(
    path,
    elements: Mapping[str, object],
    keyword: str,
    low: int,
    high: int,
    default: object = _MISSING,
    allowed: tuple[int, ...] | None = None,
) -> int:
    """A required (or defaulted) single whole number within [low, high] (and in `allowed` if given)."""
    value = elements.get(keyword)
    if _absent(value):
        if default is _MISSING:
            raise InvalidHeaderError(path, keyword, None, "an image needs it")
        return default  # type: ignore[return-value]
    number, value = _one_number(path, keyword, value)
    if not math.isfinite(number) or number != int(number):
        raise InvalidHeaderError(path, keyword, value, "not a whole number")
    whole = int(number)
    if allowed is not None and whole not in allowed:
        raise InvalidHeaderError(path, keyword, value, f"must be one of {', '.join(map(str, allowed))}")
    if not low <= whole <= high:
        raise InvalidHeaderError(path, keyword, value, f"must be {low}..{high}")
    return whole


def optional_whole_number(elements: Mapping[str, object], keyword: str) -> int | None:
    """A whole number that only orders or labels things (InstanceNumber, SeriesNumber): None when unusable."""
    value = elements.get(keyword)
    if is_multiple(value):
        value = value[0] if len(value) == 1 else None
    number = as_number(value)
    if number is None or not math.isfinite(number) or number != int(number) or abs(number) >= 2**31:
        return None
    return int(number)


def real_numbers(elements: Mapping[str, object], keyword: str) -> list[float | None]:
    """Every value of a multi-valued number field; a value that is not a number becomes None."""
    value = elements.get(keyword)
    if _absent(value):
        return []
    parts = list(value) if is_multiple(value) else [value]
    return [as_number(part) for part in parts]


def geometry_vector(
    elements: Mapping[str, object], keyword: str, count: int, notes: list[str], positive: bool = False
) -> tuple[float, ...] | None:
    """`count` finite numbers (all above 0 with `positive`), or None: absent, or present but unusable, which
    adds a note saying it was ignored, so that info and the window can say why there is no scale bar."""
    value = elements.get(keyword)
    if _absent(value):
        return None
    numbers = real_numbers(elements, keyword)
    problem = ""
    if len(numbers) != count:
        problem = f"expected {count} values, got {len(numbers)}"
    elif any(number is None or not math.isfinite(number) for number in numbers):
        problem = "not finite numbers"
    elif positive and any(number <= 0 for number in numbers):
        problem = "a spacing must be above 0 (0 means unknown)"
    if problem:
        notes.append(f"{keyword} {describe_value(value)} ignored: {problem}")
        return None
    return tuple(float(number) for number in numbers)  # type: ignore[arg-type]


def positive_number(elements: Mapping[str, object], keyword: str, notes: list[str]) -> float | None:
    """One finite number above 0 (SliceThickness), or None with a note when present but unusable."""
    vector = geometry_vector(elements, keyword, 1, notes, positive=True)
    return vector[0] if vector else None


def rescale(path, elements: Mapping[str, object], bits_stored: int, signed: bool) -> tuple[float | None, float | None]:
    """(slope, intercept) of the Modality LUT module, checked so that every stored value maps to a finite
    float32: a NaN, infinite or zero slope would give every pixel the wrong value in HU, silently."""
    found = {}
    for keyword in ("RescaleSlope", "RescaleIntercept"):
        value = elements.get(keyword)
        if _absent(value):
            found[keyword] = None
            continue
        number, value = _one_number(path, keyword, value)
        if not math.isfinite(number):
            raise InvalidHeaderError(path, keyword, value, "not a finite number")
        found[keyword] = number
    slope, intercept = found["RescaleSlope"], found["RescaleIntercept"]
    if slope is not None and slope == 0:
        raise InvalidHeaderError(path, "RescaleSlope", elements.get("RescaleSlope"), "a slope of 0 erases the image")
    largest_stored = 2.0 ** (bits_stored - 1 if signed else bits_stored)
    reach = abs(slope or 1.0) * largest_stored
    if reach + abs(intercept or 0.0) > _FLOAT32_MAX:
        # Name the field that takes the values out of range.
        keyword = "RescaleIntercept" if abs(intercept or 0.0) >= reach else "RescaleSlope"
        raise InvalidHeaderError(path, keyword, elements.get(keyword), "stored values would overflow float32 in units")
    return slope, intercept
