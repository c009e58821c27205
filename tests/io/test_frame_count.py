"""Frame counts that lie: a file is loaded with the frames its pixel data holds, says so, and never crashes.

Expected pixels come from pydicom decoding the untouched original file.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut

from medviewer.cli import main
from medviewer.io.frame_count import bits_per_frame, claimed_frames
from medviewer.io.study import load_studies

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def _read(name: str) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(TEST_FILES / name)


def _with_frames(name: str, claimed, folder: Path, vr: str | None = None) -> Path:
    """A copy of a pydicom test file whose NumberOfFrames says `claimed` (any value, any VR)."""
    dataset = copy.deepcopy(_read(name))
    if vr is None:
        dataset.NumberOfFrames = claimed
    else:
        dataset.add_new(0x00280008, vr, claimed)
    path = folder / f"{Path(name).stem}_{str(claimed).replace('-', 'minus')}.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset.save_as(path)  # in the original's own encoding
    return path


def _original_frames(name: str) -> list[np.ndarray]:
    dataset = _read(name)
    pixels = dataset.pixel_array
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    stack = pixels if frames > 1 else pixels[np.newaxis]
    return [np.asarray(apply_modality_lut(frame, dataset), dtype=np.float32) for frame in stack]


@pytest.mark.parametrize(
    ("name", "claimed", "held"),
    [
        ("CT_small.dcm", 0, 1),
        ("CT_small.dcm", -3, 1),
        ("CT_small.dcm", 1000, 1),
        ("CT_small.dcm", "abc", 1),
        ("CT_small.dcm", 2**31 - 1, 1),
        ("rtdose.dcm", 50, 15),  # native multi-frame
        ("rtdose.dcm", 0, 15),
        ("rtdose.dcm", -1, 15),
        ("rtdose_rle.dcm", 50, 15),  # encapsulated, no offset table: one frame per fragment
        ("examples_ybr_color.dcm", 100, 30),  # encapsulated with a Basic Offset Table
    ],
)
def test_a_lying_frame_count_loads_the_frames_the_data_holds_and_says_so(tmp_path, name, claimed, held):
    path = _with_frames(name, claimed, tmp_path, vr="IS" if isinstance(claimed, int) else "LO")
    loaded = load_studies([path])
    assert not loaded.skipped
    (series,) = loaded.series
    assert len(series) == held
    assert any("NumberOfFrames" in note and f"holds {held} frame" in note for note in series.notes)
    if name != "examples_ybr_color.dcm":  # colour: compared below through the CLI
        expected = _original_frames(name)
        for position, frame in enumerate(series.frames):
            np.testing.assert_array_equal(series.values(position), expected[frame.index_in_file])
    else:
        assert series.values(held - 1).shape == (*series.shape, 3)


def test_a_smaller_claim_is_honoured_without_a_note(tmp_path):
    path = _with_frames("rtdose.dcm", 3, tmp_path)
    (series,) = load_studies([path]).series
    assert len(series) == 3 and not series.notes


def test_info_and_export_report_the_note_and_never_a_traceback(tmp_path, capsys):
    path = _with_frames("CT_small.dcm", 1000, tmp_path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr()
    assert "1 frame" in out.out and "NumberOfFrames says 1000" in out.out and "Traceback" not in out.err
    output = tmp_path / "frame.npy"
    assert main(["export", str(path), "-o", str(output)]) == 0
    np.testing.assert_array_equal(np.load(output), _original_frames("CT_small.dcm")[0])
    assert main(["export", str(path), "-o", str(tmp_path / "late.npy"), "--frame", "999"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out of range" in err[0]


def test_pixel_data_shorter_than_one_frame_is_skipped_and_the_rest_of_the_folder_loads(tmp_path, capsys):
    folder = tmp_path / "study"
    folder.mkdir()
    dataset = copy.deepcopy(_read("CT_small.dcm"))
    dataset.Rows = 512  # the data holds 128 x 128
    dataset.NumberOfFrames = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset.save_as(folder / "short.dcm", implicit_vr=False, little_endian=True)
    good = _with_frames("MR_small.dcm", 1, folder)
    loaded = load_studies([folder])
    assert [series.first.path for series in loaded.series] == [good]
    (skipped,) = loaded.skipped
    assert skipped.path.name == "short.dcm" and "truncated" in skipped.reason
    assert main(["info", str(folder)]) == 0
    assert main(["info", str(folder / "short.dcm")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "short.dcm" in err[0] and "truncated" in err[0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, 1), ("", 1), (1, 1), (7, 7), ("7", 7), (0, None), (-2, None), ("1A", None), (2.5, None), ([2, 3], None)],
)
def test_claimed_frames_reads_the_header_value(value, expected):
    assert claimed_frames(value) == expected


def test_bits_per_frame_knows_packed_and_subsampled_layouts():
    assert bits_per_frame(10, 10, 1, 1, "MONOCHROME2") == 100  # 1-bit frames are packed back to back
    assert bits_per_frame(10, 10, 3, 8, "YBR_FULL_422") == 10 * 10 * 2 * 8
    assert bits_per_frame(10, 10, 3, 8, "RGB") == 10 * 10 * 3 * 8
