"""Derived DICOM series: values, geometry and identity read back by pydicom and by our loader, never over inputs."""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.datadict import tag_for_keyword
from pydicom.pixels import apply_modality_lut
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from medviewer import __version__
from medviewer.errors import OutputError
from medviewer.io.derived_dicom import (
    _SC_IMAGE_IOD,
    STANDARD_EXTENDED_ATTRIBUTES,
    Derivation,
    laterality,
    patient_orientation,
    series_description,
    write_derived_series,
    write_derived_slice,
)
from medviewer.io.study import Series, load_studies
from medviewer.io.synthetic import head_phantom_hu, write_ct_series

SLICES, SIZE = 4, 32
ROW_SPACING, COLUMN_SPACING = 0.8, 0.5  # unequal, so that a swap of rows and columns shows
TILT_DEG = 20.0  # a tilted column direction, so that the position shift has y and z parts
RESCALE_SLOPE, RESCALE_INTERCEPT = 0.5, -1024.0  # HU are stored in half-HU steps


@pytest.fixture(scope="module")
def source_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("source")
    write_ct_series(
        folder,
        head_phantom_hu(SLICES, SIZE, seed=4),
        pixel_spacing_mm=(ROW_SPACING, COLUMN_SPACING),
        gantry_tilt_deg=TILT_DEG,
        rescale_slope=RESCALE_SLOPE,
        rescale_intercept=RESCALE_INTERCEPT,
        bits_stored=16,
    )
    return folder


def _only_series(folder: Path) -> Series:
    (series,) = load_studies([folder]).series
    return series


def _hu(path: Path) -> np.ndarray:
    dataset = pydicom.dcmread(path)
    return np.asarray(apply_modality_lut(dataset.pixel_array, dataset), dtype=np.float64)


def _half_hu(hu: np.ndarray) -> np.ndarray:
    """What a slope of 0.5 and an intercept of -1024 can hold: the nearest half HU."""
    return np.rint((hu - RESCALE_INTERCEPT) / RESCALE_SLOPE) * RESCALE_SLOPE + RESCALE_INTERCEPT


def _upscaled(series: Series, offset: float) -> np.ndarray:
    """Each source pixel repeated 2 x 2, plus an offset: known values at twice the size."""
    return np.stack([np.kron(series.values(i).astype(np.float64), np.ones((2, 2))) + offset for i in range(SLICES)])


def test_same_size_series_keeps_hu_patient_and_study_but_is_a_new_derived_series(source_folder, tmp_path):
    series = _only_series(source_folder)
    enhanced = np.stack([series.values(i).astype(np.float64) + 7.3 for i in range(SLICES)])
    derivation = Derivation.new("msdenoiser-noise", "Multi-scale denoiser", 1)
    paths = write_derived_series(series, enhanced, tmp_path, derivation)

    assert [path.name for path in paths] == [frame.path.name for frame in series.frames]
    sources = [pydicom.dcmread(frame.path) for frame in series.frames]
    derived = [pydicom.dcmread(path) for path in paths]
    for index, (source, dataset) in enumerate(zip(sources, derived, strict=True)):
        np.testing.assert_array_equal(_hu(paths[index]), _half_hu(enhanced[index]))
        assert dataset.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert dataset.SOPClassUID == SecondaryCaptureImageStorage
        assert dataset.file_meta.MediaStorageSOPInstanceUID == dataset.SOPInstanceUID
        assert list(dataset.ImageType[:2]) == ["DERIVED", "SECONDARY"]
        assert dataset.SeriesInstanceUID == derivation.series_uid != source.SeriesInstanceUID
        assert dataset.SOPInstanceUID != source.SOPInstanceUID
        assert dataset.StudyInstanceUID == source.StudyInstanceUID
        assert dataset.FrameOfReferenceUID == source.FrameOfReferenceUID
        assert (dataset.PatientName, dataset.PatientID) == (source.PatientName, source.PatientID)
        assert dataset.Modality == "CT"
        assert dataset.InstanceNumber == source.InstanceNumber
        assert dataset.SeriesNumber == source.SeriesNumber + 1000
        assert dataset.PixelSpacing == source.PixelSpacing
        assert dataset.ImagePositionPatient == source.ImagePositionPatient
        assert dataset.ImageOrientationPatient == source.ImageOrientationPatient
        assert dataset.SliceLocation == source.SliceLocation
        assert dataset.WindowCenter == source.WindowCenter and dataset.WindowWidth == source.WindowWidth
        assert dataset.RescaleType == "HU"
        assert "Multi-scale denoiser" in dataset.SeriesDescription and "enhanced" in dataset.SeriesDescription
        assert len(dataset.SeriesDescription) <= 64
        for words in ("msdenoiser-noise", "Multi-scale denoiser", f"MedViewer {__version__}", "not the acquired"):
            assert words in dataset.DerivationDescription
        (reference,) = dataset.SourceImageSequence
        assert reference.ReferencedSOPInstanceUID == source.SOPInstanceUID
        assert reference.ReferencedSOPClassUID == source.SOPClassUID
        assert reference.PurposeOfReferenceCodeSequence[0].CodeValue == "121322"
        assert "DerivationCodeSequence" not in dataset  # same size: nothing verifiable to say beyond the text
        assert dataset.ConversionType == "WSD" and dataset.BurnedInAnnotation == "NO"
        assert dataset.SecondaryCaptureDeviceManufacturer == "MedViewer"
        assert not any(element.tag.is_private for element in dataset)  # the source carries a private block
    assert len({dataset.SOPInstanceUID for dataset in derived}) == SLICES

    together = load_studies([source_folder, tmp_path])
    (study,) = together.studies
    assert [len(s) for s in study.series] == [SLICES, SLICES]
    assert study.series[1].description == derived[0].SeriesDescription


