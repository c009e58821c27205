"""Numeric header fields are checked where they are read: one error type, one message form, never a crash."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medviewer.cli import main
from medviewer.errors import InvalidHeaderError
from medviewer.io.dicom import read_dicom_header
from medviewer.io.header_values import geometry_vector, rescale, whole_number
from medviewer.io.study import load_studies

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def _ct_with(folder: Path, name: str = "ct.dcm", **changes) -> Path:
    """CT_small.dcm with elements changed: keyword=(VR, value), or keyword=None to delete it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = copy.deepcopy(pydicom.dcmread(TEST_FILES / "CT_small.dcm"))
        for keyword, change in changes.items():
            if change is None:
                del dataset[keyword]
            else:
                vr, value = change
                dataset.add_new(pydicom.datadict.tag_for_keyword(keyword), vr, value)
        path = folder / name
        dataset.save_as(path)
    return path


@pytest.mark.parametrize(
    ("keyword", "change", "message"),
    [
        ("Rows", ("US", 0), "invalid Rows 0: must be 1..65535"),
        ("Columns", ("SS", -5), "invalid Columns -5: must be 1..65535"),
        ("Rows", ("LO", "abc"), "invalid Rows 'abc': not a number"),
        ("Rows", None, "invalid Rows (missing): an image needs it"),
        ("BitsAllocated", ("US", 12), "invalid BitsAllocated 12: must be one of 1, 8, 16, 32, 64"),
        ("BitsStored", ("US", 40), "invalid BitsStored 40: must be 1..16"),
        ("BitsStored", ("US", 0), "invalid BitsStored 0: must be 1..16"),
        ("HighBit", ("US", 16), "invalid HighBit 16: must be 0..15"),
        ("SamplesPerPixel", ("US", 4), "invalid SamplesPerPixel 4: must be one of 1, 3"),
        ("SamplesPerPixel", ("US", 3), "invalid SamplesPerPixel 3: MONOCHROME2 needs 1 sample(s) per pixel"),
        ("PixelRepresentation", ("US", 2), "invalid PixelRepresentation 2: must be 0..1"),
        ("PixelRepresentation", ("LO", "1.5"), "invalid PixelRepresentation '1.5': not a whole number"),
        ("RescaleSlope", ("DS", "0"), "invalid RescaleSlope 0: a slope of 0 erases the image"),
        ("RescaleSlope", ("LO", "nan"), "invalid RescaleSlope 'nan': not a finite number"),
        ("RescaleIntercept", ("LO", "inf"), "invalid RescaleIntercept 'inf': not a finite number"),
        ("RescaleIntercept", ("LO", "x"), "invalid RescaleIntercept 'x': not a number"),
        ("RescaleSlope", ("DS", "1e38"), "invalid RescaleSlope 1e+38: stored values would overflow float32"),
        ("RescaleIntercept", ("DS", "1e300"), "invalid RescaleIntercept 1e+300: stored values would overflow float32"),
    ],
)
def test_a_field_that_cannot_describe_the_image_is_refused_by_name(tmp_path, capsys, keyword, change, message):
    path = _ct_with(tmp_path, **{keyword: change})
    with pytest.raises(InvalidHeaderError) as raised:
        read_dicom_header(path)
    assert raised.value.keyword == keyword and message in str(raised.value)
    # Through the command line: one line naming the file and the field, exit code 2.
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and message in err[0]


@pytest.mark.parametrize(
    ("keyword", "change", "note"),
    [
        ("PixelSpacing", ("DS", ["0", "0"]), "PixelSpacing [0, 0] ignored: a spacing must be above 0"),
        ("PixelSpacing", ("DS", ["-1", "0.5"]), "ignored: a spacing must be above 0"),
        ("PixelSpacing", ("LO", ["inf", "1"]), "ignored: not finite numbers"),
        ("PixelSpacing", ("DS", ["0.5"]), "ignored: expected 2 values, got 1"),
        ("ImageOrientationPatient", ("DS", ["0"] * 6), "not perpendicular unit vectors"),
        ("ImageOrientationPatient", ("LO", ["1", "0", "0", "0", "1", "x"]), "ignored: not finite numbers"),
        ("ImagePositionPatient", ("LO", ["nan", "0", "0"]), "ignored: not finite numbers"),
        ("SliceThickness", ("DS", "-2"), "SliceThickness -2 ignored"),
    ],
)
def test_geometry_that_cannot_be_right_is_unknown_with_a_note(tmp_path, keyword, change, note):
    path = _ct_with(tmp_path, **{keyword: change})
    (series,) = load_studies([path]).series
    assert any(note in text for text in series.notes), series.notes
    assert series.values(0).shape == (128, 128)  # still a picture
    if keyword == "PixelSpacing":
        assert series.pixel_spacing_mm is None  # no scale bar from a spacing of 0
    if keyword == "ImageOrientationPatient":
        assert series.orientation is None  # no orientation letters


def test_a_zero_spacing_falls_back_to_none_not_to_the_imager_spacing_twice(tmp_path):
    path = _ct_with(tmp_path, PixelSpacing=("DS", ["0", "0"]), ImagerPixelSpacing=("DS", ["0.2", "0.2"]))
    (series,) = load_studies([path]).series
    assert series.pixel_spacing_mm == (0.2, 0.2)
    assert series.first.header.pixel_spacing_source == "ImagerPixelSpacing"


def test_unusable_windows_are_dropped_and_the_automatic_one_stands_in(tmp_path, capsys):
    path = _ct_with(tmp_path, WindowCenter=("LO", ["abc", "40"]), WindowWidth=("DS", ["400", "0"]))
    (series,) = load_studies([path]).series
    assert series.file_windows == ()
    assert series.default_window(0).name == "auto"
    assert main(["info", str(path)]) == 0


def test_an_unusable_instance_number_only_loses_its_order(tmp_path):
    path = _ct_with(tmp_path, InstanceNumber=("LO", "first"))
    (series,) = load_studies([path]).series
    assert series.first.header.instance_number is None


def test_whole_number_messages_name_multiple_values_and_bytes():
    with pytest.raises(InvalidHeaderError, match=r"invalid Rows \[2, 3\]: expected one value"):
        whole_number("x.dcm", {"Rows": [2, 3]}, "Rows", 1, 65535)
    with pytest.raises(InvalidHeaderError, match=r"invalid Rows b'\\x01\\x02': not a number"):
        whole_number("x.dcm", {"Rows": b"\x01\x02"}, "Rows", 1, 65535)
    assert whole_number("x.dcm", {}, "SamplesPerPixel", 1, 3, default=1) == 1


def test_rescale_that_fits_float32_passes_and_one_that_overflows_does_not():
    assert rescale("x", {"RescaleSlope": 1.0, "RescaleIntercept": -1024.0}, 16, True) == (1.0, -1024.0)
    assert rescale("x", {}, 32, False) == (None, None)
    with pytest.raises(InvalidHeaderError):
        rescale("x", {"RescaleSlope": 1e30}, 32, False)
    largest = float(np.finfo(np.float32).max)
    assert np.isfinite(np.float32(2.0**16 * (largest / 2.0**17)))  # the bound is the float32 range itself


def test_geometry_vector_notes_only_what_was_present():
    notes: list[str] = []
    assert geometry_vector({}, "PixelSpacing", 2, notes, positive=True) is None and notes == []
    assert geometry_vector({"PixelSpacing": [0.5, 0.5]}, "PixelSpacing", 2, notes, positive=True) == (0.5, 0.5)
    assert geometry_vector({"PixelSpacing": [0, 0]}, "PixelSpacing", 2, notes, positive=True) is None
    assert len(notes) == 1
