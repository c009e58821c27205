"""Synthetic head CT studies written as real DICOM files: the bundled sample, test fixtures and load benchmarks."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pydicom
import pydicom.uid
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.fileset import FileSet
from pydicom.pixels import get_encoder
from pydicom.sequence import Sequence
from pydicom.uid import UID, generate_uid
from pydicom.valuerep import DSfloat

from medviewer.errors import OutputError
from medviewer.io.atomic import write_atomically

logger = logging.getLogger(__name__)

CT_IMAGE_STORAGE = pydicom.uid.CTImageStorage

# Native syntaxes need no encoder; pydicom's writer handles the byte order and deflate itself.
_NATIVE_SYNTAXES = frozenset(
    {
        pydicom.uid.ImplicitVRLittleEndian,
        pydicom.uid.ExplicitVRLittleEndian,
        pydicom.uid.ExplicitVRBigEndian,
        pydicom.uid.DeflatedExplicitVRLittleEndian,
    }
)
# Compressed syntax -> pydicom encoding plugin. RLE uses pydicom's own encoder so that writing it needs no
# optional package; "" lets pydicom pick whichever JPEG-LS plugin is installed.
_ENCODING_PLUGINS = {
    pydicom.uid.RLELossless: "pydicom",
    pydicom.uid.JPEG2000Lossless: "pylibjpeg",
    pydicom.uid.JPEGLSLossless: "",
}
SUPPORTED_TRANSFER_SYNTAXES = tuple(sorted(_NATIVE_SYNTAXES | set(_ENCODING_PLUGINS)))

# Fixed dates keep regenerated files byte-identical (the bundled sample is committed).
_STUDY_DATE = "20240115"
_STUDY_TIME = "093000.000000"
_ACQUISITION_TIME = "093112.250000"


# --------------------------------------------------------------------------------------------------
# Phantom
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ellipsoid:
    """An ellipsoid in the phantom's normalised space (x, y across the image in [-1, 1], z head height)."""

    center: tuple[float, float, float]
    semi_axes: tuple[float, float, float]

    def shrunk(self, margin: float) -> _Ellipsoid:
        """The same ellipsoid with every semi-axis reduced by margin: a shell of that thickness inside it."""
        return _Ellipsoid(self.center, tuple(axis - margin for axis in self.semi_axes))

    @property
    def mean_in_plane_axis(self) -> float:
        return (self.semi_axes[0] + self.semi_axes[1]) / 2

    def normalized_radius(self, x: np.ndarray, y: np.ndarray, z: float) -> np.ndarray:
        """1 on the surface, < 1 inside; x is a row vector and y a column vector so this broadcasts."""
        cx, cy, cz = self.center
        ax, ay, az = self.semi_axes
        x_term = ((x - cx) / ax) ** 2
        y_term = ((y - cy) / ay) ** 2
        return np.sqrt(x_term + y_term + ((z - cz) / az) ** 2, dtype=np.float32)

    def coverage(self, x: np.ndarray, y: np.ndarray, z: float, pixels_per_unit: float) -> np.ndarray:
        """Fraction of each pixel inside: a one-pixel ramp at the edge, like a CT's partial volume effect."""
        return _ramp(self.normalized_radius(x, y, z), self.mean_in_plane_axis * pixels_per_unit)

    def footprint(
        self, pixel_centers: np.ndarray, z: float, pixels_per_unit: float, radius_slack: float = 1.0
    ) -> tuple[slice, slice] | None:
        """The rows and columns this ellipsoid can touch on slice z (None if it misses the slice), so
        that small structures cost a few pixels rather than the whole image.

        radius_slack > 1 widens it for callers that shrink the radius (the wobbly white matter)."""
        outermost_radius = (1.0 + 0.5 / (self.mean_in_plane_axis * pixels_per_unit)) * radius_slack
        cx, cy, cz = self.center
        ax, ay, az = self.semi_axes
        z_term = ((z - cz) / az) ** 2
        if z_term >= outermost_radius**2:
            return None
        in_plane = math.sqrt(outermost_radius**2 - z_term)
        rows = _index_range(pixel_centers, cy - ay * in_plane, cy + ay * in_plane)
        columns = _index_range(pixel_centers, cx - ax * in_plane, cx + ax * in_plane)
        if rows.start >= rows.stop or columns.start >= columns.stop:
            return None
        return rows, columns