def test_double_size_halves_spacing_and_moves_the_position_to_the_new_first_pixel(source_folder, tmp_path):
    series = _only_series(source_folder)
    enhanced = _upscaled(series, offset=-3.0)
    paths = write_derived_series(series, enhanced, tmp_path, Derivation.new("bicubic-x2", "Bicubic", 2))

    first_source, first = pydicom.dcmread(series.frames[0].path), pydicom.dcmread(paths[0])
    assert (first.Rows, first.Columns) == (2 * SIZE, 2 * SIZE)
    assert [float(v) for v in first.PixelSpacing] == [ROW_SPACING / 2, COLUMN_SPACING / 2]
    # Hand-computed: the source's first pixel centre is at (-8, -12.8, 0) (write_ct_series puts it at
    # minus half the field of view); the row direction is x, the column direction (0, cos 20, sin 20).
    # The new first centre lies a quarter of a source pixel back along both: x - 0.25 * 0.5 mm,
    # and y, z - 0.25 * 0.8 mm along the column direction.
    assert [float(v) for v in first_source.ImagePositionPatient] == pytest.approx([-8.0, -12.8, 0.0])
    tilt = math.radians(TILT_DEG)
    expected = [-8.0 - 0.125, -12.8 - 0.2 * math.cos(tilt), 0.0 - 0.2 * math.sin(tilt)]
    assert [float(v) for v in first.ImagePositionPatient] == pytest.approx(expected, abs=1e-9)
    assert first.SliceLocation == first_source.SliceLocation
    assert first.SliceThickness == first_source.SliceThickness
    assert [(c.CodeValue, c.CodingSchemeDesignator) for c in first.DerivationCodeSequence] == [
        (codes.DCM.SpatialResampling.value, "DCM")
    ]

    # Independently of the formula: both grids cover the same square, so their centres coincide.
    def centre(dataset: pydicom.Dataset) -> np.ndarray:
        orientation = np.array([float(v) for v in dataset.ImageOrientationPatient])
        row_spacing, column_spacing = (float(v) for v in dataset.PixelSpacing)
        return (
            np.array([float(v) for v in dataset.ImagePositionPatient])
            + (dataset.Columns - 1) / 2 * column_spacing * orientation[:3]
            + (dataset.Rows - 1) / 2 * row_spacing * orientation[3:]
        )

    np.testing.assert_allclose(centre(first), centre(first_source), atol=1e-9)

    derived = _only_series(tmp_path)
    assert len(derived) == SLICES and derived.shape == (2 * SIZE, 2 * SIZE)
    assert derived.pixel_spacing_mm == pytest.approx((ROW_SPACING / 2, COLUMN_SPACING / 2))
    assert derived.slice_spacing_mm == pytest.approx(series.slice_spacing_mm)
    assert derived.units == "HU"
    for index in range(SLICES):
        np.testing.assert_array_equal(derived.values(index), _half_hu(enhanced[index]).astype(np.float32))


