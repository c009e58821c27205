"""DICOM decoding equals pydicom's on every bundled test file; the fast header scan equals pydicom's header."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from medviewer.cli import main
from medviewer.errors import UnreadableFileError
from medviewer.io.dicom import read_dicom_header, to_uint8_rgb
from medviewer.io.discover import is_dicomdir
from medviewer.io.study import load_studies
from medviewer.io.window import Window

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
ALL_FILES = sorted(path for path in TEST_FILES.rglob("*") if path.is_file())


def _read_reference(path: Path):
    """(dataset, all frames as pydicom decodes them) or (dataset, exception) or (None, None)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            dataset = pydicom.dcmread(path, force=True)
        except Exception:
            return None, None
        if not any(k in dataset for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
            return dataset, None
        try:
            return dataset, dataset.pixel_array
        except Exception as error:
            return dataset, error


def _reference_frames(dataset: Dataset, pixels: np.ndarray) -> list[np.ndarray]:
    """Each frame after pydicom's modality LUT (grayscale) or its colour conversion, as our API types them."""
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    stack = pixels if frames > 1 else pixels[np.newaxis]
    out = []
    for frame in stack:
        if dataset.get("PhotometricInterpretation") == "PALETTE COLOR":
            rgb = apply_color_lut(frame, dataset)
            out.append(to_uint8_rgb(rgb, 16 if rgb.dtype == np.uint16 else 8))
        elif int(dataset.get("SamplesPerPixel", 1)) > 1:
            out.append(to_uint8_rgb(frame, int(dataset.BitsStored)))
        else:
            out.append(np.asarray(apply_modality_lut(frame, dataset), dtype=np.float32))
    return out


REFERENCES = {path: _read_reference(path) for path in ALL_FILES}
DECODABLE = [p for p, (ds, px) in REFERENCES.items() if isinstance(px, np.ndarray)]
# pydicom fails on badVR.dcm only because its NumberOfFrames is '1A'; we load the 15 frames its data holds.
RECOVERED_FRAME_COUNT = {"badVR.dcm": 15}
UNDECODABLE = [
    p for p, (ds, px) in REFERENCES.items() if isinstance(px, Exception) and p.name not in RECOVERED_FRAME_COUNT
]
NO_PIXELS = [
    p for p, (ds, px) in REFERENCES.items() if ds is not None and px is None and not is_dicomdir(p)
]  # DICOMDIRs index images: tested apart


def test_the_bundled_set_is_what_we_think():
    # Guards against a pydicom upgrade silently emptying the parametrised tests below.
    assert len(DECODABLE) >= 80 and len(UNDECODABLE) >= 3 and len(NO_PIXELS) >= 20


@pytest.mark.parametrize("path", DECODABLE, ids=lambda p: str(p.relative_to(TEST_FILES)))
def test_every_frame_equals_pydicom(path: Path):
    dataset, pixels = REFERENCES[path]
    expected = _reference_frames(dataset, pixels)
    loaded = load_studies([path])
    assert not loaded.skipped, loaded.skipped
    (series,) = loaded.series
    assert len(series) == len(expected)
    # Frames may be reordered by position for multi-frame files: compare per source frame index.
    for position, frame in enumerate(series.frames):
        ours = series.values(position)
        reference = expected[frame.index_in_file]
        assert ours.dtype == reference.dtype and ours.shape == reference.shape
        np.testing.assert_array_equal(ours, reference)


@pytest.mark.parametrize("path", DECODABLE[::4], ids=lambda p: str(p.relative_to(TEST_FILES)))
def test_cli_export_npy_equals_pydicom(path: Path, tmp_path: Path):
    dataset, pixels = REFERENCES[path]
    last = len(_reference_frames(dataset, pixels)) - 1
    out = tmp_path / "frame.npy"
    assert main(["export", str(path), "-o", str(out), "--frame", str(last)]) == 0
    series = load_studies([path]).series[0]
    expected = _reference_frames(dataset, pixels)[series.frames[last].index_in_file]
    np.testing.assert_array_equal(np.load(out), expected)


@pytest.mark.parametrize("path", UNDECODABLE, ids=lambda p: p.name)
def test_files_pydicom_cannot_decode_give_one_clean_line(path: Path, tmp_path: Path, capsys):
    code = main(["export", str(path), "-o", str(tmp_path / "x.npy")])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and path.name in lines[0] and "Traceback" not in captured.err
    assert not (tmp_path / "x.npy").exists()


@pytest.mark.parametrize("name", sorted(RECOVERED_FRAME_COUNT))
def test_a_file_whose_only_fault_is_its_frame_count_loads_what_its_data_holds(name: str):
    path = TEST_FILES / name
    (series,) = load_studies([path]).series
    assert len(series) == RECOVERED_FRAME_COUNT[name]
    assert any("NumberOfFrames" in note and "pixel data holds" in note for note in series.notes)
    # The reference: pydicom itself, once told the count the data holds.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = pydicom.dcmread(path)
    dataset.NumberOfFrames = RECOVERED_FRAME_COUNT[name]
    expected = _reference_frames(dataset, dataset.pixel_array)
    for position, frame in enumerate(series.frames):
        np.testing.assert_array_equal(series.values(position), expected[frame.index_in_file])


@pytest.mark.parametrize("path", NO_PIXELS[:12], ids=lambda p: p.name)
def test_non_image_objects_are_skipped_with_a_reason(path: Path):
    loaded = load_studies([path])
    assert not loaded.series
    assert len(loaded.skipped) == 1 and loaded.skipped[0].reason


def test_pydicoms_dicomdir_loads_every_referenced_image():
    from pydicom.fileset import FileSet

    dicomdir = TEST_FILES / "dicomdirtests" / "DICOMDIR"
    referenced = [Path(instance.path) for instance in FileSet(pydicom.dcmread(dicomdir))]
    with_pixels = {path.resolve() for path in referenced if "PixelData" in pydicom.dcmread(path, force=True)}
    loaded = load_studies([dicomdir])
    loaded_paths = {frame.path.resolve() for series in loaded.series for frame in series.frames}
    assert with_pixels and loaded_paths == with_pixels
    assert len(loaded.skipped) == len(referenced) - len(with_pixels)


_SCANNED_FIELDS = [
    "sop_instance_uid",
    "study_uid",
    "series_uid",
    "modality",
    "rows",
    "columns",
    "bits_allocated",
    "bits_stored",
    "pixel_representation",
    "photometric",
    "instance_number",
    "orientation",
    "positions",
    "pixel_spacing_mm",
    "rescale_slope",
    "rescale_intercept",
    "windows",
    "series_description",
    "patient_name",
    "transfer_syntax_uid",
]


def _pydicom_header(path: Path):
    import medviewer.io.dicom as dicom_module

    return dicom_module._header_from_pydicom(path)


def _fast_scanned(path: Path) -> bool:
    try:
        return read_dicom_header(path).dataset is None
    except UnreadableFileError:
        return False


FAST_SCANNED = [path for path in ALL_FILES if _fast_scanned(path)]


def test_the_fast_scanner_covers_most_bundled_images():
    assert len(FAST_SCANNED) >= 40


@pytest.mark.parametrize("path", FAST_SCANNED, ids=lambda p: str(p.relative_to(TEST_FILES)))
def test_fast_header_scan_equals_pydicom(path: Path):
    ours = read_dicom_header(path)
    reference = _pydicom_header(path)
    for name in _SCANNED_FIELDS:
        assert getattr(ours, name) == getattr(reference, name), name
    # The pixel data offset points at pydicom's PixelData bytes.
    with open(path, "rb") as handle:
        handle.seek(ours.pixel_data_offset)
        start = handle.read(64)
    assert bytes(reference.dataset.PixelData[:64]) == start


def test_fast_scanner_is_used_for_ordinary_ct(tmp_path: Path):
    path = _write_ct(tmp_path / "ct.dcm", np.arange(16, dtype=np.int16).reshape(4, 4), 1.0, -1024.0, 16, 1)
    assert read_dicom_header(path).dataset is None


# --- property tests of the value pipeline: our decode + rescale equals pydicom's ---------------------


def _write_ct(
    path: Path,
    stored: np.ndarray,
    slope: float,
    intercept: float,
    bits_stored: int,
    representation: int,
    transfer_syntax=ExplicitVRLittleEndian,
    photometric="MONOCHROME2",
) -> Path:
    dataset = Dataset()
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = transfer_syntax
    dataset.file_meta.MediaStorageSOPClassUID = pydicom.uid.CTImageStorage
    dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset.SOPClassUID = pydicom.uid.CTImageStorage
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.Modality = "CT"
    dataset.Rows, dataset.Columns = stored.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = photometric
    dataset.BitsAllocated = stored.dtype.itemsize * 8
    dataset.BitsStored = bits_stored
    dataset.HighBit = bits_stored - 1
    dataset.PixelRepresentation = representation
    dataset.RescaleSlope = f"{slope:.6g}"
    dataset.RescaleIntercept = f"{intercept:.6g}"
    dataset.PixelData = stored.astype(stored.dtype.newbyteorder("<")).tobytes()
    dataset.save_as(
        path, implicit_vr=transfer_syntax == ImplicitVRLittleEndian, little_endian=True, enforce_file_format=True
    )
    return path


_dtypes = st.sampled_from([(np.uint8, 0), (np.int8, 1), (np.uint16, 0), (np.int16, 1), (np.uint32, 0), (np.int32, 1)])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dtype_and_sign=_dtypes,
    shape=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    unused_bits=st.integers(0, 7),
    slope=st.sampled_from([1.0, 0.5, 2.0, 0.000123, 7.25]),
    intercept=st.sampled_from([0.0, -1024.0, 3.5, -0.001]),
    implicit=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_value_pipeline_matches_pydicom(
    tmp_path_factory, dtype_and_sign, shape, unused_bits, slope, intercept, implicit, seed
):
    dtype, representation = dtype_and_sign
    bits = np.dtype(dtype).itemsize * 8
    bits_stored = bits - min(unused_bits, bits - 1)
    info = np.iinfo(dtype)
    # Any bit pattern, including garbage in the unused high bits, which both readers must ignore.
    stored = np.random.default_rng(seed).integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    path = _write_ct(
        tmp_path_factory.mktemp("p") / "x.dcm",
        stored,
        slope,
        intercept,
        bits_stored,
        representation,
        ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian,
    )
    reference_dataset = pydicom.dcmread(path)
    expected = np.asarray(apply_modality_lut(reference_dataset.pixel_array, reference_dataset), dtype=np.float32)
    series = load_studies([path]).series[0]
    assert series.first.header.dataset is None  # the fast path was exercised
    np.testing.assert_array_equal(series.values(0), expected)


# --- robustness: damaged files are loaded or skipped with a reason, never a crash ---------------------

_SAMPLE_BYTES = (Path(__file__).resolve().parents[2] / "resources" / "sample_study" / "IM_00001.dcm").read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(0, len(_SAMPLE_BYTES)),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=6),
)
def test_damaged_files_never_crash_the_loader(tmp_path_factory, cut, flips):
    data = bytearray(_SAMPLE_BYTES[:cut])
    for offset, value in flips:
        if offset < len(data):
            data[offset] = value
    path = tmp_path_factory.mktemp("damaged") / "x.dcm"
    path.write_bytes(bytes(data))
    loaded = load_studies([path])
    assert len(loaded.series) + len(loaded.skipped) == 1
    for skipped in loaded.skipped:
        assert skipped.reason and "\n" not in skipped.reason
    for series in loaded.series:
        try:
            values = series.values(0)
        except UnreadableFileError as error:
            assert error.reason and "\n" not in error.reason
        else:
            assert values.shape == series.shape


