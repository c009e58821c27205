"""One DICOM file as the loader sees it: header facts, pixel decoding, and the modality LUT in real units."""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import pydicom.config
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi
from pydicom.pixels import pixel_array as pydicom_pixel_array
from pydicom.uid import UID

from medviewer.errors import InvalidHeaderError, UnreadableFileError
from medviewer.io.frame_count import bits_per_frame, claimed_frames, count_frames
from medviewer.io.header_scan import FastScanUnsupported, MalformedDicom, scan_header
from medviewer.io.header_values import (
    as_number,
    geometry_vector,
    optional_whole_number,
    positive_number,
    rescale,
    whole_number,
)
from medviewer.io.input_file import open_input_file
from medviewer.io.lookup_tables import Palette, check_lut_sequence, palette
from medviewer.io.window import Window

log = logging.getLogger(__name__)

# Larger frames are refused before any allocation: a corrupt or hostile header must not exhaust memory.
MAX_FRAME_PIXELS = 500_000_000

_NATIVE_LITTLE_ENDIAN = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
_NATIVE_DTYPES = {(8, 0): "u1", (8, 1): "i1", (16, 0): "<u2", (16, 1): "<i2", (32, 0): "<u4", (32, 1): "<i4"}
_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
_MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
_MAX_SIDE = 65535  # Rows and Columns are US
_BITS_ALLOCATED = (1, 8, 16, 32, 64)  # what pydicom's decoders (and PS3.5 8.1.1) allow


class NotDicom(UnreadableFileError):
    """Neither a Part-10 file nor a raw dataset: a folder's stray text, PDF or executable."""


class NoPixelData(UnreadableFileError):
    """A valid DICOM object that is not an image (structured report, RT plan, encapsulated PDF ...)."""


@dataclass
class DicomFile:
    """What one DICOM file holds, as far as grouping, sorting and decoding need to know."""

    path: Path
    transfer_syntax_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    modality: str
    rows: int
    columns: int
    samples_per_pixel: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    number_of_frames: int = 1
    frame_of_reference_uid: str = ""
    study_description: str = ""
    series_description: str = ""
    study_date: str = ""
    patient_name: str = ""
    patient_id: str = ""
    series_number: int | None = None
    instance_number: int | None = None
    image_type: tuple[str, ...] = ()
    pixel_spacing_mm: tuple[float, float] | None = None  # (row spacing, column spacing)
    pixel_spacing_source: str = ""  # "PixelSpacing" or "ImagerPixelSpacing" (detector plane, not patient)
    orientation: tuple[float, ...] | None = None  # row cosines then column cosines
    positions: list[tuple[float, float, float] | None] = field(default_factory=list)  # one per frame
    slice_thickness_mm: float | None = None
    rescale_slope: float | None = None
    rescale_intercept: float | None = None
    rescale_type: str = ""
    units_tag: str = ""
    windows: tuple[Window, ...] = ()
    lossy_compressed: bool = False
    float_pixels: bool = False  # Float or Double Float Pixel Data: values may be NaN or infinite
    voi_lut: bool = False  # a usable VOI LUT Sequence: the modality's own display mapping
    palette: Palette | None = field(default=None, repr=False)  # PALETTE COLOR: the checked table
    notes: list[str] = field(default_factory=list)  # what was wrong with the header but did not stop loading
    pixel_data_offset: int | None = None
    pixel_data_length: int | None = None
    dataset: Dataset | None = field(default=None, repr=False)  # full header, when pydicom read it

    @property
    def is_colour(self) -> bool:
        return self.samples_per_pixel > 1 or self.photometric == "PALETTE COLOR"

    @property
    def transfer_syntax_name(self) -> str:
        uid = UID(self.transfer_syntax_uid)
        return uid.name if uid.is_valid and uid.name != uid else self.transfer_syntax_uid

    @property
    def units(self) -> str:
        """Units of the modality-LUT output: HU for CT, the Units tag for PET, else the rescale type."""
        rescale_type = self.rescale_type.strip()
        if rescale_type and rescale_type.upper() not in ("US", "UNSPECIFIED"):
            return "HU" if rescale_type.upper() == "HU" else rescale_type
        if self.modality == "CT" and self.rescale_slope is not None:
            return "HU"
        if self.units_tag:
            return self.units_tag
        return ""

    @property
    def frame_bytes(self) -> int:
        bits = self.bits_allocated if self.bits_allocated >= 8 else 1
        return math.ceil(self.rows * self.columns * self.samples_per_pixel * bits / 8)

    @property
    def stored_dtype(self) -> np.dtype | None:
        """The native-order dtype of 8/16/32-bit integer samples (what pydicom decodes them to), else None."""
        key = _NATIVE_DTYPES.get((self.bits_allocated, self.pixel_representation))
        return np.dtype(key).newbyteorder("=") if key else None

    @property
    def uses_fast_pixels(self) -> bool:
        """Native little-endian monochrome frames can be read straight from the file into place."""
        return (
            self.transfer_syntax_uid in _NATIVE_LITTLE_ENDIAN
            and self.pixel_data_offset is not None
            and self.pixel_data_length is not None
            and self.samples_per_pixel == 1
            and self.photometric in _MONOCHROME
            and self.number_of_frames == 1
            and (self.bits_allocated, self.pixel_representation) in _NATIVE_DTYPES
        )