def test_values_beyond_int16_are_clipped_with_a_warning(source_folder, tmp_path, caplog):
    frame = _only_series(source_folder).frames[0]
    values = np.full((SIZE, SIZE), 40.0)
    values[0, 0] = -2000.0  # stored (-2000 + 1024) / 0.5 = -1952: signed samples are needed
    values[0, 1] = 20000.0  # stored 42048: over 32767
    with caplog.at_level(logging.WARNING, logger="medviewer.io.derived_dicom"):
        path = write_derived_slice(frame, values, tmp_path / "clipped.dcm", Derivation.new("m", "Method", 1), 1)
    assert "1 pixel values" in caplog.text
    dataset = pydicom.dcmread(path)
    assert (dataset.PixelRepresentation, dataset.BitsAllocated, dataset.BitsStored) == (1, 16, 16)
    hu = _hu(path)
    assert hu[0, 0] == -2000.0 and hu[0, 2] == 40.0
    assert hu[0, 1] == 32767 * RESCALE_SLOPE + RESCALE_INTERCEPT


def test_non_negative_stored_values_are_unsigned_and_keep_the_full_16_bits(source_folder, tmp_path, caplog):
    frame = _only_series(source_folder).frames[0]
    values = np.full((SIZE, SIZE), -1024.0)
    values[5, 5] = 30000.0  # stored 62048: fits uint16 only
    with caplog.at_level(logging.WARNING):
        path = write_derived_slice(frame, values, tmp_path / "wide.dcm", Derivation.new("m", "Method", 1), 1)
    assert not caplog.records
    assert pydicom.dcmread(path).PixelRepresentation == 0
    np.testing.assert_array_equal(_hu(path), values)


def test_inputs_are_never_overwritten(source_folder, tmp_path):
    series = _only_series(source_folder)
    before = {path.name: path.read_bytes() for path in source_folder.iterdir()}
    values = series.values(0)
    with pytest.raises(OutputError, match="refusing to overwrite an input"):
        write_derived_slice(series.frames[0], values, series.frames[0].path, Derivation.new("m", "Method", 1), 1)
    other_input = tmp_path / "other.dcm"
    other_input.write_bytes(b"an original")
    with pytest.raises(OutputError, match="refusing to overwrite an input"):
        write_derived_slice(series.frames[0], values, other_input, Derivation.new("m", "Method", 1), 1, [other_input])
    volume = np.stack([series.values(i) for i in range(SLICES)])
    with pytest.raises(OutputError, match="refusing to overwrite an input"):
        write_derived_series(series, volume, source_folder, Derivation.new("m", "Method", 1), overwrite=True)
    assert {path.name: path.read_bytes() for path in source_folder.iterdir()} == before
    assert other_input.read_bytes() == b"an original"


def test_an_existing_series_is_kept_unless_overwrite_is_asked_for(source_folder, tmp_path):
    series = _only_series(source_folder)
    volume = np.stack([series.values(i) for i in range(SLICES)])
    first = write_derived_series(series, volume, tmp_path, Derivation.new("m", "Method", 1))
    contents = [path.read_bytes() for path in first]
    with pytest.raises(OutputError, match="already exists"):
        write_derived_series(series, volume, tmp_path, Derivation.new("m", "Method", 1))
    assert [path.read_bytes() for path in first] == contents
    write_derived_series(series, volume, tmp_path, Derivation.new("m", "Method", 1), overwrite=True)
    assert [path.read_bytes() for path in first] != contents


@pytest.mark.parametrize(
    ("shape", "scale"),
    [((SIZE, SIZE + 1), 1), ((SIZE, SIZE), 2), ((2 * SIZE, 2 * SIZE), 1), ((SIZE, SIZE, 3), 1), ((SIZE,), 1)],
)
def test_an_image_of_the_wrong_size_or_kind_is_refused(source_folder, tmp_path, shape, scale):
    frame = _only_series(source_folder).frames[0]
    with pytest.raises(OutputError):
        write_derived_slice(frame, np.zeros(shape), tmp_path / "out.dcm", Derivation.new("m", "Method", scale), 1)
    assert not any(tmp_path.iterdir())