def _ramp(radius: np.ndarray, pixels_per_radius: float) -> np.ndarray:
    """Coverage from normalised radius: 1 inside, 0 outside, linear over about one pixel at r = 1."""
    return np.clip(0.5 - (radius - 1.0) * pixels_per_radius, 0.0, 1.0)


def _index_range(pixel_centers: np.ndarray, low: float, high: float) -> slice:
    return slice(int(np.searchsorted(pixel_centers, low, "left")), int(np.searchsorted(pixel_centers, high, "right")))


# Sizes in normalised units: half the field of view is 1, so a 230 mm field gives a head about
# 170 mm wide and 205 mm front to back, a 5 mm scalp and a 7 mm skull.
_SCALP = _Ellipsoid((0.0, 0.0, 0.0), (0.74, 0.90, 1.0))
_SKULL_OUTER = _SCALP.shrunk(0.045)
_SKULL_INNER = _SKULL_OUTER.shrunk(0.065)
_BRAIN = _SKULL_INNER.shrunk(0.012)  # the gap is subarachnoid CSF
_WHITE_MATTER = _Ellipsoid((0.0, 0.02, 0.05), (0.47, 0.60, 0.64))
# Gyral folds on the grey/white boundary: (relative amplitude, folds per turn, phase change per unit z).
_GYRI = ((0.045, 11.0, 9.0), (0.03, 23.0, -13.0))
_VENTRICLES = (
    _Ellipsoid((-0.095, -0.04, 0.28), (0.055, 0.24, 0.15)),
    _Ellipsoid((0.095, -0.04, 0.28), (0.055, 0.24, 0.15)),
)
_LESION = _Ellipsoid((0.27, -0.28, 0.45), (0.07, 0.07, 0.09))
# Slices run from just above the skull base (index 0) to the vertex, so the skull shrinks toward the top.
_Z_BOTTOM, _Z_TOP = -0.5, 0.93

_AIR_HU = -1000.0
_SOFT_TISSUE_HU = 40.0
_CSF_HU = 5.0
_GREY_MATTER_HU = 40.0
_WHITE_MATTER_HU = 25.0
_LESION_HU = 70.0
_DIPLOE_HU = 700.0
_CORTICAL_BONE_HU = 1500.0


