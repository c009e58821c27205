"""Palette colour: a big-endian file shows the same picture as its little-endian twin; 16-bit tables whose
entries never exceed 255 are read as 8-bit; broken descriptors are refused by name.

The reference picture is pydicom's `apply_color_lut` on the bundled little-endian file (examples_palette.dcm).
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_color_lut
from pydicom.uid import ExplicitVRBigEndian

from medviewer.cli import main
from medviewer.io.dicom import to_uint8_rgb
from medviewer.io.study import load_studies

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
_CHANNELS = ("Red", "Green", "Blue")


def _palette_source() -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(TEST_FILES / "examples_palette.dcm")


def _reference_picture() -> np.ndarray:
    dataset = _palette_source()
    return to_uint8_rgb(apply_color_lut(dataset.pixel_array, dataset), 16)


def _write(dataset: pydicom.Dataset, path: Path, big_endian: bool = False) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if big_endian:
            pydicom.dcmwrite(path, dataset, little_endian=False, implicit_vr=False, enforce_file_format=True)
        else:
            dataset.save_as(path)
    return path


def _big_endian_copy(dataset: pydicom.Dataset) -> pydicom.Dataset:
    """The same image in Explicit VR Big Endian: 16-bit LUT words byte-swapped as PS3.5 7.3 requires."""
    swapped = copy.deepcopy(dataset)
    swapped.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    for channel in _CHANNELS:
        element = swapped[f"{channel}PaletteColorLookupTableData"]
        element.value = np.frombuffer(element.value, "<u2").astype(">u2").tobytes()
    swapped["PixelData"].VR = "OB"  # 8-bit samples: no byte order to swap
    return swapped


def test_the_same_palette_image_big_endian_and_little_endian_gives_the_same_picture(tmp_path):
    little = _write(_palette_source(), tmp_path / "little.dcm")
    big = _write(_big_endian_copy(_palette_source()), tmp_path / "big.dcm", big_endian=True)
    assert pydicom.dcmread(big).file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    reference = _reference_picture()
    assert reference.max() > 200  # the reference itself is not black
    for path in (little, big):
        (series,) = load_studies([path]).series
        np.testing.assert_array_equal(series.values(0), reference)
    # and through the command line, as a user would export it
    assert main(["export", str(big), "-o", str(tmp_path / "big.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "big.npy"), reference)


@pytest.mark.parametrize("big_endian", [False, True])
def test_a_16_bit_table_whose_entries_never_exceed_255_is_read_as_8_bit(tmp_path, big_endian):
    dataset = _palette_source()
    for channel in _CHANNELS:  # the same colours, written the way some modalities do: 8-bit values in 16 bits
        element = dataset[f"{channel}PaletteColorLookupTableData"]
        element.value = (np.frombuffer(element.value, "<u2") >> 8).astype("<u2").tobytes()
        assert dataset[f"{channel}PaletteColorLookupTableDescriptor"].value[2] == 16
    if big_endian:
        dataset = _big_endian_copy(dataset)
    (series,) = load_studies([_write(dataset, tmp_path / "eight.dcm", big_endian)]).series
    np.testing.assert_array_equal(series.values(0), _reference_picture())


@pytest.mark.parametrize(
    ("descriptor", "message"),
    [
        ([256, 0, 12], "entries must have 8 or 16 bits"),
        ([256, 0], "a LUT descriptor is three whole numbers"),
        ([70000, 0, 16], "the number of entries must be 0..65535"),
    ],
)
def test_a_broken_palette_descriptor_is_refused_by_name(tmp_path, capsys, descriptor, message):
    dataset = _palette_source()
    dataset.add_new(0x00281101, "UL" if descriptor[0] > 65535 else "US", descriptor)
    path = _write(dataset, tmp_path / "broken.dcm")
    loaded = load_studies([path])
    assert not loaded.series
    (skipped,) = loaded.skipped
    assert "RedPaletteColorLookupTableDescriptor" in skipped.reason and message in skipped.reason
    assert main(["info", str(path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_palette_data_shorter_than_its_descriptor_is_refused(tmp_path):
    dataset = _palette_source()
    dataset.GreenPaletteColorLookupTableData = dataset.GreenPaletteColorLookupTableData[:100]
    (skipped,) = load_studies([_write(dataset, tmp_path / "short.dcm")]).skipped
    assert "GreenPaletteColorLookupTableData" in skipped.reason and "256 entries" in skipped.reason
