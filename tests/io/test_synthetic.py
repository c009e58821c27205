"""Synthetic CT series: pydicom reads back the HU, geometry, order and UIDs we meant to write."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.fileset import FileSet
from pydicom.pixels import apply_modality_lut, get_encoder
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)
from scipy import ndimage

from medviewer.errors import OutputError
from medviewer.io.synthetic import head_phantom_hu, write_ct_series, write_dicomdir_export, write_sample_png

ROUND_TRIP_SYNTAXES = [
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEG2000Lossless,
    JPEGLSLossless,
]


@pytest.fixture(scope="module")
def small_volume() -> np.ndarray:
    return head_phantom_hu(3, 32, seed=3)


def _read_hu(path: Path) -> tuple[pydicom.Dataset, np.ndarray]:
    """The reference reading: pydicom's decoder and its modality LUT."""
    dataset = pydicom.dcmread(path)
    return dataset, apply_modality_lut(dataset.pixel_array, dataset)


def _jpeg_ls_encoder_available() -> bool:
    return get_encoder(JPEGLSLossless).is_available


@pytest.mark.parametrize("transfer_syntax", ROUND_TRIP_SYNTAXES, ids=lambda uid: uid.name)
def test_hu_round_trips_through_pydicom(tmp_path: Path, small_volume: np.ndarray, transfer_syntax) -> None:
    if transfer_syntax == JPEGLSLossless and not _jpeg_ls_encoder_available():
        with pytest.raises(OutputError, match="JPEG-LS"):
            write_ct_series(tmp_path, small_volume, transfer_syntax=transfer_syntax)
        assert not list(tmp_path.iterdir()), "nothing is written when the encoder is missing"
        return
    paths = write_ct_series(tmp_path, small_volume, transfer_syntax=transfer_syntax)
    assert len(paths) == len(small_volume)
    for index, path in enumerate(paths):
        dataset, hu = _read_hu(path)
        assert dataset.file_meta.TransferSyntaxUID == transfer_syntax
        # The -1024 intercept and 12 unsigned bits hold -1024..3071 HU; noisy air below that is clipped.
        np.testing.assert_allclose(hu, np.clip(small_volume[index], -1024, 3071), rtol=0, atol=0.5 + 1e-4)