def test_nan_is_refused_rather_than_written_as_a_number(source_folder, tmp_path):
    frame = _only_series(source_folder).frames[0]
    values = np.zeros((SIZE, SIZE))
    values[3, 3] = np.nan
    with pytest.raises(OutputError, match="NaN"):
        write_derived_slice(frame, values, tmp_path / "out.dcm", Derivation.new("m", "Method", 1), 1)
    assert not any(tmp_path.iterdir())


def test_colour_source_round_trips_as_rgb(tmp_path):
    source_path = tmp_path / "colour.dcm"
    shutil.copy(get_testdata_file("SC_rgb_small_odd.dcm", download=False), source_path)
    (series,) = load_studies([source_path]).series
    rgb = series.values(0)
    upscaled = np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1).astype(np.float64)
    upscaled[0, 0] = [-5.0, 127.6, 300.0]  # floats are rounded and clipped to 8 bits
    out = tmp_path / "out"
    (path,) = write_derived_series(series, upscaled[np.newaxis], out, Derivation.new("sr", "Colour SR", 2))

    dataset = pydicom.dcmread(path)
    assert (dataset.PhotometricInterpretation, dataset.SamplesPerPixel, dataset.PlanarConfiguration) == ("RGB", 3, 0)
    assert (dataset.BitsAllocated, dataset.Rows, dataset.Columns) == (8, 6, 6)
    assert "RescaleSlope" not in dataset and "WindowCenter" not in dataset
    expected = np.clip(np.rint(upscaled), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(dataset.pixel_array, expected)
    assert dataset.pixel_array[0, 0].tolist() == [0, 128, 255]
    np.testing.assert_array_equal(_only_series(out).values(0), expected)


def test_frames_of_one_multi_frame_file_get_numbered_names_and_frame_references(tmp_path):
    source_path = tmp_path / "two_frames.dcm"
    shutil.copy(get_testdata_file("SC_rgb_rle_2frame.dcm", download=False), source_path)
    (series,) = load_studies([source_path]).series
    volume = np.stack([series.values(i) for i in range(2)])
    paths = write_derived_series(series, volume, tmp_path / "out", Derivation.new("m", "Method", 1))
    assert [path.name for path in paths] == ["IM_0001.dcm", "IM_0002.dcm"]
    source_uid = pydicom.dcmread(source_path, stop_before_pixels=True).SOPInstanceUID
    for number, path in enumerate(paths, start=1):
        dataset = pydicom.dcmread(path)
        assert dataset.InstanceNumber == number
        assert "NumberOfFrames" not in dataset
        (reference,) = dataset.SourceImageSequence
        assert (reference.ReferencedSOPInstanceUID, reference.ReferencedFrameNumber) == (source_uid, number)
        np.testing.assert_array_equal(dataset.pixel_array, volume[number - 1])


def test_big_endian_source_without_rescale_gets_an_identity_rescale(tmp_path):
    source_path = tmp_path / "mr.dcm"
    shutil.copy(get_testdata_file("MR_small_bigendian.dcm", download=False), source_path)
    (series,) = load_studies([source_path]).series
    values = series.values(0).astype(np.float64) + 0.4  # MR values are whole numbers: rounded back
    path = write_derived_slice(series.frames[0], values, tmp_path / "out.dcm", Derivation.new("m", "Method", 1), 1)
    dataset = pydicom.dcmread(path)
    assert dataset.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert (float(dataset.RescaleSlope), float(dataset.RescaleIntercept), dataset.RescaleType) == (1.0, 0.0, "US")
    np.testing.assert_array_equal(_hu(path), np.rint(values))


def test_png_source_keeps_8_bits_and_has_no_patient_or_geometry(tmp_path):
    grey = (np.arange(16 * 16).reshape(16, 16) % 256).astype(np.uint8)
    png = tmp_path / "knee.png"
    Image.fromarray(grey).save(png)
    (series,) = load_studies([png]).series
    values = np.kron(series.values(0).astype(np.float64), np.ones((2, 2))) + 0.4
    values[0, 0] = 300.0
    derivation = Derivation.new("unsharp", "Unsharp mask", 2, codes=[codes.cid7203.UnsharpMask])
    out = tmp_path / "out"
    (path,) = write_derived_series(series, values[np.newaxis], out, derivation)

    dataset = pydicom.dcmread(path)
    assert path.name == "IM_0001.dcm"
    assert dataset.SOPClassUID == SecondaryCaptureImageStorage and dataset.Modality == "OT"
    assert (dataset.BitsAllocated, dataset.PixelRepresentation, dataset.PhotometricInterpretation) == (
        8,
        0,
        "MONOCHROME2",
    )
    assert dataset.PatientName == "" and dataset.PatientID == ""
    assert pydicom.uid.UID(dataset.StudyInstanceUID).is_valid
    for absent in ("ImagePositionPatient", "PixelSpacing", "FrameOfReferenceUID", "SourceImageSequence"):
        assert absent not in dataset
    assert "PNG file knee.png" in dataset.DerivationDescription
    assert dataset.SeriesDescription.startswith("knee.png [enhanced: Unsharp mask")
    assert [code.CodeValue for code in dataset.DerivationCodeSequence] == [
        codes.DCM.UnsharpMask.value,
        codes.DCM.SpatialResampling.value,
    ]
    expected = np.clip(np.rint(values), 0, 255)
    np.testing.assert_array_equal(dataset.pixel_array, expected)
    np.testing.assert_array_equal(_only_series(out).values(0), expected)


def test_float_values_without_a_source_keep_their_precision_through_a_fitted_rescale(tmp_path):
    values = np.linspace(0.0, 1.0, 20 * 30).reshape(20, 30)
    path = write_derived_slice(None, values, tmp_path / "out.dcm", Derivation.new("m", "Method", 1), 1)
    dataset = pydicom.dcmread(path)
    assert dataset.PixelRepresentation == 0 and dataset.Modality == "OT"
    np.testing.assert_allclose(_hu(path), values, atol=0.5 / 65535 + 1e-12)


def test_non_ascii_method_names_switch_to_utf8_without_garbling_the_patient(source_folder, tmp_path):
    frame = _only_series(source_folder).frames[0]
    derivation = Derivation.new("debruiteur", "Débruiteur à échelles", 1)
    path = write_derived_slice(frame, np.zeros((SIZE, SIZE)), tmp_path / "out.dcm", derivation, 1)
    dataset = pydicom.dcmread(path)
    assert dataset.SpecificCharacterSet == "ISO_IR 192"
    assert dataset.PatientName == "Phantom^Head"
    assert "Débruiteur à échelles" in dataset.SeriesDescription
    assert "Débruiteur à échelles" in dataset.DerivationDescription


def test_series_description_keeps_the_method_name_within_64_characters():
    assert series_description("Head 5mm", "Bicubic") == "Head 5mm [enhanced: Bicubic, not the acquired image]"
    assert series_description("", "Bicubic") == "[enhanced: Bicubic, not the acquired image]"
    # 17 + 1 + 57 > 64: the note shortens before the source's description is cut.
    assert (
        series_description("Synthetic head CT", "Multi-scale denoiser")
        == "Synthetic head CT [enhanced: Multi-scale denoiser, not acquired]"
    )
    long_source = "Routine head without contrast, soft tissue kernel, 0.625 mm, axial"
    described = series_description(long_source, "Multi-scale denoiser")
    assert len(described) <= 64
    assert described.startswith("Routine head")
    assert described.endswith("[enhanced: Multi-scale denoiser, not acquired]")
    long_method = "A very long model name that goes on and on"
    assert series_description(long_source, long_method) == f"[enhanced: {long_method}]"
    assert len(series_description("x", "m" * 80)) == 64


def test_derivation_is_validated_and_each_new_one_gets_its_own_series():
    first, second = Derivation.new("m", "Method", 1), Derivation.new("m", "Method", 1)
    assert first.series_uid != second.series_uid
    assert pydicom.uid.UID(first.series_uid).is_valid
    with pytest.raises(ValueError):
        Derivation.new("m", "Method", 0)
    with pytest.raises(ValueError):
        Derivation.new("", "Method", 1)


def test_a_jpeg_source_stays_marked_lossy_and_ycbcr_becomes_rgb(tmp_path):
    source_path = tmp_path / "photo.dcm"
    dataset = pydicom.dcmread(get_testdata_file("SC_rgb_small_odd_jpeg.dcm", download=False))
    del dataset.LossyImageCompression  # the syntax alone must be enough to know
    dataset.DerivationDescription = "Cropped"
    dataset.save_as(source_path)
    (series,) = load_studies([source_path]).series
    rgb = series.values(0)
    path = write_derived_slice(series.frames[0], rgb, tmp_path / "out.dcm", Derivation.new("m", "Method", 1), 1)
    derived = pydicom.dcmread(path)
    assert derived.LossyImageCompression == "01"
    assert derived.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert derived.PhotometricInterpretation == "RGB"
    np.testing.assert_array_equal(derived.pixel_array, rgb)
    assert derived.DerivationDescription.endswith("The source image was itself derived: Cropped")


def test_frames_of_an_enhanced_multi_frame_file_take_geometry_and_rescale_from_functional_groups(tmp_path):
    """An Enhanced-CT-like file keeps spacing, orientation, positions and rescale in functional groups
    (PS3.3 C.7.6.16); the derived single-frame images must carry them at the top level."""
    (slice_path,) = write_ct_series(tmp_path / "plain", head_phantom_hu(1, 8, seed=1), rescale_slope=2.0)
    dataset = pydicom.dcmread(slice_path)
    frames = np.stack([dataset.pixel_array, dataset.pixel_array[::-1]])
    for keyword in ("PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient", "RescaleSlope"):
        delattr(dataset, keyword)
    del dataset.RescaleIntercept, dataset.RescaleType
    shared = pydicom.Dataset()
    measures, orientation, transformation = pydicom.Dataset(), pydicom.Dataset(), pydicom.Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.6, 0.4], 1.0
    orientation.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # sagittal: rows along y, columns down z
    transformation.RescaleSlope, transformation.RescaleIntercept, transformation.RescaleType = 2.0, -1024.0, "HU"
    shared.PixelMeasuresSequence = [measures]
    shared.PlaneOrientationSequence = [orientation]
    shared.PixelValueTransformationSequence = [transformation]
    dataset.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for x_mm in (10.0, 12.0):
        group, position = pydicom.Dataset(), pydicom.Dataset()
        position.ImagePositionPatient = [x_mm, -5.0, 20.0]
        group.PlanePositionSequence = [position]
        per_frame.append(group)
    dataset.PerFrameFunctionalGroupsSequence = per_frame
    dataset.NumberOfFrames = 2
    dataset.PixelData = frames.astype("<u2").tobytes()
    source_path = tmp_path / "enhanced.dcm"
    dataset.save_as(source_path)

    (series,) = load_studies([source_path]).series
    assert len(series) == 2 and series.pixel_spacing_mm == (0.6, 0.4)
    volume = np.stack([np.kron(series.values(i).astype(np.float64), np.ones((2, 2))) for i in range(2)])
    paths = write_derived_series(series, volume, tmp_path / "out", Derivation.new("m", "Method", 2))

    for index, path in enumerate(paths):
        derived = pydicom.dcmread(path)
        assert "SharedFunctionalGroupsSequence" not in derived and "PerFrameFunctionalGroupsSequence" not in derived
        assert [float(v) for v in derived.PixelSpacing] == [0.3, 0.2]
        assert [float(v) for v in derived.ImageOrientationPatient] == [0, 1, 0, 0, 0, -1]
        # A quarter source pixel back along a row (+y, 0.4 mm columns) and down a column (-z, 0.6 mm rows).
        x_mm = series.frames[index].position[0]
        assert [float(v) for v in derived.ImagePositionPatient] == pytest.approx([x_mm, -5.0 - 0.1, 20.0 + 0.15])
        assert (float(derived.RescaleSlope), float(derived.RescaleIntercept), derived.RescaleType) == (
            2.0,
            -1024.0,
            "HU",
        )
        np.testing.assert_array_equal(_hu(path), volume[index])


