"""Derived DICOM made through the real CLI, judged by David Clunie's dciodvfy (dicom3tools): no errors, and
no warning but the deliberate ones that medviewer.io.derived_dicom documents."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.datadict import tag_for_keyword
from pydicom.pixels import apply_modality_lut
from pydicom.tag import Tag

from medviewer.cli import main
from medviewer.io.derived_dicom import (
    STANDARD_EXTENDED_ATTRIBUTES,
    UNPAIRED_BODY_PARTS,
    Derivation,
    laterality,
    write_derived_series,
)
from medviewer.io.study import load_studies
from medviewer.models.registry import USER_MODELS_ENVIRONMENT

DCIODVFY = shutil.which("dciodvfy")
pytestmark = pytest.mark.skipif(
    DCIODVFY is None, reason="dciodvfy not installed (Debian package dicom3tools; `bash scripts/setup.sh --test`)"
)

CR_RADIOGRAPH = "dicomdirtests/77654033/CR1/6154"  # MONOCHROME1, ImagerPixelSpacing, CSPINE, empty Laterality


def _not_in_iod(keyword: str) -> str:
    tag = Tag(tag_for_keyword(keyword))
    return re.escape(f"Attribute is not present in standard DICOM IOD - (0x{tag.group:04x},0x{tag.element:04x}) ")


# Every warning a derived file may carry, as a pattern for dciodvfy's line, and why it stays.
DELIBERATE_WARNINGS: dict[str, str] = {
    **{
        _not_in_iod(keyword): f"Standard Extended SOP Class: {keyword}, {reason}"
        for keyword, reason in STANDARD_EXTENDED_ATTRIBUTES.items()
    },
    re.escape("this is a Standard Extended SOP Class"): "the summary line of the extension above",
    re.escape("is only permitted to be empty when actually unknown; should be absent (not empty) if an unpaired")
    + r".* - attribute <Laterality>": "Laterality written empty: the body part may be paired and the side is unknown",
    r"Value dubious for this VR - \(0x[0-9a-f]{4},0x[0-9a-f]{4}\) PN .* - Retired Person Name form": (
        "a person name copied verbatim from the source (MR_small.dcm's '----'), not rewritten"
    ),
}
# A raster source knows no patient, study ID or series number: they are empty, so no DICOMDIR entry can be made.
RASTER_WARNINGS: dict[str, str] = {
    r"Missing attribute or value that would be needed to build DICOMDIR - (Patient ID|Study ID|Series Number)$": (
        "a raster source has no patient, study or series identity; inventing one could be taken for real"
    ),
}


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """dciodvfy's Error and Warning lines for one file (it writes them to stderr; both streams are read)."""
    finished = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    lines = (finished.stdout + "\n" + finished.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")], [line for line in lines if line.startswith("Warning")]


def assert_valid(path: Path, allowed: dict[str, str] = DELIBERATE_WARNINGS) -> list[str]:
    """No error, and every warning one of `allowed`; returns the warnings."""
    errors, warnings = dciodvfy(path)
    assert errors == [], f"{path.name}: dciodvfy errors:\n" + "\n".join(errors)
    unexpected = [line for line in warnings if not any(re.search(pattern, line) for pattern in allowed)]
    assert unexpected == [], f"{path.name}: warnings that are not deliberate:\n" + "\n".join(unexpected)
    return warnings


@pytest.fixture(autouse=True)
def user_models(tmp_path, monkeypatch):
    """An empty user models folder, never the developer's real one."""
    monkeypatch.setenv(USER_MODELS_ENVIRONMENT, str(tmp_path / "user-models"))


def enhance(source: Path, out: Path, model: str = "nlm") -> Path:
    """`medviewer enhance SOURCE --model MODEL --output-dir OUT`, and the one file it wrote."""
    assert main(["enhance", str(source), "--model", model, "--output-dir", str(out)]) == 0
    (written,) = out.iterdir()
    return written


def pydicom_file(name: str) -> Path:
    return Path(get_testdata_file(name, download=False))


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("CT_small.dcm", "nlm"),
        ("MR_small.dcm", "nlm"),
        ("examples_rgb_color.dcm", "nlm"),  # ultrasound, RGB
        ("SC_rgb_jpeg_dcmtk.dcm", "nlm"),  # YBR_FULL_422 JPEG, decoded to RGB
        ("CT_small.dcm", "bicubic-x2"),  # super-resolved: spacing and position rescaled
        (CR_RADIOGRAPH, "nlm"),
    ],
    ids=["ct", "mr", "us-rgb", "ybr-jpeg", "ct-x2", "cr"],
)
def test_derived_dicom_from_a_dicom_source_passes_dciodvfy(tmp_path, name, model):
    derived = enhance(pydicom_file(name), tmp_path / "out", model)
    assert_valid(derived)
    dataset = pydicom.dcmread(derived)
    assert dataset.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    assert "PatientOrientation" in dataset and dataset.ImageType[0] == "DERIVED"


