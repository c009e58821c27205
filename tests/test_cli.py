"""The `medviewer` command line: help and version, `info`, `export` checked against pydicom/Pillow/tifffile,
one-line errors with exit code 2 that leave every input untouched, and atomic output."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_modality_lut, apply_windowing
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

import medviewer
from medviewer.cli import main
from medviewer.io.synthetic import head_phantom_hu, write_ct_series

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_STUDY = REPO_ROOT / "resources" / "sample_study"
SAMPLE_PNG = REPO_ROOT / "resources" / "sample.png"
SAMPLE_FRAMES = 24
CONSOLE_SCRIPT = Path(sys.executable).parent / "medviewer"


def _bundled(name: str) -> Path:
    """A file from pydicom's own test data; download=False so a missing file fails fast instead of retrying."""
    found = get_testdata_file(name, download=False)
    assert found is not None, f"pydicom no longer bundles {name}: choose another bundled file"
    return Path(found)


def _read(path: Path) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _hashes(paths) -> dict[Path, str]:
    """sha256 of every file the paths name (folders walked), to prove nothing the user gave is modified."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            files.append(path)
    return {file: _sha256(file) for file in files}


def _cli_env() -> dict[str, str]:
    # The repository root first, so the subprocess runs this checkout even if the venv install differs.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    return env


# --- references computed with pydicom -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_by_instance() -> dict[int, Dataset]:
    """The sample's datasets keyed by InstanceNumber, as pydicom reads them."""
    datasets = [_read(path) for path in sorted(SAMPLE_STUDY.glob("*.dcm"))]
    assert len(datasets) == SAMPLE_FRAMES
    return {int(ds.InstanceNumber): ds for ds in datasets}


def _position_along_normal(ds: Dataset) -> float:
    orientation = np.array([float(v) for v in ds.ImageOrientationPatient])
    normal = np.cross(orientation[:3], orientation[3:])
    return float(np.dot([float(v) for v in ds.ImagePositionPatient], normal))


def _modality(ds: Dataset) -> np.ndarray:
    return np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float32)


def _reference_display(
    ds: Dataset, bits: int, center: float | None = None, width: float | None = None, function: str | None = None
) -> np.ndarray:
    """pydicom's windowing (the file's first window unless center/width are given), spread to 0..2**bits-1.

    apply_windowing maps onto [y_min, y_max]: for PixelRepresentation 0 with a rescale,
    y_min = 0*slope + intercept and y_max = (2**BitsStored - 1)*slope + intercept
    (pydicom/pixels/processing.py). The sample has no Modality LUT Sequence.
    """
    ds = ds.copy()  # apply_windowing casts the dataset's elements in place
    assert "ModalityLUTSequence" not in ds and int(ds.PixelRepresentation) == 0
    if center is not None:
        ds.WindowCenter, ds.WindowWidth = center, width
        if "WindowCenterWidthExplanation" in ds:
            del ds.WindowCenterWidthExplanation
    if function is not None:
        ds.VOILUTFunction = function
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    y_min = 0 * slope + intercept
    y_max = (2 ** int(ds.BitsStored) - 1) * slope + intercept
    windowed = apply_windowing(apply_modality_lut(ds.pixel_array, ds), ds)
    brightness = (windowed - y_min) / (y_max - y_min)
    return np.rint(np.clip(brightness, 0.0, 1.0) * (2**bits - 1)).astype(np.int64)


def _assert_close_levels(actual: np.ndarray, expected: np.ndarray, tolerance: int = 1) -> None:
    assert actual.shape == expected.shape
    difference = np.abs(actual.astype(np.int64) - expected.astype(np.int64))
    assert difference.max() <= tolerance, f"max difference {difference.max()} grey levels"


# --- generated inputs -----------------------------------------------------------------------------------


def _write_series(
    folder: Path, *, series_number: int = 1, prefix: str = "IM_", slices: int = 3, size: int = 32
) -> list[Path]:
    return write_ct_series(
        folder,
        head_phantom_hu(slices, size, seed=series_number),
        slice_spacing_mm=2.0,
        series_number=series_number,
        series_description=f"generated {series_number}",
        name_prefix=prefix,
    )


