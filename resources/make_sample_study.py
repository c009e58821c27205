"""Regenerates the bundled sample: resources/sample_study/ (24-slice synthetic head CT) and resources/sample.png.

Run: .venv/bin/python resources/make_sample_study.py

The output is byte-reproducible (fixed seed, dates and UID seed), so rerunning it leaves the repository
unchanged unless the phantom or the writer changed.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent
sys.path.insert(0, str(RESOURCES.parent))  # run as a plain script from a checkout, without installing

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from pydicom.pixels import apply_modality_lut, apply_voi_lut  # noqa: E402

from medviewer.io.synthetic import head_phantom_hu, write_ct_series, write_sample_png  # noqa: E402

STUDY_FOLDER = RESOURCES / "sample_study"
PREVIEW_PNG = RESOURCES / "sample.png"
SLICES = 24
SIZE = 256

logger = logging.getLogger("make_sample_study")


def make_sample_study() -> list[Path]:
    """Write the sample series (replacing any earlier one) and its brain-window preview of the middle slice."""
    STUDY_FOLDER.mkdir(parents=True, exist_ok=True)
    for stale in STUDY_FOLDER.glob("*.dcm"):  # a smaller regenerated series must not keep old slices
        stale.unlink()
    volume = head_phantom_hu(SLICES, SIZE, seed=2024)
    paths = write_ct_series(
        STUDY_FOLDER,
        volume,
        pixel_spacing_mm=(0.9, 0.9),
        slice_spacing_mm=5.0,
        study_description="MedViewer sample head CT (synthetic phantom)",
        series_description="Head 5 mm (synthetic)",
        uid_seed="medviewer-sample-study",
        patient_id="MV-SAMPLE-0001",
        patient_name="Phantom^Sample",
    )
    # The preview shows what the file holds, windowed by pydicom with the file's own first (brain) window.
    middle = pydicom.dcmread(paths[SLICES // 2])
    hu = apply_modality_lut(middle.pixel_array, middle)
    windowed = apply_voi_lut(hu, middle, index=0)
    # apply_voi_lut maps the window onto the stored value range rescaled to HU; spread that over 0..255.
    bits = int(middle.BitsStored)
    if middle.PixelRepresentation:
        stored_low, stored_high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        stored_low, stored_high = 0, 2**bits - 1
    slope, intercept = float(middle.RescaleSlope), float(middle.RescaleIntercept)
    output_low, output_high = stored_low * slope + intercept, stored_high * slope + intercept
    grey = np.rint((windowed - output_low) / (output_high - output_low) * 255.0)
    write_sample_png(PREVIEW_PNG, np.clip(grey, 0, 255).astype(np.uint8))
    total_bytes = sum(path.stat().st_size for path in paths)
    logger.info(
        "sample study: %d files, %.2f MB in %s; preview %s", len(paths), total_bytes / 1e6, STUDY_FOLDER, PREVIEW_PNG
    )
    return paths


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    make_sample_study()