def test_cr_keeps_its_detector_spacing_and_drops_laterality_for_an_unpaired_body_part(tmp_path):
    derived = enhance(pydicom_file(CR_RADIOGRAPH), tmp_path / "out", "bicubic-x2")
    assert_valid(derived)
    dataset = pydicom.dcmread(derived)
    assert [float(value) for value in dataset.ImagerPixelSpacing] == [0.05, 0.05]  # the source's 0.1 halved
    assert "PixelSpacing" not in dataset and "PixelAspectRatio" not in dataset
    assert dataset.BodyPartExamined == "CSPINE" and "Laterality" not in dataset
    assert list(dataset.PatientOrientation) == ["L", "F"]  # the source's own: it has no orientation vectors
    assert dataset.PhotometricInterpretation == "MONOCHROME1"


def test_a_radiograph_with_zero_spacing_gets_no_spacing_at_all(tmp_path):
    source = tmp_path / "zero_spacing.dcm"
    dataset = pydicom.dcmread(pydicom_file(CR_RADIOGRAPH))
    dataset.PixelSpacing = [0, 0]  # how some devices say "unknown"
    dataset.ImagerPixelSpacing = [0, 0]
    dataset.save_as(source)
    for model in ("nlm", "bicubic-x2"):  # x2 would divide the zeros
        derived = enhance(source, tmp_path / model, model)
        assert_valid(derived)
        written = pydicom.dcmread(derived)
        for absent in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing", "PixelAspectRatio"):
            assert absent not in written, absent
        (series,) = load_studies([derived]).series
        assert series.pixel_spacing_mm is None


def test_derived_dicom_from_a_png_passes_dciodvfy(tmp_path):
    png = tmp_path / "knee.png"
    Image.fromarray((np.arange(32 * 48).reshape(32, 48) % 251).astype(np.uint8)).save(png)
    derived = tmp_path / "knee.dcm"
    assert main(["enhance", str(png), "--model", "nlm", "-o", str(derived)]) == 0
    assert_valid(derived, {**DELIBERATE_WARNINGS, **RASTER_WARNINGS})
    dataset = pydicom.dcmread(derived)
    assert (dataset.Modality, dataset.PatientOrientation, dataset.Laterality) == ("OT", "", "")


def test_frames_of_a_multi_frame_source_pass_dciodvfy(tmp_path):
    """RT Dose is a multi-frame class, so each derived slice's ReferencedFrameNumber is conformant. (A multi-frame
    file of a single-frame class, such as pydicom's SC_rgb_rle_2frame.dcm, makes dciodvfy reject the frame
    number we must still write to say which frame was used.)"""
    (series,) = load_studies([pydicom_file("rtdose.dcm")]).series
    # RT Dose's 32-bit values (795000-1254000) do not fit 16-bit samples: the writer fits a rescale to them.
    volume = np.stack([series.values(index) for index in range(len(series))])
    paths = write_derived_series(series, volume, tmp_path / "out", Derivation.new("m", "Method", 1))
    assert len(paths) == 15
    for index, path in ((0, paths[0]), (7, paths[7]), (14, paths[-1])):
        assert_valid(path)
        dataset = pydicom.dcmread(path)
        written = apply_modality_lut(dataset.pixel_array, dataset)
        span = float(volume.max() - volume.min())
        np.testing.assert_allclose(written, volume[index], rtol=0, atol=span / 65535)
        assert list(dataset.PatientOrientation) == ["L", "P"]  # axial
        assert "GridFrameOffsetVector" not in dataset and "DoseGridScaling" not in dataset


def test_the_unpaired_body_parts_are_the_ones_dciodvfy_knows(tmp_path):
    """Our Laterality rule, term by term, against dciodvfy's: absent for every unpaired part, present (the
    source's side, or empty) for paired parts and for terms it does not know."""
    derived = enhance(pydicom_file(CR_RADIOGRAPH), tmp_path / "out")
    template = pydicom.dcmread(derived)
    paired = ("BREAST", "EYE", "HAND", "KNEE", "KIDNEY", "LUNG", "SHOULDER", "OVARY", "TMJ", "ORBIT")
    local_terms = ("KOPF", "")  # a vendor's own word, an empty value
    local_warning = {r"Unrecognized defined term <KOPF> for value 1 of attribute <Body Part Examined>": "the test's"}
    for body_part in sorted(UNPAIRED_BODY_PARTS) + list(paired) + list(local_terms):
        for source_side in ("", "R"):
            dataset = copy.deepcopy(template)
            dataset.BodyPartExamined = body_part
            side = laterality(source_side, body_part, image_laterality_present=False)
            assert (side is None) == (body_part in UNPAIRED_BODY_PARTS)
            if side is None:
                dataset.pop("Laterality", None)
            else:
                dataset.Laterality = side
            path = tmp_path / f"{body_part or 'empty'}_{source_side or 'unknown'}.dcm"
            dataset.save_as(path)
            assert_valid(path, {**DELIBERATE_WARNINGS, **local_warning})
