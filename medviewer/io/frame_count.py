"""How many frames a DICOM file's pixel data really holds, reconciled with the NumberOfFrames it claims.

NumberOfFrames is only a claim: writers put 0 in it, a negative number, or the count of a series the file
was cut from. Trusting it allocates frames that do not exist and fails (or crashes) on the first one past
the data. The data tells the truth: native pixel data holds length / bytes-per-frame frames; encapsulated
pixel data holds one frame per Basic (or Extended) Offset Table entry, or, without a table, at most one per
fragment. A file is loaded with the frames its data holds, and says so when that differs from its claim.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.encaps import parse_basic_offsets, parse_fragments
from pydicom.tag import Tag

from medviewer.errors import InvalidHeaderError, UnreadableFileError, describe_value
from medviewer.io.header_values import as_number, is_multiple

_PIXEL_TAGS = {
    "PixelData": Tag(0x7FE0, 0x0010),
    "FloatPixelData": Tag(0x7FE0, 0x0008),
    "DoubleFloatPixelData": Tag(0x7FE0, 0x0009),
}
_UNDEFINED_LENGTH = 0xFFFFFFFF


@dataclass(frozen=True)
class FrameCount:
    """The frames to load and, when the header's claim was wrong, the note that says so."""

    frames: int
    note: str = ""


def claimed_frames(value: object) -> int | None:
    """NumberOfFrames as the header gives it: absent means 1; None when present but not a count of 1 or more."""
    if value is None or value == "":
        return 1
    if is_multiple(value):
        if len(value) != 1:
            return None
        value = value[0]
    number = as_number(value)
    if number is None or not math.isfinite(number) or number != int(number) or number < 1:
        return None
    return int(number)


def bits_per_frame(rows: int, columns: int, samples: int, bits_allocated: int, photometric: str) -> int:
    """Bits one native frame occupies. YBR_FULL_422 stores two samples per pixel, not three (PS3.3 C.7.6.3.1.2);
    1-bit frames are packed back to back, not padded to whole bytes (PS3.5 8.1.1)."""
    samples_stored = 2 if photometric == "YBR_FULL_422" and samples == 3 else samples
    return rows * columns * samples_stored * bits_allocated


def count_frames(
    path: Path,
    dataset: Dataset,
    claimed_value: object,
    frame_bits: int,
    encapsulated: bool,
) -> FrameCount:
    """The frames this file can give, from its pixel data; raises when the data cannot hold even one.

    `dataset` must come from `dcmread(..., defer_size=...)`: a deferred pixel data element is measured, not read."""
    claimed = claimed_frames(claimed_value)
    keyword = next((name for name in _PIXEL_TAGS if name in dataset), None)
    if keyword is None:
        raise UnreadableFileError(path, "no pixel data")
    element = dataset.get_item(_PIXEL_TAGS[keyword], keep_deferred=True)
    value = element.value
    length = len(value) if value is not None else int(getattr(element, "length", 0) or 0)
    if encapsulated and keyword == "PixelData":
        if claimed == 1:
            return FrameCount(1)  # every fragment belongs to the one frame; the decoder checks the rest
        held = _encapsulated_frames(path, dataset, element)
    else:
        if length == _UNDEFINED_LENGTH:
            raise UnreadableFileError(path, "native pixel data of undefined length")
        held = length * 8 // frame_bits if frame_bits > 0 else 0
        if held == 0:
            raise UnreadableFileError(
                path, f"truncated: pixel data holds {length} bytes, one frame needs {math.ceil(frame_bits / 8)}"
            )
    if claimed is None:
        if held < 1:
            raise InvalidHeaderError(path, "NumberOfFrames", claimed_value, "and the pixel data holds no frame")
        return FrameCount(
            held,
            f"NumberOfFrames {describe_value(claimed_value)} is not a count of frames; "
            f"the pixel data holds {_frames(held)}, all shown",
        )
    if claimed > held:
        return FrameCount(
            held, f"NumberOfFrames says {claimed} but the pixel data holds {_frames(held)}; showing {held}"
        )
    return FrameCount(claimed)


def _encapsulated_frames(path: Path, dataset: Dataset, element) -> int:
    """One frame per offset-table entry; without a table, at most one frame per fragment."""
    extended = dataset.get("ExtendedOffsetTable")
    if extended:
        return len(extended) // 8
    try:
        if element.value is not None:
            return _count_in(io.BytesIO(element.value))
        with open(path, "rb") as handle:
            handle.seek(element.value_tell)
            return _count_in(handle)
    except (ValueError, OSError, EOFError) as error:
        raise UnreadableFileError(path, f"encapsulated pixel data is damaged ({error})") from None


def _count_in(stream) -> int:
    offsets = parse_basic_offsets(stream)
    if offsets:
        return len(offsets)
    fragments, _ = parse_fragments(stream)
    return fragments


def _frames(count: int) -> str:
    return f"{count} frame{'s' if count != 1 else ''}"