def head_phantom_hu(slices: int, size: int, *, seed: int = 0, noise_hu: float = 8.0) -> np.ndarray:
    """float32 array (slices, size, size) in Hounsfield units: air -1000 outside, scalp/soft tissue ~+40,
    skull ~+700..+1500 (cortical ring), brain grey ~+40 / white ~+25, CSF ventricles ~+5, a small
    hyperdense lesion (~+70) on some slices, and a little Gaussian noise (noise_hu). A 3-D ellipsoid
    model so that slices differ along z (skull gets smaller toward the top). Deterministic for a seed.
    It must look like a head CT when windowed at brain (40/80) and bone (480/2500).

    Built slice by slice, each structure only over its footprint, so that a 500 x 512 x 512 benchmark
    volume takes seconds and needs no full-size temporaries. Row index runs anterior to posterior and
    column index right to left, as in an axial HFS image. The seed drives the noise only.
    """
    if slices < 1 or size < 8:
        raise ValueError(f"need at least 1 slice of 8 x 8 pixels, got {slices} of {size} x {size}")
    pixel_centers = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0).astype(np.float32)
    x = pixel_centers[np.newaxis, :]
    y = pixel_centers[:, np.newaxis]
    pixels_per_unit = size / 2.0
    # The folds' phase turns with z; sin(a + b) = sin a cos b + cos a sin b lets it do so without a
    # sine per pixel per slice.
    angle = np.arctan2(y - _WHITE_MATTER.center[1], x - _WHITE_MATTER.center[0])
    folds = [
        (amplitude, phase_rate, np.sin(count * angle).astype(np.float32), np.cos(count * angle).astype(np.float32))
        for amplitude, count, phase_rate in _GYRI
    ]
    fold_slack = 1.0 / (1.0 - sum(amplitude for amplitude, _, _ in _GYRI))
    rng = np.random.default_rng(seed)
    volume = np.empty((slices, size, size), dtype=np.float32)
    for index in range(slices):
        z = _Z_BOTTOM + (_Z_TOP - _Z_BOTTOM) * (index + 0.5) / slices
        hu = volume[index]
        hu.fill(_AIR_HU)
        _paint(hu, _SOFT_TISSUE_HU, _SCALP, x, y, z, pixel_centers, pixels_per_unit)
        _paint(hu, _skull_profile_hu, _SKULL_OUTER, x, y, z, pixel_centers, pixels_per_unit)
        _paint(hu, _CSF_HU, _SKULL_INNER, x, y, z, pixel_centers, pixels_per_unit)
        _paint(hu, _GREY_MATTER_HU, _BRAIN, x, y, z, pixel_centers, pixels_per_unit)
        window = _WHITE_MATTER.footprint(pixel_centers, z, pixels_per_unit, fold_slack)
        if window is not None:
            rows, columns = window
            radius = _WHITE_MATTER.normalized_radius(x[:, columns], y[rows, :], z)
            wobble = np.ones_like(radius)
            for amplitude, phase_rate, sine, cosine in folds:
                phase = phase_rate * z
                wobble += amplitude * (sine[rows, columns] * math.cos(phase) + cosine[rows, columns] * math.sin(phase))
            coverage = _ramp(radius * wobble, _WHITE_MATTER.mean_in_plane_axis * pixels_per_unit)
            _blend(hu[rows, columns], _WHITE_MATTER_HU, coverage)
        for ventricle in _VENTRICLES:
            _paint(hu, _CSF_HU, ventricle, x, y, z, pixel_centers, pixels_per_unit)
        _paint(hu, _LESION_HU, _LESION, x, y, z, pixel_centers, pixels_per_unit)
        if noise_hu:
            hu += rng.standard_normal((size, size), dtype=np.float32) * np.float32(noise_hu)
    return volume


def _paint(
    hu: np.ndarray,
    value: float | Callable[[np.ndarray, np.ndarray, float], np.ndarray],
    ellipsoid: _Ellipsoid,
    x: np.ndarray,
    y: np.ndarray,
    z: float,
    pixel_centers: np.ndarray,
    pixels_per_unit: float,
) -> None:
    """Paint one structure over slice z in place; value is HU or a function of (x, y, z) giving HU."""
    window = ellipsoid.footprint(pixel_centers, z, pixels_per_unit)
    if window is None:
        return
    rows, columns = window
    x_part, y_part = x[:, columns], y[rows, :]
    if callable(value):
        value = value(x_part, y_part, z)
    _blend(hu[rows, columns], value, ellipsoid.coverage(x_part, y_part, z, pixels_per_unit))


def _blend(hu: np.ndarray, value: np.ndarray | float, coverage: np.ndarray) -> None:
    """Paint value over hu in place, weighted by the coverage fraction of each pixel."""
    hu += (value - hu) * coverage