def test_a_bad_frame_late_in_the_volume_leaves_no_half_series(source_folder, tmp_path):
    series = _only_series(source_folder)
    volume = np.stack([series.values(i).astype(np.float64) for i in range(SLICES)])
    volume[-1, 0, 0] = np.inf
    with pytest.raises(OutputError, match="NaN or infinite"):
        write_derived_series(series, volume, tmp_path / "out", Derivation.new("m", "Method", 1))
    assert not (tmp_path / "out").exists()


def _derived_from(dataset: pydicom.Dataset, folder: Path, scale: int = 1) -> pydicom.Dataset:
    """The derived image of an edited source, with values of the right size; read back by pydicom."""
    folder.mkdir(parents=True, exist_ok=True)
    source_path = folder / "source.dcm"
    dataset.save_as(source_path)
    (series,) = load_studies([source_path]).series
    values = np.kron(series.values(0).astype(np.float64), np.ones((scale, scale)))
    path = write_derived_slice(series.frames[0], values, folder / "out.dcm", Derivation.new("m", "Method", scale), 1)
    return pydicom.dcmread(path)


# PS3.3 C.7.6.1.1.1: the first value is the direction of the rows (the row vector, towards the right edge), the
# second the direction of the columns (the column vector, towards the bottom); L, P, H are +x, +y, +z in LPS.
@pytest.mark.parametrize(
    ("orientation", "expected"),
    [
        ((1, 0, 0, 0, 1, 0), ["L", "P"]),  # axial, as displayed: patient's left on the right, posterior down
        ((1, 0, 0, 0, 0, -1), ["L", "F"]),  # coronal
        ((0, 1, 0, 0, 0, -1), ["P", "F"]),  # sagittal
        ((-1, 0, 0, 0, -1, 0), ["R", "A"]),  # axial, turned 180 degrees
        # 30 degrees oblique about z: rows mostly left (cos 30 = 0.87) and partly posterior (sin 30 = 0.5),
        # columns mostly posterior and partly right; the principal direction comes first.
        (
            (math.cos(math.pi / 6), math.sin(math.pi / 6), 0, -math.sin(math.pi / 6), math.cos(math.pi / 6), 0),
            ["LP", "PR"],
        ),
    ],
    ids=["axial", "coronal", "sagittal", "axial-180", "oblique"],
)
def test_patient_orientation_names_the_row_then_the_column_direction(orientation, expected):
    assert patient_orientation(orientation) == expected
    assert patient_orientation(orientation, ["A", "F"]) == expected  # the vectors win over the source's letters