@pytest.mark.parametrize(
    ("rescale_slope", "rescale_intercept", "bits_stored", "pixel_representation"),
    [(1.0, 0.0, 16, 1), (0.5, -1024.0, 16, 0), (2.0, -1000.0, 12, 1), (1.0, -1024.0, 10, 0)],
)
@pytest.mark.parametrize(
    "transfer_syntax",
    [ExplicitVRLittleEndian, ExplicitVRBigEndian, RLELossless, JPEG2000Lossless],
    ids=lambda uid: uid.name,
)
def test_stored_values_follow_slope_intercept_and_bits(
    tmp_path: Path,
    small_volume: np.ndarray,
    transfer_syntax,
    rescale_slope,
    rescale_intercept,
    bits_stored,
    pixel_representation,
) -> None:
    volume = small_volume[:1]
    paths = write_ct_series(
        tmp_path,
        volume,
        transfer_syntax=transfer_syntax,
        rescale_slope=rescale_slope,
        rescale_intercept=rescale_intercept,
        bits_stored=bits_stored,
        pixel_representation=pixel_representation,
    )
    dataset, hu = _read_hu(paths[0])
    assert (dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation) == (
        bits_stored,
        bits_stored - 1,
        pixel_representation,
    )
    # Hand-computed representable range: anything outside it must come back clipped to the limit.
    if pixel_representation:
        low, high = -(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1
    else:
        low, high = 0, 2**bits_stored - 1
    lowest_hu, highest_hu = low * rescale_slope + rescale_intercept, high * rescale_slope + rescale_intercept
    expected = np.clip(volume[0], lowest_hu, highest_hu)
    np.testing.assert_allclose(hu, expected, rtol=0, atol=rescale_slope / 2 + 1e-4)
    if bits_stored == 10:
        assert hu.max() == highest_hu, "a 10-bit range cannot hold the skull, so bone is clipped"


def test_files_are_dicom_part10_ct_images_with_the_required_elements(tmp_path: Path, small_volume) -> None:
    paths = write_ct_series(
        tmp_path,
        small_volume,
        pixel_spacing_mm=(0.8, 0.6),
        slice_spacing_mm=2.5,
        series_number=7,
        series_description="Head 2.5 mm",
    )
    raw = paths[0].read_bytes()
    assert raw[:128] == b"\0" * 128 and raw[128:132] == b"DICM"
    dataset = pydicom.dcmread(paths[0])
    for keyword in (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "FrameOfReferenceUID",
        "StudyDate",
        "StudyTime",
        "StudyDescription",
        "PatientName",
        "PatientID",
        "SliceThickness",
        "PixelData",
    ):
        assert keyword in dataset, keyword
    assert dataset.file_meta.MediaStorageSOPClassUID == CTImageStorage == dataset.SOPClassUID
    assert dataset.file_meta.MediaStorageSOPInstanceUID == dataset.SOPInstanceUID
    assert dataset.Modality == "CT"
    assert list(dataset.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert dataset.PatientPosition == "HFS"
    assert (dataset.Rows, dataset.Columns, dataset.SamplesPerPixel) == (32, 32, 1)
    assert dataset.PhotometricInterpretation == "MONOCHROME2"
    assert (dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation) == (16, 12, 11, 0)
    assert (float(dataset.RescaleSlope), float(dataset.RescaleIntercept), dataset.RescaleType) == (1.0, -1024.0, "HU")
    assert [float(value) for value in dataset.PixelSpacing] == [0.8, 0.6]
    assert float(dataset.SliceThickness) == 2.5
    assert (dataset.SeriesNumber, dataset.SeriesDescription) == (7, "Head 2.5 mm")
    assert [float(value) for value in dataset.WindowCenter] == [40.0, 480.0]
    assert [float(value) for value in dataset.WindowWidth] == [80.0, 2500.0]
    assert list(dataset.WindowCenterWidthExplanation) == ["BRAIN", "BONE"]
    # Top-left corner centres the image on the isocentre: (-cols*dx/2, -rows*dy/2).
    assert [float(value) for value in dataset.ImagePositionPatient[:2]] == pytest.approx([-32 * 0.6 / 2, -32 * 0.8 / 2])


def test_rich_header_is_realistic_and_optional(tmp_path: Path, small_volume) -> None:
    rich = pydicom.dcmread(write_ct_series(tmp_path / "rich", small_volume[:1])[0])
    plain = pydicom.dcmread(write_ct_series(tmp_path / "plain", small_volume[:1], rich_header=False)[0])
    assert len(list(rich.iterall())) >= 100
    assert len(list(plain.iterall())) < len(list(rich.iterall()))
    assert float(rich.KVP) > 0 and rich.XRayTubeCurrent > 0 and rich.ConvolutionKernel
    assert rich.ReferencedImageSequence[0].ReferencedSOPClassUID == CTImageStorage


def test_instance_numbers_and_positions_follow_slice_order(tmp_path: Path, small_volume) -> None:
    paths = write_ct_series(tmp_path, small_volume, slice_spacing_mm=1.25, shuffle_seed=11, first_slice_z_mm=-40)
    datasets = [pydicom.dcmread(path, stop_before_pixels=True) for path in paths]
    assert [dataset.InstanceNumber for dataset in datasets] == [1, 2, 3]
    assert [float(dataset.ImagePositionPatient[2]) for dataset in datasets] == pytest.approx([-40, -38.75, -37.5])
    assert [float(value) for value in datasets[0].ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]


def test_gantry_tilt_turns_the_columns_and_keeps_positions_on_patient_z(tmp_path: Path) -> None:
    tilt_deg, spacing_mm = 20.0, 2.0
    volume = head_phantom_hu(6, 32, seed=1)
    paths = write_ct_series(tmp_path, volume, gantry_tilt_deg=tilt_deg, slice_spacing_mm=spacing_mm, shuffle_seed=5)
    datasets = [pydicom.dcmread(path, stop_before_pixels=True) for path in paths]
    tilt = math.radians(tilt_deg)
    orientation = np.array([float(value) for value in datasets[0].ImageOrientationPatient])
    np.testing.assert_allclose(orientation, [1, 0, 0, 0, math.cos(tilt), math.sin(tilt)], atol=1e-9)
    normal = np.cross(orientation[:3], orientation[3:])
    np.testing.assert_allclose(normal, [0, -math.sin(tilt), math.cos(tilt)], atol=1e-9)
    assert float(datasets[0].GantryDetectorTilt) == tilt_deg
    positions = np.array([[float(value) for value in dataset.ImagePositionPatient] for dataset in datasets])
    np.testing.assert_allclose(np.diff(positions, axis=0), [[0, 0, spacing_mm]] * 5, atol=1e-9)
    # Sorting along the normal recovers slice order from the shuffled directory order; raw y cannot.
    listed = sorted(tmp_path.iterdir())
    by_normal = sorted(listed, key=lambda path: float(np.dot(normal, _position(path))))
    assert by_normal == paths
    assert listed != paths
    assert len({float(position[1]) for position in positions}) == 1


def _position(path: Path) -> np.ndarray:
    return np.array([float(value) for value in pydicom.dcmread(path, stop_before_pixels=True).ImagePositionPatient])


def test_shuffled_names_hide_slice_order_and_are_reproducible(tmp_path: Path) -> None:
    volume = head_phantom_hu(12, 16, noise_hu=0)
    paths = write_ct_series(tmp_path / "a", volume, shuffle_seed=3)
    again = write_ct_series(tmp_path / "b", volume, shuffle_seed=3)
    assert all(re.fullmatch(r"IM_[0-9a-f]{8}\.dcm", path.name) for path in paths)
    assert len({path.name for path in paths}) == 12
    assert sorted(paths) != paths
    assert [path.name for path in again] == [path.name for path in paths]
    assert [path.name for path in write_ct_series(tmp_path / "c", volume)][:2] == ["IM_00001.dcm", "IM_00002.dcm"]


def test_uids_are_deterministic_per_seed_and_unique_per_slice(tmp_path: Path, small_volume) -> None:
    def uids(folder: str, seed: str) -> list[tuple[str, str, str, str]]:
        paths = write_ct_series(tmp_path / folder, small_volume, uid_seed=seed)
        datasets = [pydicom.dcmread(path, stop_before_pixels=True) for path in paths]
        return [(d.StudyInstanceUID, d.SeriesInstanceUID, d.FrameOfReferenceUID, d.SOPInstanceUID) for d in datasets]

    first, repeat, other = uids("first", "seed-a"), uids("repeat", "seed-a"), uids("other", "seed-b")
    assert first == repeat
    assert len({instance for *_, instance in first}) == len(first)
    for column in range(4):
        assert {row[column] for row in first}.isdisjoint({row[column] for row in other})
    assert all(pydicom.uid.UID(uid).is_valid for row in first for uid in row)
    # Byte-identical files: regenerating the bundled sample must not churn the repository.
    assert (tmp_path / "first" / "IM_00001.dcm").read_bytes() == (tmp_path / "repeat" / "IM_00001.dcm").read_bytes()


def test_two_series_share_a_folder_without_clobbering(tmp_path: Path, small_volume) -> None:
    write_ct_series(tmp_path, small_volume, series_number=1, shuffle_seed=1)
    write_ct_series(tmp_path, small_volume, series_number=2, shuffle_seed=1, gantry_tilt_deg=15)
    series = {pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID for path in tmp_path.iterdir()}
    assert len(list(tmp_path.iterdir())) == 6 and len(series) == 2
    with pytest.raises(OutputError, match="already exists"):
        write_ct_series(tmp_path, small_volume, series_number=1, shuffle_seed=1)
    write_ct_series(tmp_path, small_volume, series_number=1, shuffle_seed=1, overwrite=True)
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")], "no temporary files left"


def test_dicomdir_export_reads_back_as_a_file_set(tmp_path: Path, small_volume) -> None:
    paths = write_ct_series(tmp_path / "series", small_volume, shuffle_seed=2)
    dicomdir = write_dicomdir_export(paths, tmp_path / "usb")
    assert dicomdir == tmp_path / "usb" / "DICOMDIR"
    file_set = FileSet(pydicom.dcmread(dicomdir))
    assert len(file_set) == len(paths)
    expected = {pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID for path in paths}
    assert {instance.SOPInstanceUID for instance in file_set} == expected
    instance = next(iter(file_set))
    assert instance.path.startswith(str(tmp_path / "usb"))
    assert instance.load().Modality == "CT"
    with pytest.raises(OutputError):
        write_dicomdir_export(paths, tmp_path / "usb")


def test_phantom_looks_like_a_head() -> None:
    volume = head_phantom_hu(9, 96, seed=0)
    assert volume.shape == (9, 96, 96) and volume.dtype == np.float32
    middle = volume[4]
    assert abs(float(middle[:8, :8].mean()) + 1000) < 10, "air in the corners"
    assert middle.max() > 500, "skull"
    centre = middle[40:56, 40:56]
    assert 0 < float(centre.mean()) < 80, "brain in the centre"
    head_area = (volume > -500).sum(axis=(1, 2))
    assert head_area[-1] < head_area[4], "the head narrows toward the vertex"
    bone_area = (volume > 300).sum(axis=(1, 2))
    assert bone_area.max() > 0
    np.testing.assert_array_equal(volume, head_phantom_hu(9, 96, seed=0))
    assert not np.array_equal(volume, head_phantom_hu(9, 96, seed=1))
    quiet = head_phantom_hu(24, 128, noise_hu=0)
    assert quiet.max() > 1400 and np.percentile(quiet[quiet > 300], 10) < 900, "cortical tables, lighter diploe"
    # Away from edges (where partial volume mixes bone into soft tissue) only the lesion exceeds +60 HU.
    soft_tissue_cores = ndimage.binary_erosion(
        (quiet > -10) & (quiet < 100), structure=np.ones((1, 3, 3)), iterations=2
    )
    slices_with_lesion = [index for index in range(24) if (quiet[index][soft_tissue_cores[index]] > 60).any()]
    assert 1 <= len(slices_with_lesion) < 12, "a lesion on some slices only"
    assert quiet[slices_with_lesion[0]][soft_tissue_cores[slices_with_lesion[0]]].max() == pytest.approx(70, abs=1)


def test_sample_png_is_8_bit_grayscale(tmp_path: Path) -> None:
    image = np.arange(64 * 48, dtype=np.uint32).reshape(64, 48).astype(np.uint8)
    write_sample_png(tmp_path / "sample.png", image)
    with Image.open(tmp_path / "sample.png") as written:
        assert written.mode == "L" and written.format == "PNG"
        np.testing.assert_array_equal(np.asarray(written), image)
    with pytest.raises(ValueError):
        write_sample_png(tmp_path / "bad.png", image.astype(np.float32))