def _skull_profile_hu(x: np.ndarray, y: np.ndarray, z: float) -> np.ndarray:
    """Bone density across the skull: dense cortical tables at both surfaces, lighter diploe between."""
    past_outer = np.clip(1.0 - _SKULL_OUTER.normalized_radius(x, y, z), 0.0, None)
    before_inner = np.clip(_SKULL_INNER.normalized_radius(x, y, z) - 1.0, 0.0, None)
    depth = past_outer / (past_outer + before_inner + np.float32(1e-6))
    # Cortical plateaus over the outer and inner fifth of the thickness, so that even a few-pixel skull
    # reaches full density before partial volume at its edges blurs it.
    table_weight = np.clip((np.abs(2.0 * depth - 1.0) - 0.2) / 0.4, 0.0, 1.0)
    return (_DIPLOE_HU + (_CORTICAL_BONE_HU - _DIPLOE_HU) * table_weight).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# DICOM series
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _StoredEncoding:
    """How HU become stored pixel values: stored = round((hu - intercept) / slope), clipped to the bits."""

    rescale_slope: float
    rescale_intercept: float
    bits_stored: int
    pixel_representation: int
    big_endian: bool

    @property
    def stored_range(self) -> tuple[int, int]:
        if self.pixel_representation == 1:
            return -(2 ** (self.bits_stored - 1)), 2 ** (self.bits_stored - 1) - 1
        return 0, 2**self.bits_stored - 1

    @property
    def dtype(self) -> np.dtype:
        base = "i2" if self.pixel_representation == 1 else "u2"
        return np.dtype((">" if self.big_endian else "<") + base)

    def stored_values(self, hu: np.ndarray) -> tuple[np.ndarray, int]:
        """The stored array for one slice, and how many pixels had to be clipped to fit."""
        scaled = np.rint((hu.astype(np.float64) - self.rescale_intercept) / self.rescale_slope)
        low, high = self.stored_range
        clipped_count = int(np.count_nonzero((scaled < low) | (scaled > high)))
        return np.clip(scaled, low, high).astype(self.dtype), clipped_count


