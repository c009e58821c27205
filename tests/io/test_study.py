"""Grouping into studies and series, slice order along the normal, laziness, skipping what is not an image."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

from medviewer.io.study import load_studies, slice_normal
from medviewer.io.synthetic import head_phantom_hu, write_ct_series, write_dicomdir_export

SIZE = 32


@pytest.fixture(scope="module")
def phantom() -> np.ndarray:
    return head_phantom_hu(12, SIZE, seed=3)


def _reference_stack(files: list[Path]) -> np.ndarray:
    """HU of each file as pydicom reads it, in the order of the files given."""
    out = []
    for path in files:
        dataset = pydicom.dcmread(path)
        out.append(np.asarray(apply_modality_lut(dataset.pixel_array, dataset), dtype=np.float32))
    return np.stack(out)


def _rewrite_geometry(
    files_in_slice_order: list[Path], row: tuple, column: tuple, step_mm: float, reverse_numbers=False
):
    """Give a series an oblique orientation; positions advance along the normal (or against it)."""
    normal = np.cross(row, column)
    for index, path in enumerate(files_in_slice_order):
        dataset = pydicom.dcmread(path)
        dataset.ImageOrientationPatient = [*row, *column]
        dataset.ImagePositionPatient = [float(v) for v in np.array([10.0, -20.0, 30.0]) + index * step_mm * normal]
        if reverse_numbers:
            dataset.InstanceNumber = len(files_in_slice_order) - index
        dataset.save_as(path)


def test_shuffled_files_are_ordered_along_the_normal(tmp_path, phantom):
    files = write_ct_series(tmp_path, phantom, shuffle_seed=11)
    assert [p.name for p in sorted(tmp_path.iterdir())] != [p.name for p in files]  # the folder order is wrong
    (series,) = load_studies([tmp_path]).series
    assert [frame.path.name for frame in series.frames] == [p.name for p in files]
    np.testing.assert_array_equal(series.stored_volume().shape, (12, SIZE, SIZE))
    np.testing.assert_array_equal(np.stack([series.values(i) for i in range(12)]), _reference_stack(files))


def test_gantry_tilt_orders_by_the_tilted_normal(tmp_path, phantom):
    files = write_ct_series(tmp_path, phantom, gantry_tilt_deg=25.0, slice_spacing_mm=2.0, shuffle_seed=5)
    (series,) = load_studies([tmp_path]).series
    assert [frame.path for frame in series.frames] == files
    normal = slice_normal(series.orientation)
    np.testing.assert_allclose(normal, [0, -np.sin(np.radians(25)), np.cos(np.radians(25))], atol=1e-6)
    # Slices are 2 mm apart along z, so 2 cos(25 deg) apart along the normal.
    assert series.slice_spacing_mm == pytest.approx(2.0 * np.cos(np.radians(25.0)), abs=1e-3)


def test_oblique_series_is_not_sorted_by_z_or_instance_number(tmp_path, phantom):
    files = write_ct_series(tmp_path, phantom, shuffle_seed=9)
    row = (0.0, 0.8, -0.6)
    column = (0.0, 0.6, 0.8)  # a sagittal-oblique plane: its normal is along x, z barely changes order
    _rewrite_geometry(files, row, column, step_mm=-1.5, reverse_numbers=False)
    (series,) = load_studies([tmp_path]).series
    # Positions move against +normal as the files' order goes on, so the series runs the other way.
    assert [frame.path for frame in series.frames] == files[::-1]
    along = [np.dot(frame.position, slice_normal(series.orientation)) for frame in series.frames]
    assert along == sorted(along)


def test_instance_number_orders_when_positions_are_missing(tmp_path, phantom):
    files = write_ct_series(tmp_path, phantom[:5], shuffle_seed=2)
    for path in files:
        dataset = pydicom.dcmread(path)
        del dataset.ImagePositionPatient
        dataset.save_as(path)
    (series,) = load_studies([tmp_path]).series
    assert [frame.header.instance_number for frame in series.frames] == [1, 2, 3, 4, 5]
    assert series.slice_spacing_mm is None


def test_mixed_folder_groups_by_study_and_series_and_skips_non_images(tmp_path, phantom):
    first = write_ct_series(
        tmp_path / "a", phantom[:4], series_number=2, series_description="Axial brain", uid_seed="one", shuffle_seed=1
    )
    study_uid = pydicom.dcmread(first[0]).StudyInstanceUID
    write_ct_series(
        tmp_path / "a",
        phantom[:6],
        series_number=3,
        series_description="Axial bone",
        uid_seed="one",
        study_uid=study_uid,
        shuffle_seed=1,
    )
    write_ct_series(tmp_path / "b", phantom[:3], uid_seed="another patient", series_description="Other study")
    # A localizer of another size inside the first series' UID: a stack of its own.
    localizer = tmp_path / "a" / "localizer.dcm"
    dataset = pydicom.dcmread(first[0])
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    dataset.Rows, dataset.Columns = 16, 32
    dataset.PixelData = np.zeros((16, 32), np.uint16).tobytes()
    dataset.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    dataset.save_as(localizer)
    shutil.copy(get_testdata_file("test-SR.dcm"), tmp_path / "report.dcm")
    (tmp_path / "notes.txt").write_text("not an image")
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(tmp_path / "photo.png")

    loaded = load_studies([tmp_path])
    descriptions = sorted(series.description for series in loaded.series)
    assert descriptions == [
        "Axial bone",
        "Axial brain [16x32 coronal]",
        "Axial brain [32x32 axial]",
        "Other study",
        "photo.png",
    ]
    by_description = {series.description: series for series in loaded.series}
    assert len(by_description["Axial brain [32x32 axial]"]) == 4 and len(by_description["Axial bone"]) == 6
    assert len(by_description["Axial brain [16x32 coronal]"]) == 1
    assert by_description["Axial brain [32x32 axial]"].study is by_description["Axial bone"].study
    assert by_description["Other study"].study is not by_description["Axial bone"].study
    reasons = {skip.path.name: skip.reason for skip in loaded.skipped}
    assert set(reasons) == {"report.dcm", "notes.txt"}
    assert "no pixel data" in reasons["report.dcm"] and "SR" in reasons["report.dcm"]
    assert reasons["notes.txt"] == "not a DICOM or image file"


def test_dicomdir_loads_the_export_in_order(tmp_path, phantom):
    files = write_ct_series(tmp_path / "source", phantom[:6], shuffle_seed=4)
    dicomdir = write_dicomdir_export(files, tmp_path / "cd")
    (series,) = load_studies([dicomdir]).series
    assert len(series) == 6
    np.testing.assert_array_equal(np.stack([series.values(i) for i in range(6)]), _reference_stack(files))
    # Walking the CD folder finds the same files once, not twice (DICOMDIR + the walk).
    (walked,) = load_studies([tmp_path / "cd"]).series
    assert len(walked) == 6


def test_dicomdir_entry_whose_file_is_gone_is_reported(tmp_path, phantom):
    files = write_ct_series(tmp_path / "source", phantom[:3])
    dicomdir = write_dicomdir_export(files, tmp_path / "cd")
    (series,) = load_studies([dicomdir]).series
    series.frames[0].path.unlink()
    loaded = load_studies([dicomdir])
    assert len(loaded.series[0]) == 2
    assert len(loaded.skipped) == 1 and "missing" in loaded.skipped[0].reason


def test_the_same_instance_twice_is_loaded_once(tmp_path, phantom):
    files = write_ct_series(tmp_path / "a", phantom[:3])
    shutil.copy(files[1], tmp_path / "copy.dcm")
    loaded = load_studies([tmp_path])
    assert len(loaded.series[0]) == 3
    assert len(loaded.skipped) == 1 and "duplicate" in loaded.skipped[0].reason


def test_pixels_are_decoded_only_when_asked(tmp_path, phantom):
    write_ct_series(tmp_path, phantom)
    (series,) = load_studies([tmp_path]).series
    assert not any(series.is_decoded(i) for i in range(len(series)))
    series.values(4)
    assert [series.is_decoded(i) for i in range(len(series))] == [i == 4 for i in range(len(series))]
    fractions = []
    assert series.load_all(progress=fractions.append)
    assert all(series.is_decoded(i) for i in range(len(series)))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_a_full_load_equals_pydicom_and_keeps_frames_decoded_earlier(tmp_path, phantom):
    files = write_ct_series(tmp_path, phantom, shuffle_seed=3)
    (series,) = load_studies([tmp_path]).series
    early = series.stored(7).copy()
    series.load_all(workers=3)
    np.testing.assert_array_equal(series.stored(7), early)
    expected = np.stack([pydicom.dcmread(path).pixel_array for path in files])
    np.testing.assert_array_equal(series.stored_volume(), expected)


def test_load_all_can_be_cancelled(tmp_path):
    write_ct_series(tmp_path, head_phantom_hu(40, 16, seed=1))
    (series,) = load_studies([tmp_path]).series
    calls = []

    def should_cancel() -> bool:
        calls.append(1)
        return len(calls) > 1  # let the first chunk through, then cancel

    assert series.load_all(should_cancel=should_cancel, workers=1) is False
    decoded = sum(series.is_decoded(i) for i in range(len(series)))
    assert 0 < decoded < len(series)


def test_compressed_series_loads_lazily_too(tmp_path, phantom):
    files = write_ct_series(tmp_path, phantom[:4], transfer_syntax=pydicom.uid.RLELossless)
    (series,) = load_studies([tmp_path]).series
    assert series.transfer_syntax == "RLE Lossless"
    np.testing.assert_array_equal(np.stack([series.values(i) for i in range(4)]), _reference_stack(files))


def test_monochrome1_is_flagged_for_inverted_display(tmp_path):
    path = get_testdata_file("MR_small.dcm")
    dataset = pydicom.dcmread(path)
    dataset.PhotometricInterpretation = "MONOCHROME1"
    dataset.save_as(tmp_path / "m1.dcm")
    (series,) = load_studies([tmp_path / "m1.dcm"]).series
    assert series.invert_display
    # Values are kept; only the display inverts.
    np.testing.assert_array_equal(
        series.values(0), np.asarray(apply_modality_lut(dataset.pixel_array, dataset), np.float32)
    )


def test_sample_study_is_a_trustworthy_ct(repo_root):
    loaded = load_studies([repo_root / "resources" / "sample_study"])
    (series,) = loaded.series
    assert not loaded.skipped
    assert (series.modality, series.units, len(series), series.shape) == ("CT", "HU", 24, (256, 256))
    assert [w.name for w in series.file_windows] == ["BRAIN", "BONE"]
    assert (series.default_window().center, series.default_window().width) == (40.0, 80.0)
    assert series.slice_spacing_mm == pytest.approx(5.0)
    hu = np.stack([series.values(i) for i in range(len(series))])
    assert hu.min() >= -1024 and hu.max() > 700  # air and skull


def _encapsulated_pdf(path: Path) -> Path:
    dataset = pydicom.Dataset()
    dataset.file_meta = pydicom.dataset.FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = pydicom.uid.EncapsulatedPDFStorage
    dataset.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    dataset.SOPClassUID = pydicom.uid.EncapsulatedPDFStorage
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
    dataset.Modality = "DOC"
    dataset.MIMETypeOfEncapsulatedDocument = "application/pdf"
    dataset.EncapsulatedDocument = b"%PDF-1.4\n%%EOF\n"
    dataset.save_as(path, enforce_file_format=True)
    return path


def test_encapsulated_pdf_and_rt_plan_are_skipped_beside_images(tmp_path, phantom):
    write_ct_series(tmp_path, phantom[:2])
    _encapsulated_pdf(tmp_path / "report.dcm")
    shutil.copy(get_testdata_file("rtplan.dcm"), tmp_path / "plan.dcm")
    loaded = load_studies([tmp_path])
    assert len(loaded.series) == 1 and len(loaded.series[0]) == 2
    reasons = {skip.path.name: skip.reason for skip in loaded.skipped}
    assert reasons == {
        "report.dcm": "no pixel data (Encapsulated PDF Storage)",
        "plan.dcm": "no pixel data (RT Plan Storage)",
    }


def test_a_folder_with_nothing_readable_gives_no_series_and_all_reasons(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 40)
    loaded = load_studies([tmp_path])
    assert loaded.series == [] and len(loaded.skipped) == 2


def test_a_series_too_large_for_memory_is_refused_before_allocating(tmp_path, phantom, monkeypatch):
    import medviewer.io.volume_memory as volume_memory
    from medviewer.errors import MedViewerError

    write_ct_series(tmp_path, phantom[:4])
    (series,) = load_studies([tmp_path]).series
    monkeypatch.setattr(volume_memory, "memory_budget_bytes", lambda: 1000)
    with pytest.raises(MedViewerError, match="more than this machine can hold"):
        series.load_all()
    # Browsing slice by slice still works.
    assert series.values(2).shape == (SIZE, SIZE)


def test_a_missing_slice_or_a_repeated_position_is_reported(tmp_path, phantom):
    files = write_ct_series(tmp_path / "gap", phantom[:8], slice_spacing_mm=2.0)
    files[4].unlink()  # slices 0..3, then 5..7: the step after frame 3 is 4 mm
    (gapped,) = load_studies([tmp_path / "gap"]).series
    assert gapped.slice_spacing_mm == pytest.approx(2.0)
    assert gapped.uneven_spacing() == [3]

    files = write_ct_series(tmp_path / "repeat", phantom[:4], slice_spacing_mm=2.0)
    copy = pydicom.dcmread(files[2])
    copy.SOPInstanceUID = copy.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    copy.InstanceNumber = 99
    copy.save_as(tmp_path / "repeat" / "second_phase.dcm")
    (repeated,) = load_studies([tmp_path / "repeat"]).series
    assert len(repeated) == 5 and repeated.uneven_spacing() == [2]


def test_an_even_series_has_no_spacing_warning(repo_root):
    assert load_studies([repo_root / "resources" / "sample_study"]).series[0].uneven_spacing() == []


def test_display_values_shows_other_values_exactly_as_the_frame_is_shown(repo_root):
    """An enhanced copy is displayed through the same window as the original: identical values, identical
    brightness; shifted values, shifted brightness."""
    series = load_studies([repo_root / "resources" / "sample_study"]).series[0]
    values = series.values(3)
    np.testing.assert_array_equal(series.display_values(values.copy(), 3), series.display(3))
    window = series.default_window(3)
    brighter = series.display_values(values + window.width / 4, 3)
    inside = (values > window.center - window.width / 2) & (values < window.center)
    # DICOM's LINEAR window maps a width w onto w - 1 steps (PS3.3 C.11.2.1.2)
    expected_step = (window.width / 4) / (window.width - 1)
    np.testing.assert_allclose((brighter - series.display(3))[inside], expected_step, atol=1e-5)
