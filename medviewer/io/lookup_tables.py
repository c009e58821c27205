"""Lookup tables in a DICOM header (palette colour, Modality LUT, VOI LUT): descriptors checked when the
header is read, and palette data handed to pydicom's `apply_color_lut` in the form it can read.

Two departures from giving pydicom the dataset as is, both for palette colour (PS3.3 C.7.6.3.1.5-6):

- Byte order. `apply_color_lut` reads non-segmented LUT Data with `np.frombuffer` in the machine's byte
  order, so a big-endian file's 16-bit entries come out byte-swapped (0xFF00 read as 0x00FF: an all-black
  picture). pydicom's Modality and VOI LUT functions, and its segmented palettes, do look at the transfer
  syntax, so only non-segmented palette data is rewritten, as little-endian 16-bit words.
- 8-bit entries in a 16-bit table. Some modalities write the descriptor's bits as 16 while every entry is
  at most 255. Taken at their word, the colours would be divided by 256 on the way to 8-bit RGB; like
  established viewers (dcmtk's and GDCM's palette handling), we read such a table as 8-bit entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from medviewer.errors import InvalidHeaderError
from medviewer.io.header_values import as_number, is_multiple

_CHANNELS = ("Red", "Green", "Blue")
_BIG_ENDIAN = "1.2.840.10008.1.2.2"


@dataclass(frozen=True)
class Palette:
    """A palette colour table ready for `apply_color_lut`, and the bits its entries really use (8 or 16)."""

    dataset: Dataset
    bits: int


def check_descriptor(
    path: Path, keyword: str, descriptor: object, allowed_bits: tuple[int, ...]
) -> tuple[int, int, int]:
    """(entries, first mapped value, bits) of a LUT Descriptor (PS3.3 C.11.1.1.1: 0 entries means 65536)."""
    values = list(descriptor) if is_multiple(descriptor) else []
    numbers = [as_number(value) for value in values]
    if len(numbers) != 3 or any(number is None or number != int(number) for number in numbers):
        raise InvalidHeaderError(path, keyword, descriptor, "a LUT descriptor is three whole numbers")
    entries, first, bits = (int(number) for number in numbers)  # type: ignore[arg-type]
    if not 0 <= entries <= 65535:
        raise InvalidHeaderError(path, keyword, descriptor, "the number of entries must be 0..65535")
    if bits not in allowed_bits:
        raise InvalidHeaderError(
            path, keyword, descriptor, f"entries must have {' or '.join(map(str, allowed_bits))} bits"
        )
    return entries or 65536, first, bits


def palette(path: Path, dataset: Dataset, transfer_syntax_uid: str) -> Palette:
    """The file's palette, checked; raises InvalidHeaderError naming the descriptor or data at fault."""
    descriptors = []
    for channel in _CHANNELS:
        keyword = f"{channel}PaletteColorLookupTableDescriptor"
        descriptors.append(check_descriptor(path, keyword, dataset.get(keyword), (8, 16)))
    if len({entries for entries, _, _ in descriptors}) != 1 or len({bits for _, _, bits in descriptors}) != 1:
        raise InvalidHeaderError(
            path, "RedPaletteColorLookupTableDescriptor", [d[0] for d in descriptors], "the three channels differ"
        )
    entries, _, nominal_bits = descriptors[0]
    if "RedPaletteColorLookupTableData" not in dataset:
        if "SegmentedRedPaletteColorLookupTableData" not in dataset:
            raise InvalidHeaderError(path, "RedPaletteColorLookupTableData", None, "a palette image needs its table")
        return Palette(dataset, nominal_bits)  # segmented: pydicom reads the byte order from the transfer syntax
    big_endian = transfer_syntax_uid == _BIG_ENDIAN
    tables = [
        _entries(path, keyword, dataset.get(keyword), entries, big_endian)
        for keyword in (f"{channel}PaletteColorLookupTableData" for channel in _CHANNELS)
    ]
    largest = max(int(table.max()) for table in tables)
    bits = 8 if nominal_bits == 8 or largest <= 255 else 16
    rewritten = Dataset()
    for channel, table, descriptor in zip(_CHANNELS, tables, descriptors, strict=True):
        setattr(rewritten, f"{channel}PaletteColorLookupTableDescriptor", [entries % 65536, descriptor[1], 16])
        setattr(rewritten, f"{channel}PaletteColorLookupTableData", table.astype("<u2").tobytes())
    rewritten.PhotometricInterpretation = "PALETTE COLOR"
    return Palette(rewritten, bits)


def _entries(path: Path, keyword: str, data: object, entries: int, big_endian: bool) -> np.ndarray:
    """One channel's LUT Data as integers: 16-bit words in the file's byte order, 8-bit bytes, or a list of
    numbers (a US value); anything else does not match its descriptor."""
    if isinstance(data, (bytes, bytearray)):
        if len(data) in (2 * entries, 2 * entries + 2) and len(data) >= 2:
            return np.frombuffer(bytes(data[: 2 * entries]), ">u2" if big_endian else "<u2").astype(np.uint16)
        if len(data) in (entries, entries + 1):  # 8-bit entries, padded to even length
            return np.frombuffer(bytes(data[:entries]), np.uint8).astype(np.uint16)
        raise InvalidHeaderError(path, keyword, f"{len(data)} bytes", f"the descriptor says {entries} entries")
    if isinstance(data, int) or is_multiple(data):
        values = np.asarray(data if not isinstance(data, int) else [data], dtype=np.int64)
        if values.size == entries and values.min() >= 0 and values.max() <= 65535:
            return values.astype(np.uint16)
        raise InvalidHeaderError(path, keyword, f"{values.size} values", f"the descriptor says {entries} entries")
    raise InvalidHeaderError(path, keyword, None, "a palette image needs its table")


def check_lut_sequence(path: Path, dataset: Dataset, keyword: str) -> str:
    """'' when the first item of a Modality or VOI LUT Sequence is usable, else why not (PS3.3 C.11.1, C.11.2:
    entries of 8 to 16 bits, and at least as many data values as the descriptor promises)."""
    sequence = dataset.get(keyword)
    if not sequence:
        return ""
    item = sequence[0]
    try:
        descriptor = item.get("LUTDescriptor")
        entries, _, _ = check_descriptor(path, f"{keyword} LUTDescriptor", descriptor, tuple(range(8, 17)))
    except InvalidHeaderError as error:
        return error.reason
    data = item.get("LUTData")
    if data is None:
        return f"{keyword} has no LUTData"
    count = len(data) // 2 if isinstance(data, (bytes, bytearray)) else len(data) if hasattr(data, "__len__") else 1
    if count < entries and not (isinstance(data, (bytes, bytearray)) and len(data) >= entries):
        return f"{keyword} LUTData holds {count} entries, its descriptor says {entries}"
    return ""