# --- VOI LUT Sequence: the file's own display mapping is the default -----------------------------------


def _with_voi_lut(path: Path, bits: int, inverted_mono1: bool = False) -> Path:
    """MR_small with a non-linear (square-root) VOI LUT of 2**bits - 1 levels, and no window tags."""
    dataset = pydicom.dcmread(pydicom.data.get_testdata_file("MR_small.dcm"))
    for keyword in ("WindowCenter", "WindowWidth"):
        if keyword in dataset:
            delattr(dataset, keyword)
    first, entries = 0, 4096
    lut = np.rint(np.sqrt(np.arange(entries) / (entries - 1)) * ((1 << bits) - 1)).astype(np.uint16)
    item = Dataset()
    item.LUTDescriptor = [entries, first, bits]
    item.add_new(0x00283006, "US", lut.tolist())  # LUT Data: US or OW; US for the list
    dataset.VOILUTSequence = pydicom.Sequence([item])
    if inverted_mono1:
        dataset.PhotometricInterpretation = "MONOCHROME1"
    dataset.save_as(path)
    return path


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_default_display_applies_the_files_voi_lut_like_pydicom(tmp_path: Path, bits: int):
    path = _with_voi_lut(tmp_path / "voi.dcm", bits)
    reference = pydicom.dcmread(path)
    expected = apply_voi_lut(apply_modality_lut(reference.pixel_array, reference), reference) / ((1 << bits) - 1)
    (series,) = load_studies([path]).series
    assert series.has_voi_lut
    np.testing.assert_allclose(series.display(0), expected, atol=1e-6)
    # The exported PNG is that display; a manual window overrides the LUT.
    out = tmp_path / "out.png"
    assert main(["export", str(path), "-o", str(out)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out)), np.rint(expected * 255).astype(np.uint8))
    manual = series.display(0, Window(600, 1200))
    assert not np.allclose(manual, expected)


def test_voi_lut_on_monochrome1_is_inverted_for_display(tmp_path: Path):
    path = _with_voi_lut(tmp_path / "voi1.dcm", 12, inverted_mono1=True)
    (series,) = load_studies([path]).series
    normal = load_studies([_with_voi_lut(tmp_path / "voi2.dcm", 12)]).series[0]
    np.testing.assert_allclose(series.display(0), 1.0 - normal.display(0), atol=1e-6)


def test_a_decoder_panic_is_a_clean_error(monkeypatch):
    """Rust decoders (pylibjpeg-rle) raise pyo3's PanicException, a BaseException, on malformed data."""

    class PanicException(BaseException):
        pass

    def panicking_pixel_array(self):
        raise PanicException("index out of bounds: the len is 8192 but the index is 8193")

    path = pydicom.data.get_testdata_file("MR_small_RLE.dcm")
    (series,) = load_studies([path]).series
    monkeypatch.setattr(Dataset, "pixel_array", property(panicking_pixel_array))
    with pytest.raises(UnreadableFileError, match="cannot decode RLE Lossless pixel data .index out of bounds"):
        series.values(0)