def is_dicom_file(path: Path) -> bool:
    """True for a Part-10 file (preamble + DICM) or a raw little/big-endian dataset pydicom can read."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(132)
    except OSError:
        return False
    if len(start) == 132 and start[128:132] == b"DICM":
        return True
    # A raw dataset without preamble starts with a group 0002 or 0008 element (PS3.10 7.1 is not followed).
    return len(start) >= 8 and start[:2] in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")


def read_dicom_header(path: Path) -> DicomFile:
    """Header facts of one file: the fast scanner where it applies, pydicom otherwise."""
    path = Path(path)
    try:
        scanned = scan_header(path)
    except (FastScanUnsupported, MalformedDicom, ValueError, OSError) as reason:
        _check_readable(path)  # only now: three stat calls per file are a tenth of the header budget
        if not is_dicom_file(path):
            raise NotDicom(path, "not a DICOM or image file") from None
        log.debug("%s: reading header with pydicom (%s)", path, reason)
        return _header_from_pydicom(path)
    elements = scanned.elements
    if scanned.pixel_data_offset is None:
        # Let pydicom decide what kind of object this is, for an accurate reason.
        return _header_from_pydicom(path)
    try:
        header = _header_from_elements(path, scanned.transfer_syntax_uid, elements)
    except (TypeError, ValueError, KeyError):
        return _header_from_pydicom(path)
    if header.number_of_frames != 1 or header.is_colour or header.photometric not in _MONOCHROME:
        return _header_from_pydicom(path)
    header.pixel_data_offset = scanned.pixel_data_offset
    header.pixel_data_length = scanned.pixel_data_length
    _check_frame_size(header)
    if header.uses_fast_pixels and scanned.pixel_data_offset + header.frame_bytes > scanned.file_size:
        raise UnreadableFileError(
            path,
            f"truncated: pixel data needs {header.frame_bytes} bytes, the file holds "
            f"{scanned.file_size - scanned.pixel_data_offset}",
        )
    return header


def _check_readable(path: Path) -> None:
    open_input_file(path)[0].close()


def _header_from_pydicom(path: Path) -> DicomFile:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(path, force=True, defer_size="64 KB")
    except PermissionError:
        raise UnreadableFileError(path, "permission denied") from None
    except Exception as error:  # pydicom raises many types for corrupt input
        raise UnreadableFileError(path, f"not a readable DICOM file ({_short(error)})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _header_from_dataset(path, dataset)
    except UnreadableFileError:
        raise
    except Exception as error:  # values convert lazily: a damaged element fails when first read
        raise UnreadableFileError(path, f"invalid DICOM header ({_short(error)})") from None


def _header_from_dataset(path: Path, dataset: Dataset) -> DicomFile:
    if not any(keyword in dataset for keyword in _PIXEL_KEYWORDS):
        raise NoPixelData(path, f"no pixel data ({_describe_sop_class(dataset)})")
    meta = getattr(dataset, "file_meta", None)
    transfer_syntax = str(getattr(meta, "TransferSyntaxUID", "") or "") if meta is not None else ""
    if not transfer_syntax:
        raise UnreadableFileError(path, "no transfer syntax: the file meta header is missing")
    elements = {}
    for tag in list(dataset.keys()):
        if tag in _PIXEL_TAGS:
            continue  # reading the element would read the (deferred) pixel data itself
        element = dataset[tag]
        if element.keyword and element.VR != "SQ":
            elements[element.keyword] = element.value
    float_pixels = "PixelData" not in dataset
    header = _header_from_elements(path, transfer_syntax, elements, float_pixels)
    _check_frame_size(header)  # before counting frames: the size decides the bytes per frame
    frame_bits = bits_per_frame(
        header.rows, header.columns, header.samples_per_pixel, header.bits_allocated, header.photometric
    )
    encapsulated = UID(transfer_syntax).is_encapsulated
    counted = count_frames(path, dataset, elements.get("NumberOfFrames"), frame_bits, encapsulated)
    header.number_of_frames = counted.frames
    header.positions = [header.positions[0] if header.positions else None] * counted.frames
    if counted.note:
        header.notes.append(counted.note)
    _apply_functional_groups(header, dataset)
    _check_lookup_tables(header, dataset)
    header.dataset = dataset
    return header


def _check_lookup_tables(header: DicomFile, dataset: Dataset) -> None:
    """A broken palette or Modality LUT would give wrong colours or units: refused. A broken VOI LUT only
    changes the default display: it is ignored (windows or auto take over) with a note."""
    if header.photometric == "PALETTE COLOR":
        header.palette = palette(header.path, dataset, header.transfer_syntax_uid)
    problem = check_lut_sequence(header.path, dataset, "ModalityLUTSequence")
    if problem:
        raise UnreadableFileError(header.path, f"invalid Modality LUT: {problem}")
    problem = check_lut_sequence(header.path, dataset, "VOILUTSequence")
    if problem:
        header.notes.append(f"VOI LUT ignored ({problem}); the file's window or an automatic one is used")
    header.voi_lut = bool(dataset.get("VOILUTSequence")) and not problem


def _describe_sop_class(dataset: Dataset) -> str:
    uid = dataset.get("SOPClassUID") or getattr(getattr(dataset, "file_meta", None), "MediaStorageSOPClassUID", "")
    if str(uid) == _MEDIA_STORAGE_DIRECTORY:
        return "a DICOMDIR index"
    return UID(str(uid)).name if uid else "no SOP class"


def _header_from_elements(path: Path, transfer_syntax: str, elements: dict, float_pixels: bool = False) -> DicomFile:
    """Header facts from converted elements; every numeric field is checked here, where it is read
    (`header_values`): what decoding needs is refused when invalid, what only adds information is dropped
    with a note."""

    def text(keyword: str) -> str:
        value = elements.get(keyword)
        if value is None:
            return ""
        if isinstance(value, (bytes, bytearray)):
            return value.decode("latin-1", "replace").strip("\x00 ")
        if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
            return "\\".join(str(part) for part in value)
        return str(value).strip()

    notes: list[str] = []
    rows = whole_number(path, elements, "Rows", 1, _MAX_SIDE)
    columns = whole_number(path, elements, "Columns", 1, _MAX_SIDE)
    bits_allocated = whole_number(path, elements, "BitsAllocated", 1, 64, allowed=_BITS_ALLOCATED)
    bits_stored = whole_number(path, elements, "BitsStored", 1, bits_allocated, default=bits_allocated)
    high_bit = whole_number(path, elements, "HighBit", 0, bits_allocated - 1, default=bits_stored - 1)
    if high_bit != bits_stored - 1:  # pydicom decodes by BitsStored alone, as most viewers do
        notes.append(f"HighBit {high_bit} does not match BitsStored {bits_stored}; BitsStored used")
    samples = whole_number(path, elements, "SamplesPerPixel", 1, 3, default=1, allowed=(1, 3))
    representation = whole_number(path, elements, "PixelRepresentation", 0, 1, default=0)
    photometric = text("PhotometricInterpretation").upper() or ("RGB" if samples == 3 else "MONOCHROME2")
    expected_samples = 1 if photometric in _MONOCHROME + ("PALETTE COLOR",) else 3
    if samples != expected_samples:
        raise InvalidHeaderError(
            path, "SamplesPerPixel", samples, f"{photometric} needs {expected_samples} sample(s) per pixel"
        )
    if samples == 3:
        whole_number(path, elements, "PlanarConfiguration", 0, 1, default=0)
    # Float Pixel Data has no Modality LUT module: its values are already in units.
    slope, intercept = (None, None) if float_pixels else rescale(path, elements, bits_stored, representation == 1)
    spacing = geometry_vector(elements, "PixelSpacing", 2, notes, positive=True)
    spacing_source = "PixelSpacing" if spacing else ""
    if spacing is None:
        spacing = geometry_vector(elements, "ImagerPixelSpacing", 2, notes, positive=True)
        spacing_source = "ImagerPixelSpacing" if spacing else ""
    orientation = geometry_vector(elements, "ImageOrientationPatient", 6, notes)
    if orientation is not None and not _is_orientation(orientation):
        notes.append("ImageOrientationPatient ignored: its row and column vectors are not perpendicular unit vectors")
        orientation = None
    position = geometry_vector(elements, "ImagePositionPatient", 3, notes)
    claimed = claimed_frames(elements.get("NumberOfFrames"))
    windows = _windows(_float_list(elements.get("WindowCenter")), _float_list(elements.get("WindowWidth")), elements)
    image_type = elements.get("ImageType") or ()
    if isinstance(image_type, str):
        image_type = tuple(image_type.split("\\"))
    elif isinstance(image_type, (bytes, bytearray)):
        image_type = ()
    # Any claim but exactly 1 is checked against the pixel data (`frame_count`) on the pydicom path before
    # anything is sized by it: a claim of 2**31 frames must not allocate 2**31 of anything.
    frames = 1 if claimed == 1 else 0
    return DicomFile(
        path=path,
        transfer_syntax_uid=transfer_syntax,
        sop_class_uid=text("SOPClassUID"),
        sop_instance_uid=text("SOPInstanceUID"),
        study_uid=text("StudyInstanceUID"),
        series_uid=text("SeriesInstanceUID"),
        frame_of_reference_uid=text("FrameOfReferenceUID"),
        modality=text("Modality").upper(),
        rows=rows,
        columns=columns,
        samples_per_pixel=samples,
        photometric=photometric,
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        pixel_representation=representation,
        number_of_frames=frames,
        study_description=text("StudyDescription"),
        series_description=text("SeriesDescription"),
        study_date=text("StudyDate"),
        patient_name=text("PatientName"),
        patient_id=text("PatientID"),
        series_number=optional_whole_number(elements, "SeriesNumber"),
        instance_number=optional_whole_number(elements, "InstanceNumber"),
        image_type=tuple(str(part) for part in image_type),
        pixel_spacing_mm=(spacing[0], spacing[1]) if spacing else None,
        pixel_spacing_source=spacing_source,
        orientation=orientation,
        positions=[position],  # one per frame once the frames are counted
        slice_thickness_mm=positive_number(elements, "SliceThickness", notes),
        rescale_slope=slope,
        rescale_intercept=intercept,
        rescale_type=text("RescaleType"),
        units_tag=text("Units"),
        windows=windows,
        lossy_compressed=text("LossyImageCompression") == "01",
        float_pixels=float_pixels,
        notes=notes,
    )


def _is_orientation(cosines: tuple[float, ...]) -> bool:
    """Two unit vectors at right angles, within the rounding of 16-character Decimal Strings (and a little
    more: scanners write 6 decimals)."""
    row, column = np.asarray(cosines[:3]), np.asarray(cosines[3:])
    return (
        abs(np.linalg.norm(row) - 1.0) < 0.01
        and abs(np.linalg.norm(column) - 1.0) < 0.01
        and abs(float(np.dot(row, column))) < 0.01
    )


def _float_list(value) -> list[float]:
    """A DICOM value of multiplicity 1-n as a list of floats (absent or empty: []); a value that is not a
    number becomes NaN, which `_windows` drops with the window it belongs to."""
    if value is None or value == "":
        return []
    parts = list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    return [math.nan if (number := as_number(part)) is None else number for part in parts]


def _windows(centers: list[float], widths: list[float], elements: dict) -> tuple[Window, ...]:
    explanations = elements.get("WindowCenterWidthExplanation") or []
    if isinstance(explanations, str):
        explanations = explanations.split("\\")
    function = str(elements.get("VOILUTFunction") or "LINEAR").strip().upper()
    windows = []
    for index, (center, width) in enumerate(zip(centers, widths, strict=False)):  # unpaired values are ignored
        if not math.isfinite(center) or not math.isfinite(width) or width <= 0:
            continue  # a window that cannot be applied is not offered; the automatic one stands in
        name = str(explanations[index]).strip() if index < len(explanations) else ""
        windows.append(Window(center, width, function, name or f"file window {index + 1}"))
    return tuple(windows)


def _apply_functional_groups(header: DicomFile, dataset: Dataset) -> None:
    """Enhanced (multi-frame) objects keep geometry and rescale in functional groups (PS3.3 C.7.6.16)."""
    shared = _first_item(dataset, "SharedFunctionalGroupsSequence")
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence") or []

    def lookup(frame_group: Dataset | None, sequence: str, keyword: str):
        for group in (frame_group, shared):
            item = _first_item(group, sequence) if group is not None else None
            if item is not None and keyword in item:
                return item.get(keyword)
        return None

    first_frame = per_frame[0] if len(per_frame) else None

    def first(sequence: str, keyword: str) -> dict:
        return {keyword: lookup(first_frame, sequence, keyword)}

    # The same checks as the top-level elements (`header_values`), on the values the groups hold.
    notes = header.notes
    if header.orientation is None:
        orientation = geometry_vector(
            first("PlaneOrientationSequence", "ImageOrientationPatient"), "ImageOrientationPatient", 6, notes
        )
        header.orientation = orientation if orientation is not None and _is_orientation(orientation) else None
    if header.pixel_spacing_mm is None:
        spacing = geometry_vector(first("PixelMeasuresSequence", "PixelSpacing"), "PixelSpacing", 2, notes, True)
        if spacing is not None:
            header.pixel_spacing_mm, header.pixel_spacing_source = (spacing[0], spacing[1]), "PixelSpacing"
    if header.slice_thickness_mm is None:
        header.slice_thickness_mm = positive_number(
            first("PixelMeasuresSequence", "SliceThickness"), "SliceThickness", notes
        )
    if header.rescale_slope is None and not header.float_pixels:
        values = {
            keyword: lookup(first_frame, "PixelValueTransformationSequence", keyword)
            for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType")
        }
        if values["RescaleSlope"] is not None and values["RescaleIntercept"] is not None:
            signed = header.pixel_representation == 1
            header.rescale_slope, header.rescale_intercept = rescale(header.path, values, header.bits_stored, signed)
            header.rescale_type = str(values["RescaleType"] or "")
    if not header.windows:
        voi = {
            key: lookup(first_frame, "FrameVOILUTSequence", key)
            for key in ("WindowCenter", "WindowWidth", "WindowCenterWidthExplanation", "VOILUTFunction")
        }
        header.windows = _windows(_float_list(voi["WindowCenter"]), _float_list(voi["WindowWidth"]), voi)
    if len(per_frame) == header.number_of_frames and all(p is None for p in header.positions):
        header.positions = [
            geometry_vector(
                {"ImagePositionPatient": lookup(group, "PlanePositionSequence", "ImagePositionPatient")},
                "ImagePositionPatient",
                3,
                notes,
            )
            for group in per_frame
        ]


def _first_item(dataset: Dataset | None, keyword: str) -> Dataset | None:
    sequence = dataset.get(keyword) if dataset is not None else None
    return sequence[0] if sequence else None


def _check_frame_size(header: DicomFile) -> None:
    pixels = header.rows * header.columns
    if pixels > MAX_FRAME_PIXELS:
        raise UnreadableFileError(
            header.path,
            f"header claims {header.rows}x{header.columns} pixels "
            f"({pixels / 1e6:,.0f} megapixels), over the {MAX_FRAME_PIXELS / 1e6:,.0f}-megapixel limit",
        )
    if header.uses_fast_pixels and header.pixel_data_length < header.frame_bytes:
        raise UnreadableFileError(
            header.path,
            f"pixel data holds {header.pixel_data_length} bytes, the header implies {header.frame_bytes}",
        )


def decode_frame(header: DicomFile, index: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """Stored pixel values of one frame, exactly as pydicom's `pixel_array` gives them.

    Colour comes back as RGB (pydicom converts YBR); palette colour as the palette indices.
    With `out` (monochrome only), the frame is written there and `out` is returned.
    """
    if not 0 <= index < header.number_of_frames:
        raise UnreadableFileError(header.path, f"frame {index} out of range 0..{header.number_of_frames - 1}")
    if header.uses_fast_pixels:
        return _read_native_frame(header, out)
    frame = _decode_with_pydicom(header, index)
    if out is not None:
        out[...] = frame
        return out
    return frame


def _read_native_frame(header: DicomFile, out: np.ndarray | None) -> np.ndarray:
    # Why not pydicom: reading the bytes straight into their slot of the series volume avoids the
    # PixelData bytes object and the separate array that pydicom keeps, which is what keeps a full
    # series load at 1x the pixel memory instead of 3x.
    frame = out if out is not None else np.empty((header.rows, header.columns), dtype=header.stored_dtype)
    buffer = memoryview(frame.reshape(-1).view(np.uint8))
    try:
        with open(header.path, "rb") as handle:
            handle.seek(header.pixel_data_offset)
            read = handle.readinto(buffer)
    except OSError as error:
        raise UnreadableFileError(header.path, f"cannot read pixel data ({_short(error)})") from None
    if read != header.frame_bytes:
        raise UnreadableFileError(header.path, f"truncated: pixel data ends after {read} of {header.frame_bytes} bytes")
    if header.bits_stored < header.bits_allocated:
        # Same correction as pydicom's default `correct_unused_bits`: unused high bits are undefined
        # (PS3.5 8.1.1); an arithmetic shift in the stored dtype sign-extends or masks them.
        shift = header.bits_allocated - header.bits_stored
        np.left_shift(frame, shift, out=frame)
        np.right_shift(frame, shift, out=frame)
    return frame


def _decode_with_pydicom(header: DicomFile, index: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(header.path, force=True)
            if claimed_frames(dataset.get("NumberOfFrames")) != header.number_of_frames:
                # The header's claim was wrong (see `frame_count`): decode the frames the data holds.
                dataset.NumberOfFrames = header.number_of_frames
            if header.number_of_frames > 1:
                return pydicom_pixel_array(dataset, index=index)
            return dataset.pixel_array
    except MemoryError:
        raise UnreadableFileError(header.path, "not enough memory to decode the pixel data") from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # noqa: B036 - see below
        # Decoders raise RuntimeError, ValueError, NotImplementedError ...; the Rust ones (pylibjpeg-rle)
        # raise pyo3's PanicException on malformed data, which derives from BaseException, not Exception.
        raise UnreadableFileError(
            header.path, f"cannot decode {header.transfer_syntax_name} pixel data ({_short(error)})"
        ) from None


def modality_values(header: DicomFile, stored: np.ndarray) -> np.ndarray:
    """Values in the modality's units (HU for CT): float32 for grayscale, uint8 RGB for colour.

    The arithmetic is pydicom's `apply_modality_lut` (rescale or Modality LUT Sequence) and
    `apply_color_lut` (palette); we only choose the output dtype.
    """
    try:
        if header.photometric == "PALETTE COLOR":
            table = header.palette or palette(header.path, header.dataset, header.transfer_syntax_uid)
            return to_uint8_rgb(apply_color_lut(stored, table.dataset), table.bits)
        if header.is_colour:
            return to_uint8_rgb(stored, header.bits_stored)
        return np.asarray(apply_modality_lut(stored, _lut_dataset(header)), dtype=np.float32)
    except Exception as error:  # a damaged LUT in the header surfaces only here
        raise UnreadableFileError(header.path, f"invalid lookup table ({_short(error)})") from None


def has_voi_lut(header: DicomFile) -> bool:
    return header.voi_lut and header.dataset is not None


def voi_lut_brightness(header: DicomFile, values: np.ndarray) -> np.ndarray:
    """The file's VOI LUT Sequence (pydicom's `apply_voi`) as brightness in [0, 1].

    The LUT's output range is 0 .. 2**bits - 1, bits being the third LUT Descriptor value (PS3.3 C.11.2.1.1).
    """
    try:
        item = header.dataset.VOILUTSequence[0]
        bits = int(item.LUTDescriptor[2])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "VOI LUT on a float input": our values are whole where LUTs apply
            mapped = apply_voi(values, header.dataset)
        return (np.asarray(mapped, dtype=np.float32) / float((1 << bits) - 1)).clip(0.0, 1.0)
    except Exception as error:
        raise UnreadableFileError(header.path, f"invalid VOI LUT ({_short(error)})") from None


def to_uint8_rgb(rgb: np.ndarray, bits: int) -> np.ndarray:
    """Reduce deeper colour samples to 8 bits by dropping low bits, the way a display would."""
    if bits <= 8 or rgb.dtype == np.uint8:
        return rgb.astype(np.uint8, copy=False)
    return np.right_shift(rgb, bits - 8).astype(np.uint8)


def _lut_dataset(header: DicomFile) -> Dataset:
    """The Dataset that pydicom's LUT functions need; fast-scanned files get a minimal one."""
    if header.dataset is not None:
        dataset = header.dataset
        if "RescaleSlope" not in dataset and header.rescale_slope is not None:
            # Enhanced objects: rescale from the functional groups, found by _apply_functional_groups.
            dataset = Dataset()
            dataset.RescaleSlope = header.rescale_slope
            dataset.RescaleIntercept = header.rescale_intercept or 0.0
        return dataset
    dataset = Dataset()
    if header.rescale_slope is not None and header.rescale_intercept is not None:
        dataset.RescaleSlope = header.rescale_slope
        dataset.RescaleIntercept = header.rescale_intercept
    return dataset


def _short(error: BaseException) -> str:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return message if len(message) <= 160 else message[:157] + "..."