def test_patient_orientation_without_vectors_keeps_a_valid_source_value_else_is_unknown():
    assert patient_orientation(None, ["L", "F"]) == ["L", "F"]  # a radiograph's own
    assert patient_orientation(None, ["lp", "F"]) == ["LP", "F"]
    for invalid in (["X", "P"], ["LR", "F"], ["L"], ["L", ""], "LF", None, ["L", "F", "H"]):
        assert patient_orientation(None, invalid) == "", invalid
    # A quadruped's letters are not LPS names: its own value is kept, the vectors are not turned into L/P/H.
    assert patient_orientation((1, 0, 0, 0, 1, 0), ["LE", "CR"], "QUADRUPED") == ["LE", "CR"]
    assert patient_orientation((1, 0, 0, 0, 1, 0), None, "QUADRUPED") == ""


def test_written_patient_orientation_follows_the_tilted_source_and_survives_upscaling(source_folder, tmp_path):
    series = _only_series(source_folder)
    paths = write_derived_series(series, _upscaled(series, 0.0), tmp_path, Derivation.new("bicubic-x2", "Bicubic", 2))
    # Rows along +x; columns (0, cos 20, sin 20): posterior, and head-wards by sin 20 = 0.34, more than
    # geometry.SECONDARY_COMPONENT, so the column letters are "PH".
    assert list(pydicom.dcmread(paths[0]).PatientOrientation) == ["L", "PH"]