def write_ct_series(
    folder: Path,
    hu_volume: np.ndarray,
    *,
    pixel_spacing_mm: tuple[float, float] = (0.7, 0.7),
    slice_spacing_mm: float = 1.0,
    gantry_tilt_deg: float = 0.0,
    shuffle_seed: int | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    uid_seed: str = "medviewer-synthetic",
    series_number: int = 1,
    series_description: str = "Synthetic head CT",
    windows: tuple[tuple[float, float], ...] = ((40.0, 80.0), (480.0, 2500.0)),
    window_explanations: tuple[str, ...] = ("BRAIN", "BONE"),
    rescale_slope: float = 1.0,
    rescale_intercept: float = -1024.0,
    bits_stored: int = 12,
    pixel_representation: int = 0,
    transfer_syntax: str = pydicom.uid.ExplicitVRLittleEndian,
    patient_name: str = "Phantom^Head",
    patient_id: str = "MV-SYNTH-0001",
    rich_header: bool = True,
    study_description: str = "Synthetic head CT (phantom)",
    first_slice_z_mm: float = 0.0,
    slice_thickness_mm: float | None = None,
    name_prefix: str = "IM_",
    overwrite: bool = False,
) -> list[Path]:
    """Write one CT Image Storage file per slice into folder and return the paths in slice order
    (index 0 = first slice of the volume = lowest position along the slice normal).

    pixel_spacing_mm is DICOM's (row spacing, column spacing). Slice k's top-left corner is at
    (-cols*dx/2, -rows*dy/2, first_slice_z_mm + k*slice_spacing_mm). A gantry tilt turns the column
    direction to (0, cos t, sin t) while positions still advance along patient z only, as on a real
    tilted scanner, so only sorting along the slice normal (0, -sin t, cos t) orders the slices.
    UIDs not given are derived from uid_seed (the series UID also from the study UID and series_number),
    so the same call writes the same bytes. With shuffle_seed the names are IM_<8 hex>.dcm in no
    particular order and differ between series; numbered names need another name_prefix for a second
    series in the same folder. Existing files are only replaced with overwrite=True, so one series
    never silently clobbers another.
    """
    folder = Path(folder)
    hu_volume = np.asarray(hu_volume)
    if hu_volume.ndim != 3 or 0 in hu_volume.shape:
        raise ValueError(f"hu_volume must be (slices, rows, cols), got shape {hu_volume.shape}")
    transfer_syntax = UID(transfer_syntax)
    _check_transfer_syntax(transfer_syntax)
    if len(windows) != len(window_explanations):
        raise ValueError(
            f"{len(windows)} windows but {len(window_explanations)} window explanations; give one per window"
        )
    if not 1 <= bits_stored <= 16 or pixel_representation not in (0, 1) or rescale_slope <= 0:
        raise ValueError(
            f"unsupported encoding: bits_stored={bits_stored}, pixel_representation={pixel_representation}, "
            f"rescale_slope={rescale_slope}"
        )
    slice_count, rows, columns = hu_volume.shape

    study_uid = study_uid or generate_uid(entropy_srcs=[uid_seed, "study"])
    series_uid = series_uid or generate_uid(entropy_srcs=[uid_seed, "series", study_uid, str(series_number)])
    instance_uids = [
        generate_uid(entropy_srcs=[uid_seed, series_uid, "instance", str(index)]) for index in range(slice_count)
    ]
    paths = [folder / name for name in _file_names(slice_count, name_prefix, shuffle_seed, series_uid)]
    if not overwrite:
        existing = [path for path in paths if path.exists()]
        if existing:
            raise OutputError(
                f"{existing[0]} already exists ({len(existing)} of {slice_count} names taken); "
                "pass overwrite=True, another name_prefix or another shuffle_seed"
            )
    folder.mkdir(parents=True, exist_ok=True)

    encoding = _StoredEncoding(
        rescale_slope=rescale_slope,
        rescale_intercept=rescale_intercept,
        bits_stored=bits_stored,
        pixel_representation=pixel_representation,
        big_endian=transfer_syntax == pydicom.uid.ExplicitVRBigEndian,
    )
    row_spacing_mm, column_spacing_mm = pixel_spacing_mm
    tilt = math.radians(gantry_tilt_deg)
    top_left_x = -(columns * column_spacing_mm) / 2
    top_left_y = -(rows * row_spacing_mm) / 2

    # One header for the whole series; per slice only the instance UID, number, position and pixels change.
    # Rebuilding or deep-copying ~100 elements per slice would dominate the 500-slice benchmark.
    dataset = _series_header(
        study_uid=study_uid,
        series_uid=series_uid,
        frame_of_reference_uid=generate_uid(entropy_srcs=[uid_seed, "frame-of-reference", study_uid]),
        transfer_syntax=transfer_syntax,
        rows=rows,
        columns=columns,
        pixel_spacing_mm=(row_spacing_mm, column_spacing_mm),
        slice_thickness_mm=slice_spacing_mm if slice_thickness_mm is None else slice_thickness_mm,
        gantry_tilt_deg=gantry_tilt_deg,
        column_direction=(0.0, math.cos(tilt), math.sin(tilt)),
        series_number=series_number,
        series_description=series_description,
        study_description=study_description,
        windows=windows,
        window_explanations=window_explanations,
        encoding=encoding,
        patient_name=patient_name,
        patient_id=patient_id,
        rich_header=rich_header,
        uid_seed=uid_seed,
    )
    plugin = _ENCODING_PLUGINS.get(transfer_syntax)
    total_clipped = 0
    for index, (path, instance_uid) in enumerate(zip(paths, instance_uids, strict=True)):
        z_mm = first_slice_z_mm + index * slice_spacing_mm
        dataset.SOPInstanceUID = instance_uid
        dataset.file_meta.MediaStorageSOPInstanceUID = instance_uid
        dataset.InstanceNumber = index + 1
        dataset.ImagePositionPatient = [_ds(top_left_x), _ds(top_left_y), _ds(z_mm)]
        dataset.SliceLocation = _ds(z_mm)
        stored, clipped_count = encoding.stored_values(hu_volume[index])
        total_clipped += clipped_count
        if plugin is None:
            dataset["PixelData"].value = stored.tobytes()
        else:
            dataset.compress(transfer_syntax, stored, encoding_plugin=plugin, generate_instance_uid=False)
        write_atomically(path, lambda temporary: pydicom.dcmwrite(temporary, dataset, enforce_file_format=True))
    if total_clipped:
        logger.debug("clipped %d pixel values to the %d-bit stored range", total_clipped, bits_stored)
    logger.info("wrote %d CT slices (%s) to %s", slice_count, transfer_syntax.name, folder)
    return paths