def _huge_header_dicom(path: Path) -> Path:
    """A valid Part-10 file whose header claims 60000 x 60000 16-bit pixels but holds 16 bytes."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "CT"
    ds.Rows = ds.Columns = 60000
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = b"\0" * 16
    ds.save_as(path, enforce_file_format=True)
    return path


# --- 1. help and version --------------------------------------------------------------------------------


def test_help_is_the_same_from_module_and_console_script():
    assert CONSOLE_SCRIPT.is_file(), f"console script not installed next to {sys.executable}"
    as_module = subprocess.run(
        [sys.executable, "-m", "medviewer", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=_cli_env(),
        timeout=60,
    )
    as_script = subprocess.run(
        [str(CONSOLE_SCRIPT), "--help"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )
    assert as_module.returncode == 0, as_module.stderr
    assert as_script.returncode == 0, as_script.stderr
    assert as_module.stdout.startswith("usage: medviewer")
    assert as_module.stdout == as_script.stdout
    for command in ("info", "export", "--version"):
        assert command in as_module.stdout


def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"medviewer {medviewer.__version__}"


# --- 2. info ---------------------------------------------------------------------------------------------


def test_info_text_on_sample_study(capsys, sample_by_instance):
    assert main(["info", str(SAMPLE_STUDY)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    first = sample_by_instance[1]
    center, width = float(first.WindowCenter[0]), float(first.WindowWidth[0])
    explanation = first.WindowCenterWidthExplanation[0]
    assert (center, width, explanation) == (40.0, 80.0, "BRAIN")
    text = captured.out
    assert f"{SAMPLE_FRAMES} frames" in text
    assert (first.Rows, first.Columns) == (256, 256) and "256x256" in text
    assert first.Modality == "CT" and " CT " in text
    assert "units HU" in text
    assert f"window {center:g}/{width:g} ({explanation})" in text
    assert "decodable: yes" in text
    assert "Skipped" not in text


def test_info_json_on_sample_study(capsys, sample_by_instance):
    assert main(["info", "--json", str(SAMPLE_STUDY)]) == 0
    report = json.loads(capsys.readouterr().out)
    first, second = sample_by_instance[1], sample_by_instance[2]
    assert len(report["studies"]) == 1
    assert report["skipped"] == []
    study = report["studies"][0]
    assert study["study_uid"] == first.StudyInstanceUID
    assert len(study["series"]) == 1
    series = study["series"][0]
    assert series["series_uid"] == first.SeriesInstanceUID
    assert series["modality"] == "CT"
    assert series["frames"] == SAMPLE_FRAMES
    assert (series["rows"], series["columns"]) == (first.Rows, first.Columns) == (256, 256)
    assert series["units"] == "HU"
    assert series["windows"][0]["center"] == float(first.WindowCenter[0]) == 40
    assert series["windows"][0]["width"] == float(first.WindowWidth[0]) == 80
    assert [w["name"] for w in series["windows"]] == list(first.WindowCenterWidthExplanation)
    assert series["decodable"] is True
    assert series["colour"] is False
    assert series["pixel_spacing_mm"] == pytest.approx([float(v) for v in first.PixelSpacing])
    spacing_from_files = abs(_position_along_normal(second) - _position_along_normal(first))
    assert series["slice_spacing_mm"] == pytest.approx(spacing_from_files)
    assert series["slice_spacing_mm"] == pytest.approx(5.0)


def test_info_on_png(capsys):
    assert main(["info", "--json", str(SAMPLE_PNG)]) == 0
    report = json.loads(capsys.readouterr().out)
    series = [s for study in report["studies"] for s in study["series"]]
    assert len(series) == 1
    with Image.open(SAMPLE_PNG) as reference:
        width, height = reference.size
        assert reference.format == "PNG"
    assert series[0]["format"] == "PNG"
    assert (series[0]["rows"], series[0]["columns"]) == (height, width)
    assert series[0]["frames"] == 1
    assert series[0]["decodable"] is True


# --- 3. info on a folder with things that are not images ----------------------------------------------------


def test_info_lists_skipped_files_with_reasons(tmp_path, capsys):
    folder = tmp_path / "mixed"
    generated = _write_series(folder)
    notes = folder / "notes.txt"
    notes.write_text("scanned on Tuesday\n")
    report_file = folder / "report.dcm"
    shutil.copyfile(_bundled("test-SR.dcm"), report_file)
    before = _hashes([folder])

    assert main(["info", str(folder)]) == 0
    text = capsys.readouterr()
    assert text.err == ""
    assert "Skipped 2 files" in text.out
    skipped_lines = {line.strip().split(": ", 1)[0]: line for line in text.out.splitlines() if ": " in line}
    assert str(notes) in skipped_lines and str(report_file) in skipped_lines

    assert main(["info", "--json", str(folder)]) == 0
    report = json.loads(capsys.readouterr().out)
    reasons = {Path(entry["path"]).name: entry["reason"] for entry in report["skipped"]}
    assert set(reasons) == {"notes.txt", "report.dcm"}
    assert all(reason.strip() for reason in reasons.values())
    assert "pixel data" in reasons["report.dcm"]
    series = [s for study in report["studies"] for s in study["series"]]
    assert len(series) == 1 and series[0]["frames"] == len(generated)
    assert _hashes([folder]) == before


# --- 4. export to NPY: values in real units ------------------------------------------------------------------


def test_sample_instance_numbers_follow_position_along_normal(sample_by_instance):
    """The premise of the frame checks below, verified with pydicom: slice order == InstanceNumber order."""
    by_position = sorted(sample_by_instance.values(), key=_position_along_normal)
    assert [int(ds.InstanceNumber) for ds in by_position] == list(range(1, SAMPLE_FRAMES + 1))


@pytest.mark.parametrize("frame", [0, 5, 23])
def test_export_npy_frame_equals_pydicom_modality_lut(tmp_path, capsys, sample_by_instance, frame):
    output = tmp_path / f"frame{frame}.npy"
    assert main(["export", str(SAMPLE_STUDY), "--frame", str(frame), "-o", str(output)]) == 0
    assert capsys.readouterr().err == ""
    exported = np.load(output, allow_pickle=False)
    expected = _modality(sample_by_instance[frame + 1])
    assert exported.dtype == np.float32
    np.testing.assert_array_equal(exported, expected)


@pytest.mark.parametrize("name", ["SC_rgb_rle.dcm", "examples_rgb_color.dcm"])
def test_export_colour_npy_and_png_equal_pydicom_pixel_array(tmp_path, capsys, name):
    source = _bundled(name)
    reference = _read(source)
    assert int(reference.SamplesPerPixel) == 3 and int(reference.BitsAllocated) == 8
    expected = reference.pixel_array
    as_npy, as_png = tmp_path / "colour.npy", tmp_path / "colour.png"
    assert main(["export", str(source), "-o", str(as_npy)]) == 0
    assert main(["export", str(source), "-o", str(as_png)]) == 0
    assert capsys.readouterr().err == ""
    values = np.load(as_npy, allow_pickle=False)
    assert values.dtype == np.uint8
    assert values.shape == (int(reference.Rows), int(reference.Columns), 3)
    np.testing.assert_array_equal(values, expected)
    with Image.open(as_png) as image:
        assert image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), expected)


def test_export_chooses_series_by_index(tmp_path, capsys):
    folder = tmp_path / "two"
    _write_series(folder, series_number=1, prefix="A_")
    second = _write_series(folder, series_number=2, prefix="B_", slices=2, size=24)
    output = tmp_path / "second.npy"
    assert main(["export", str(folder), "--series", "1", "--frame", "1", "-o", str(output)]) == 0
    assert capsys.readouterr().err == ""
    reference = _read(second[1])
    assert int(reference.SeriesNumber) == 2 and int(reference.InstanceNumber) == 2
    np.testing.assert_array_equal(np.load(output), _modality(reference))


# --- 5. export to PNG/TIFF: windowed for display ----------------------------------------------------------


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_export_png_8bit_file_window_equals_pydicom_windowing(tmp_path, capsys, sample_by_instance):
    output = tmp_path / "brain.png"
    assert main(["export", str(SAMPLE_STUDY), "--frame", "12", "-o", str(output)]) == 0
    assert capsys.readouterr().err == ""
    with Image.open(output) as image:
        assert image.format == "PNG" and image.mode == "L"
        exported = np.asarray(image)
    assert exported.dtype == np.uint8
    _assert_close_levels(exported, _reference_display(sample_by_instance[13], 8))


def test_manual_and_auto_windows_differ_from_default_and_follow_pydicom(tmp_path, capsys, sample_by_instance):
    frame = 12
    ds = sample_by_instance[frame + 1]
    default, manual, auto = tmp_path / "default.png", tmp_path / "manual.png", tmp_path / "auto.png"
    assert main(["export", str(SAMPLE_STUDY), "--frame", str(frame), "-o", str(default)]) == 0
    assert main(["export", str(SAMPLE_STUDY), "--frame", str(frame), "--window", "400,40", "-o", str(manual)]) == 0
    assert main(["export", str(SAMPLE_STUDY), "--frame", str(frame), "--window", "auto", "-o", str(auto)]) == 0
    assert capsys.readouterr().err == ""
    images = {name: _png(path) for name, path in (("default", default), ("manual", manual), ("auto", auto))}
    assert not np.array_equal(images["manual"], images["default"])
    assert not np.array_equal(images["auto"], images["default"])
    assert not np.array_equal(images["auto"], images["manual"])
    # --window C,W is a LINEAR window in the image's units (HU): pydicom with that center/width.
    _assert_close_levels(images["manual"], _reference_display(ds, 8, center=400.0, width=40.0))
    # 'auto' spans the 0.1-99.9 percentiles of the frame's values (the CLI's documented definition).
    low, high = np.percentile(_modality(ds).astype(np.float64), (0.1, 99.9))
    _assert_close_levels(
        images["auto"], _reference_display(ds, 8, center=(low + high) / 2, width=high - low, function="LINEAR_EXACT")
    )


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
def test_export_16bit_is_uint16_with_the_same_windowing(tmp_path, capsys, sample_by_instance, suffix):
    frame = 7
    output = tmp_path / f"deep{suffix}"
    eight_bit = tmp_path / "eight.png"
    assert main(["export", str(SAMPLE_STUDY), "--frame", str(frame), "--depth", "16", "-o", str(output)]) == 0
    assert main(["export", str(SAMPLE_STUDY), "--frame", str(frame), "-o", str(eight_bit)]) == 0
    assert capsys.readouterr().err == ""
    if suffix == ".png":
        with Image.open(output) as image:
            assert image.mode == "I;16"
            exported = np.asarray(image)
    else:
        exported = tifffile.imread(output)
    assert exported.dtype == np.uint16
    _assert_close_levels(exported, _reference_display(sample_by_instance[frame + 1], 16))
    # The same window at both depths: 16-bit levels / 257 are the 8-bit levels (rounding apart).
    _assert_close_levels(np.rint(exported / 257.0), _png(eight_bit))


def test_export_tiff_8bit_equals_png(tmp_path, capsys):
    as_png, as_tiff = tmp_path / "a.png", tmp_path / "a.tif"
    assert main(["export", str(SAMPLE_STUDY), "--frame", "3", "-o", str(as_png)]) == 0
    assert main(["export", str(SAMPLE_STUDY), "--frame", "3", "-o", str(as_tiff)]) == 0
    capsys.readouterr()
    tiff = tifffile.imread(as_tiff)
    assert tiff.dtype == np.uint8
    np.testing.assert_array_equal(tiff, _png(as_png))


def test_export_8bit_png_source_round_trips(tmp_path, capsys):
    """An 8-bit PNG's default window is its full range: exporting it again gives Pillow's pixels back."""
    output = tmp_path / "again.png"
    assert main(["export", str(SAMPLE_PNG), "-o", str(output)]) == 0
    capsys.readouterr()
    np.testing.assert_array_equal(_png(output), _png(SAMPLE_PNG))


# --- 6. errors: one line, exit code 2, no traceback, no output, inputs unchanged ------------------------------


def _assert_bad_input(
    capsys, argv: list[str], *, inputs, names: list[str], output: Path | None = None, output_existed: bool = False
) -> str:
    """Run main(argv) and check the CLI's contract for bad input; return the stderr line."""
    before = _hashes(inputs)
    assert before, "the error case must have input files to protect"
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    line = lines[0]
    assert line.startswith("medviewer: error: ")
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    for name in names:
        assert name in line, f"{name!r} not named in {line!r}"
    if output is not None:
        assert output.exists() == output_existed
        if output.parent.is_dir():
            assert not [p.name for p in output.parent.iterdir() if ".partial" in p.name]
    assert _hashes(inputs) == before
    return line