@pytest.mark.parametrize(
    ("source_side", "body_part", "image_laterality", "expected"),
    [
        ("", None, False, ""),  # nothing named: may be paired, side unknown
        ("L", None, False, "L"),
        ("", "KNEE", False, ""),
        ("r", "BREAST", False, "R"),
        ("B", "EYE", False, ""),  # B is no Laterality value (R, L only): unknown
        ("", "KOPF", False, ""),  # a local term: may be paired
        ("", "CSPINE", False, None),  # unpaired: must be absent
        ("R", "chest", False, None),
        ("L", "BREAST", True, None),  # Image Laterality says the side, so Laterality must be absent
    ],
)
def test_laterality_is_written_when_the_body_part_may_be_paired(source_side, body_part, image_laterality, expected):
    """PS3.3 C.7.3.1: Laterality is required (possibly empty) if the body part examined is paired and Image
    Laterality is absent, and must be absent otherwise."""
    assert laterality(source_side, body_part, image_laterality) == expected


def test_written_laterality_follows_the_body_part(tmp_path):
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    assert "BodyPartExamined" not in source and source.Laterality == ""
    assert _derived_from(source, tmp_path / "none").Laterality == ""
    source.BodyPartExamined, source.Laterality = "HEAD", "R"
    assert "Laterality" not in _derived_from(source, tmp_path / "head")
    source.BodyPartExamined = "KNEE"
    assert _derived_from(source, tmp_path / "knee").Laterality == "R"