def _check_transfer_syntax(transfer_syntax: UID) -> None:
    """Fail before writing anything if the syntax is unknown or its encoder is not installed."""
    if transfer_syntax in _NATIVE_SYNTAXES:
        return
    if transfer_syntax not in _ENCODING_PLUGINS:
        supported = ", ".join(UID(uid).name for uid in SUPPORTED_TRANSFER_SYNTAXES)
        raise ValueError(f"cannot write {transfer_syntax!r}; supported transfer syntaxes: {supported}")
    encoder = get_encoder(transfer_syntax)
    plugin = _ENCODING_PLUGINS[transfer_syntax]
    available = encoder.is_available if not plugin else plugin in encoder.available_plugins
    if not available:
        missing = "; ".join(encoder.missing_dependencies) or f"the {plugin} plugin"
        raise OutputError(f"cannot write {transfer_syntax.name}: no pixel data encoder is installed ({missing})")


def _file_names(slice_count: int, prefix: str, shuffle_seed: int | None, series_uid: str) -> list[str]:
    """Names in slice order: numbered, or random hex (seeded by shuffle_seed and the series) so that
    directory order says nothing about slice order."""
    if shuffle_seed is None:
        return [f"{prefix}{index + 1:05d}.dcm" for index in range(slice_count)]
    # The series UID joins the seed so two series shuffled with the same seed can share a folder.
    series_entropy = int.from_bytes(hashlib.sha256(series_uid.encode()).digest()[:8], "little")
    rng = np.random.default_rng([shuffle_seed, series_entropy, slice_count])
    codes: list[int] = []
    taken: set[int] = set()
    while len(codes) < slice_count:
        for code in rng.integers(0, 2**32, size=slice_count - len(codes), dtype=np.uint64).tolist():
            if code not in taken:
                taken.add(code)
                codes.append(code)
    return [f"{prefix}{code:08x}.dcm" for code in codes]


def _ds(value: float) -> DSfloat:
    """A Decimal String that fits DICOM's 16 characters (cosines and positions often would not)."""
    return DSfloat(value, auto_format=True)