@pytest.fixture
def sample_copy(tmp_path) -> Path:
    """A copy of the sample study, for cases where a bug could write into the inputs."""
    copy = tmp_path / "study"
    shutil.copytree(SAMPLE_STUDY, copy)
    return copy


def test_error_missing_input_file(tmp_path, capsys):
    present = tmp_path / "present.dcm"
    shutil.copyfile(SAMPLE_STUDY / "IM_00001.dcm", present)
    missing = tmp_path / "missing.dcm"
    output = tmp_path / "out.npy"
    line = _assert_bad_input(
        capsys,
        ["export", str(present), str(missing), "-o", str(output)],
        inputs=[present],
        names=["missing.dcm"],
        output=output,
    )
    assert "not found" in line


def test_error_truncated_dicom(tmp_path, capsys):
    data = (SAMPLE_STUDY / "IM_00001.dcm").read_bytes()
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(data[: int(len(data) * 0.6)])
    output = tmp_path / "out.npy"
    line = _assert_bad_input(
        capsys,
        ["export", str(truncated), "-o", str(output)],
        inputs=[truncated],
        names=["truncated.dcm"],
        output=output,
    )
    assert "truncated" in line


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_error_corrupt_dicom(tmp_path, capsys, seed):
    corrupt = tmp_path / "corrupt.dcm"
    corrupt.write_bytes(b"\0" * 128 + b"DICM" + np.random.default_rng(seed).bytes(2048))
    output = tmp_path / "out.png"
    _assert_bad_input(
        capsys, ["export", str(corrupt), "-o", str(output)], inputs=[corrupt], names=["corrupt.dcm"], output=output
    )