@pytest.mark.parametrize(
    "spacing", [[0, 0], [-0.5, 0.5], [0.5], [0.5, 0.5, 0.5]], ids=["zero", "negative", "one", "three"]
)
def test_a_spacing_that_means_unknown_is_left_out_not_copied(tmp_path, spacing):
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    source.PixelSpacing = spacing
    source.ImagerPixelSpacing = spacing
    source.PixelAspectRatio = [1, 1]
    for scale in (1, 2):
        derived = _derived_from(source, tmp_path / str(scale), scale)
        for absent in ("PixelSpacing", "ImagerPixelSpacing", "PixelAspectRatio"):
            assert absent not in derived, absent
        assert "ImagePositionPatient" in derived if scale == 1 else "ImagePositionPatient" not in derived
        (series,) = load_studies([tmp_path / str(scale) / "out.dcm"]).series
        assert series.pixel_spacing_mm is None


def test_pixel_aspect_ratio_is_kept_only_when_it_alone_says_the_pixels_are_not_square(tmp_path):
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    source.PixelAspectRatio = [4, 3]
    assert "PixelAspectRatio" not in _derived_from(source, tmp_path / "with-spacing")  # Pixel Spacing says it
    del source.PixelSpacing
    assert list(_derived_from(source, tmp_path / "without").PixelAspectRatio) == [4, 3]
    source.PixelAspectRatio = [2, 2]
    assert "PixelAspectRatio" not in _derived_from(source, tmp_path / "square")
    source.PixelAspectRatio = None
    assert "PixelAspectRatio" not in _derived_from(source, tmp_path / "empty")


def test_zero_patient_weight_and_size_mean_unknown_and_are_left_out(tmp_path):
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    assert float(source.PatientWeight) == 0.0
    source.PatientSize = 0
    derived = _derived_from(source, tmp_path / "zero")
    assert "PatientWeight" not in derived and "PatientSize" not in derived
    source.PatientWeight, source.PatientSize = 72.5, 1.8
    derived = _derived_from(source, tmp_path / "known")
    assert (float(derived.PatientWeight), float(derived.PatientSize)) == (72.5, 1.8)


def test_acquisition_attributes_are_dropped_while_image_plane_and_frame_of_reference_stay(tmp_path):
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    derived = _derived_from(source, tmp_path)
    # CT Image and CT acquisition attributes (PS3.3 C.8.2.1) are in no module of the SC Image IOD.
    for dropped in (
        "KVP",
        "ScanOptions",
        "ConvolutionKernel",
        "ExposureTime",
        "XRayTubeCurrent",
        "FilterType",
        "DataCollectionDiameter",
        "ReconstructionDiameter",
        "GantryDetectorTilt",
        "TableHeight",
        "ContrastBolusAgent",
        "DistanceSourceToDetector",
    ):
        assert dropped in source and dropped not in derived, dropped
    for kept in (
        "ImagePositionPatient",
        "ImageOrientationPatient",
        "SliceThickness",
        "SpacingBetweenSlices",
        "SliceLocation",
        "FrameOfReferenceUID",
        "PositionReferenceIndicator",
        "PixelSpacing",
    ):
        assert derived[kept].value == source[kept].value, kept
    # Kept from the IOD: General Equipment, General Series, General Acquisition.
    for kept in ("Manufacturer", "PatientPosition", "AcquisitionNumber"):
        assert derived[kept].value == source[kept].value, kept
    assert not any(element.tag.is_private for element in derived)


def test_every_kept_keyword_is_a_dicom_keyword():
    """A misspelt keyword would silently drop what the source carries."""
    keywords = [keyword for module in _SC_IMAGE_IOD.values() for keyword in module] + list(STANDARD_EXTENDED_ATTRIBUTES)
    assert [keyword for keyword in keywords if tag_for_keyword(keyword) is None] == []
    assert len(_SC_IMAGE_IOD) == 21  # PS3.3 Table A.8-1 less Overlay Plane