def _series_header(
    *,
    study_uid: str,
    series_uid: str,
    frame_of_reference_uid: str,
    transfer_syntax: UID,
    rows: int,
    columns: int,
    pixel_spacing_mm: tuple[float, float],
    slice_thickness_mm: float,
    gantry_tilt_deg: float,
    column_direction: tuple[float, float, float],
    series_number: int,
    series_description: str,
    study_description: str,
    windows: tuple[tuple[float, float], ...],
    window_explanations: tuple[str, ...],
    encoding: _StoredEncoding,
    patient_name: str,
    patient_id: str,
    rich_header: bool,
    uid_seed: str,
) -> Dataset:
    """The dataset shared by every slice of a series; the per-slice elements are overwritten for each file."""
    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    file_meta.MediaStorageSOPInstanceUID = study_uid  # replaced per slice
    file_meta.TransferSyntaxUID = transfer_syntax
    file_meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    file_meta.ImplementationVersionName = f"PYDICOM {pydicom.__version__}"[:16]

    ds = Dataset()
    ds.file_meta = file_meta
    ds.preamble = b"\0" * 128
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = study_uid  # replaced per slice
    ds.StudyDate = _STUDY_DATE
    ds.SeriesDate = _STUDY_DATE
    ds.AcquisitionDate = _STUDY_DATE
    ds.ContentDate = _STUDY_DATE
    ds.StudyTime = _STUDY_TIME
    ds.SeriesTime = _ACQUISITION_TIME
    ds.AcquisitionTime = _ACQUISITION_TIME
    ds.ContentTime = _ACQUISITION_TIME
    ds.AccessionNumber = "MVSYN0001"
    ds.Modality = "CT"
    ds.Manufacturer = "MedViewer"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = study_description
    ds.SeriesDescription = series_description
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = "HEAD"
    ds.SliceThickness = _ds(slice_thickness_mm)
    ds.KVP = _ds(120)
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = 1  # replaced per slice
    ds.ImagePositionPatient = [_ds(0.0)] * 3  # replaced per slice
    ds.ImageOrientationPatient = [_ds(1.0), _ds(0.0), _ds(0.0)] + [_ds(c) for c in column_direction]
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = _ds(0.0)  # replaced per slice
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.PixelSpacing = [_ds(pixel_spacing_mm[0]), _ds(pixel_spacing_mm[1])]
    ds.BitsAllocated = 16
    ds.BitsStored = encoding.bits_stored
    ds.HighBit = encoding.bits_stored - 1
    ds.PixelRepresentation = encoding.pixel_representation
    if windows:
        ds.WindowCenter = [_ds(center) for center, _ in windows]
        ds.WindowWidth = [_ds(width) for _, width in windows]
        ds.WindowCenterWidthExplanation = list(window_explanations)
    ds.RescaleIntercept = _ds(encoding.rescale_intercept)
    ds.RescaleSlope = _ds(encoding.rescale_slope)
    ds.RescaleType = "HU"
    ds.GantryDetectorTilt = _ds(gantry_tilt_deg)
    if rich_header:
        _add_acquisition_details(ds, rows=rows, columns=columns, pixel_spacing_mm=pixel_spacing_mm, uid_seed=uid_seed)
    ds.add_new("PixelData", "OW", b"")  # replaced per slice
    return ds