def test_error_header_claims_huge_image(tmp_path, capsys):
    huge = _huge_header_dicom(tmp_path / "huge.dcm")
    assert _read(huge).Rows == 60000  # pydicom agrees the file is well formed
    output = tmp_path / "out.npy"
    line = _assert_bad_input(
        capsys, ["export", str(huge), "-o", str(output)], inputs=[huge], names=["huge.dcm"], output=output
    )
    assert "60000x60000" in line
    # `info` must not try to decode it either; it reports it as not decodable or skipped, never crashes.
    assert main(["info", str(huge)]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


@pytest.mark.parametrize("window", ["file", "auto"])
@pytest.mark.parametrize("frame", ["24", "-1"])
def test_error_frame_out_of_range(tmp_path, capsys, frame, window):
    output = tmp_path / "out.png"
    line = _assert_bad_input(
        capsys,
        ["export", str(SAMPLE_STUDY), "--frame", frame, "--window", window, "-o", str(output)],
        inputs=[SAMPLE_STUDY],
        names=[str(SAMPLE_STUDY), f"frame {frame}"],
        output=output,
    )
    assert "0..23" in line


@pytest.fixture
def two_series_folder(tmp_path) -> Path:
    folder = tmp_path / "two_series"
    _write_series(folder, series_number=1, prefix="A_")
    _write_series(folder, series_number=2, prefix="B_")
    return folder


def test_error_two_series_without_series_option(tmp_path, capsys, two_series_folder):
    output = tmp_path / "out.npy"
    line = _assert_bad_input(
        capsys,
        ["export", str(two_series_folder), "-o", str(output)],
        inputs=[two_series_folder],
        names=[str(two_series_folder), "--series"],
        output=output,
    )
    assert "2 series" in line


@pytest.mark.parametrize("series", ["2", "-1"])
def test_error_series_out_of_range(tmp_path, capsys, two_series_folder, series):
    output = tmp_path / "out.npy"
    _assert_bad_input(
        capsys,
        ["export", str(two_series_folder), "--series", series, "-o", str(output)],
        inputs=[two_series_folder],
        names=[f"--series {series}", "out of range"],
        output=output,
    )


def test_error_series_out_of_range_names_the_input(tmp_path, capsys, two_series_folder):
    output = tmp_path / "out.npy"
    _assert_bad_input(
        capsys,
        ["export", str(two_series_folder), "--series", "2", "-o", str(output)],
        inputs=[two_series_folder],
        names=[str(two_series_folder)],
        output=output,
    )


def test_error_output_is_an_input_dicom(capsys, sample_copy):
    target = sample_copy / "IM_00003.dcm"
    _assert_bad_input(
        capsys,
        ["export", str(sample_copy), "-o", str(target)],
        inputs=[sample_copy],
        names=[str(target)],
        output=target,
        output_existed=True,
    )


@pytest.mark.parametrize("suffix", [".png", ".npy", ".tif"])
def test_error_output_is_the_input_raster(tmp_path, capsys, suffix):
    """The input has an exportable suffix, so the refusal (not the suffix check) must protect it."""
    source = tmp_path / f"image{suffix}"
    pixels = np.arange(64 * 48, dtype=np.uint8).reshape(64, 48)
    if suffix == ".png":
        Image.fromarray(pixels).save(source)
    elif suffix == ".npy":
        np.save(source, pixels.astype(np.float32))
    else:
        tifffile.imwrite(source, pixels)
    line = _assert_bad_input(
        capsys,
        ["export", str(source), "-o", str(source)],
        inputs=[source],
        names=[str(source)],
        output=source,
        output_existed=True,
    )
    assert "input" in line


def test_error_output_is_another_input_in_the_folder(tmp_path, capsys):
    folder = tmp_path / "mixed"
    _write_series(folder)
    picture = folder / "picture.png"
    shutil.copyfile(SAMPLE_PNG, picture)
    _assert_bad_input(
        capsys,
        ["export", str(folder), "--series", "0", "-o", str(picture)],
        inputs=[folder],
        names=[str(picture)],
        output=picture,
        output_existed=True,
    )


def test_error_unsupported_output_suffix(tmp_path, capsys):
    output = tmp_path / "out.bmp"
    line = _assert_bad_input(
        capsys,
        ["export", str(SAMPLE_STUDY), "-o", str(output)],
        inputs=[SAMPLE_STUDY],
        names=["out.bmp"],
        output=output,
    )
    assert ".bmp" in line


def test_error_output_folder_does_not_exist(tmp_path, capsys):
    output = tmp_path / "no_such_folder" / "out.png"
    _assert_bad_input(
        capsys,
        ["export", str(SAMPLE_STUDY), "-o", str(output)],
        inputs=[SAMPLE_STUDY],
        names=["out.png", "no_such_folder"],
        output=output,
    )
    assert not output.parent.exists()


def test_error_output_is_a_folder(tmp_path, capsys):
    """os.replace fails after the temporary file was written: the error is reported and the temporary removed."""
    output = tmp_path / "looks_like.png"
    output.mkdir()
    _assert_bad_input(
        capsys,
        ["export", str(SAMPLE_STUDY), "-o", str(output)],
        inputs=[SAMPLE_STUDY],
        names=["looks_like.png"],
        output=output,
        output_existed=True,
    )
    assert output.is_dir() and not any(output.iterdir())


@pytest.mark.parametrize("text", ["abc", "40", "40,400,1", "40,0", "forty,400", ""])
def test_error_bad_window_text(tmp_path, capsys, text):
    # No file is at fault here: the line names the option and the text the user gave.
    output = tmp_path / "out.png"
    line = _assert_bad_input(
        capsys,
        ["export", str(SAMPLE_STUDY), f"--window={text}", "-o", str(output)],
        inputs=[SAMPLE_STUDY],
        names=["--window", repr(text)],
        output=output,
    )
    assert "CENTER,WIDTH" in line or "width" in line


def test_error_depth_16_on_colour(tmp_path, capsys):
    source = tmp_path / "colour.dcm"
    shutil.copyfile(_bundled("SC_rgb_rle.dcm"), source)
    output = tmp_path / "colour.png"
    line = _assert_bad_input(
        capsys,
        ["export", str(source), "--depth", "16", "-o", str(output)],
        inputs=[source],
        names=["colour.png"],
        output=output,
    )
    assert "16" in line


def test_error_info_on_missing_path(tmp_path, capsys):
    present = tmp_path / "present.png"
    shutil.copyfile(SAMPLE_PNG, present)
    missing = tmp_path / "nowhere"
    line = _assert_bad_input(capsys, ["info", str(present), str(missing)], inputs=[present], names=[str(missing)])
    assert "not found" in line
    assert capsys.readouterr().out == ""


# --- 7. the same contract outside pytest -----------------------------------------------------------------


def test_error_in_a_real_process_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "medviewer", "export", "missing.dcm", "-o", "x.npy"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_cli_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "missing.dcm" in lines[0]
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


# --- 8. atomic output -----------------------------------------------------------------------------------


def test_export_leaves_no_temporary_files(tmp_path, capsys):
    out_folder = tmp_path / "out"
    out_folder.mkdir()
    for name in ("a.npy", "a.png", "a.tif"):
        assert main(["export", str(SAMPLE_STUDY), "--frame", "2", "-o", str(out_folder / name)]) == 0
    assert capsys.readouterr().err == ""
    names = sorted(p.name for p in out_folder.iterdir())
    assert names == ["a.npy", "a.png", "a.tif"]
    assert not [name for name in names if ".partial" in name]


def test_export_replaces_an_existing_output(tmp_path, capsys, sample_by_instance):
    output = tmp_path / "slice.npy"
    output.write_bytes(b"an older export that must be replaced")
    assert main(["export", str(SAMPLE_STUDY), "--frame", "5", "-o", str(output)]) == 0
    capsys.readouterr()
    np.testing.assert_array_equal(np.load(output), _modality(sample_by_instance[6]))
    assert not [p.name for p in tmp_path.iterdir() if ".partial" in p.name]
    # And once more over our own earlier output, with another frame.
    assert main(["export", str(SAMPLE_STUDY), "--frame", "6", "-o", str(output)]) == 0
    np.testing.assert_array_equal(np.load(output), _modality(sample_by_instance[7]))


def test_export_file_mode_follows_umask(tmp_path, capsys):
    output = tmp_path / "shared.png"
    old_umask = os.umask(0o022)
    try:
        assert main(["export", str(SAMPLE_STUDY), "-o", str(output)]) == 0
    finally:
        os.umask(old_umask)
    capsys.readouterr()
    assert output.stat().st_mode & 0o777 == 0o644


def test_info_warns_about_a_missing_slice(tmp_path, capsys):
    from medviewer.io.synthetic import head_phantom_hu, write_ct_series

    files = write_ct_series(tmp_path, head_phantom_hu(8, 16, seed=2), slice_spacing_mm=2.0)
    files[4].unlink()
    assert main(["info", str(tmp_path)]) == 0
    assert "WARNING uneven slice spacing after frames 3 (missing or repeated slices)" in capsys.readouterr().out
    assert main(["info", "--json", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["studies"][0]["series"][0]["uneven_spacing_after_frames"] == [3]