def _add_acquisition_details(
    ds: Dataset, *, rows: int, columns: int, pixel_spacing_mm: tuple[float, float], uid_seed: str
) -> None:
    """What a real scanner adds (equipment, technique, dose, nested sequences, a private block), so that
    header parsing in benchmarks costs what it would on a clinical series."""
    ds.InstanceCreationDate = _STUDY_DATE
    ds.InstanceCreationTime = _ACQUISITION_TIME
    ds.InstitutionName = "MedViewer Synthetic Imaging"
    ds.InstitutionAddress = "1 Phantom Way, Nowhere"
    ds.StationName = "SYNTHCT01"
    ds.InstitutionalDepartmentName = "Radiology"
    ds.OperatorsName = "Tech^Synthetic"
    ds.ManufacturerModelName = "Synthetic CT 64"
    ds.DeviceSerialNumber = "000042"
    ds.SoftwareVersions = "medviewer-synthetic 1"
    ds.ProtocolName = "Routine head"
    ds.PerformedProcedureStepStartDate = _STUDY_DATE
    ds.PerformedProcedureStepStartTime = _STUDY_TIME
    ds.PerformedProcedureStepID = "PPS0001"
    ds.PerformedProcedureStepDescription = "CT head without contrast"
    ds.TimezoneOffsetFromUTC = "+0000"
    ds.PatientAge = "045Y"
    ds.PatientSize = _ds(1.75)
    ds.PatientWeight = _ds(70)
    ds.PatientIdentityRemoved = "NO"
    ds.IssuerOfPatientID = "MEDVIEWER"
    ds.ScanOptions = "HELICAL MODE"
    ds.DataCollectionDiameter = _ds(500)
    ds.ReconstructionDiameter = _ds(columns * pixel_spacing_mm[1])
    ds.DistanceSourceToDetector = _ds(1085.6)
    ds.DistanceSourceToPatient = _ds(595)
    ds.TableHeight = _ds(150)
    ds.RotationDirection = "CW"
    ds.ExposureTime = 1000
    ds.XRayTubeCurrent = 300
    ds.Exposure = 300
    ds.FilterType = "HEAD FILTER"
    ds.GeneratorPower = 36
    ds.FocalSpots = _ds(0.7)
    ds.ConvolutionKernel = "H30s"
    ds.RevolutionTime = 1.0
    ds.SingleCollimationWidth = 0.625
    ds.TotalCollimationWidth = 40.0
    ds.TableSpeed = 21.0
    ds.TableFeedPerRotation = 21.0
    ds.SpiralPitchFactor = 0.53
    ds.DataCollectionCenterPatient = [0.0, 0.0, 0.0]
    ds.ReconstructionTargetCenterPatient = [0.0, 0.0, 0.0]
    ds.ExposureModulationType = "NONE"
    ds.CTDIvol = 52.4
    ds.ReconstructionAlgorithm = "FILTER_BACK_PROJ"
    ds.LossyImageCompression = "00"
    ds.BurnedInAnnotation = "NO"
    ds.ImageComments = "Synthetic phantom generated by MedViewer; not patient data"
    ds.IrradiationEventUID = generate_uid(entropy_srcs=[uid_seed, "irradiation", ds.SeriesInstanceUID])

    ds.ProcedureCodeSequence = Sequence([_code("24725-4", "LN", "CT Head")])
    ds.AnatomicRegionSequence = Sequence([_code("69536005", "SCT", "Head")])
    ds.CTDIPhantomTypeCodeSequence = Sequence([_code("113690", "DCM", "IEC Head Dosimetry Phantom")])
    localizer = Dataset()
    localizer.ReferencedSOPClassUID = CT_IMAGE_STORAGE
    localizer.ReferencedSOPInstanceUID = generate_uid(entropy_srcs=[uid_seed, "localizer", ds.StudyInstanceUID])
    ds.ReferencedImageSequence = Sequence([localizer])
    request = Dataset()
    request.RequestedProcedureID = "RP0001"
    request.ScheduledProcedureStepID = "SPS0001"
    request.RequestedProcedureDescription = "CT head"
    ds.RequestAttributesSequence = Sequence([request])

    private = ds.private_block(0x0019, "MEDVIEWER SYNTHETIC", create=True)
    private.add_new(0x01, "LO", "ellipsoid head phantom")
    private.add_new(0x02, "DS", "8.0")
    private.add_new(0x03, "SH", str(rows * columns))


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


# --------------------------------------------------------------------------------------------------
# Exports
# --------------------------------------------------------------------------------------------------


def write_dicomdir_export(files: list[Path], dest: Path) -> Path:
    """Copy the given DICOM files into a CD/USB-style File-set under dest using pydicom.fileset.FileSet
    (pydicom chooses the PT*/ST*/SE*/IM* layout) and write the DICOMDIR; return the DICOMDIR path.

    The File-set is built in a sibling temp folder and renamed into place, so dest is either absent or
    complete; dest must not exist yet or be empty, because a medium holds exactly one File-set.
    """
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise OutputError(f"{dest} already exists and is not an empty folder; a File-set needs a fresh one")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        file_set = FileSet()
        for path in files:
            file_set.add(Path(path))
        file_set.write(staging)
        if dest.exists():
            dest.rmdir()
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("exported %d instances as a File-set in %s", len(files), dest)
    return dest / "DICOMDIR"


def write_sample_png(path: Path, image: np.ndarray) -> None:
    """Write a 2-D uint8 image as an 8-bit grayscale PNG, atomically; window the image first, because
    choosing how HU map to grey levels is the caller's decision, not a file writer's."""
    from PIL import Image  # only this helper needs Pillow

    path = Path(path)
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"need a 2-D uint8 image, got {image.dtype} with shape {image.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda temporary: Image.fromarray(image).save(temporary, format="PNG"))
