"""Bad input, systematically: every damaged header field and odd array gives a picture or one line and exit 2.

The promise (README, "Bad input"): whatever file a user opens, the outcome is a picture, or one line on stderr
and exit code 2 from the command line (a message in the window, which keeps running); never a traceback, a hang,
a partial output file, or a changed input. The hand-written tests elsewhere each cover one damage; this module
walks a fixed grid instead, so that a field nobody thought of is still covered:

- DICOM: copies of pydicom's bundled files (each read by a different path of the loader: the fast header
  scanner, pydicom's big-endian reader, multi-frame native and RLE, palette, RGB, JPEG 2000, and VOI and
  Modality LUT Sequences added to a CT) with one header field set to 0, negative, huge or the wrong type.
- Arrays, as .npy and .tif: NaN and infinities, extreme integers, odd shapes and dtypes, and a pickled object
  array that must be refused without being unpickled.

Each file goes through `info`, `info --json`, `export` (.npy, .png) and `enhance` (nlm, bicubic-x2, nlm on a
simulated noise:25 degradation, and nlm to derived DICOM), and a representative subset through the window's
open path. Test ids name the base file, the field and the value ("CT_small-Rows=0"); a failure lists every
entry point that broke the promise with the last lines of its traceback. Nothing is random except where a
fixed seed says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from medviewer.cli import main
from medviewer.models.registry import USER_MODELS_ENVIRONMENT

SEED = 20240611
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
CALL_DEADLINE_S = 60  # one entry point on one small file takes well under a second; longer is a hang
KEPT_LINE = "NaN or infinite in the input, kept as they were"

# --- DICOM cases ---------------------------------------------------------------------------------------------

# How each field is encoded when its value is good: decides the VR a bad value is written with.
WHOLE = "whole"  # US fields (Rows, BitsStored ...)
INTEGER_STRING = "IS"  # NumberOfFrames
DECIMAL = "DS"  # one decimal string (RescaleSlope ...); WindowCenter/Width may hold several
DESCRIPTOR = "descriptor"  # a LUT descriptor: [entries, first mapped value, bits]
VECTOR_LENGTH = {"PixelSpacing": 2, "ImagerPixelSpacing": 2, "ImagePositionPatient": 3, "ImageOrientationPatient": 6}

FIELD_KIND = {
    **dict.fromkeys(
        (
            "Rows",
            "Columns",
            "BitsAllocated",
            "BitsStored",
            "HighBit",
            "SamplesPerPixel",
            "PixelRepresentation",
            "PlanarConfiguration",
        ),
        WHOLE,
    ),
    "NumberOfFrames": INTEGER_STRING,
    **dict.fromkeys(
        ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth", "SliceThickness", *VECTOR_LENGTH), DECIMAL
    ),
    **dict.fromkeys(
        ("RedPaletteColorLookupTableDescriptor", "VOILUTSequence.LUTDescriptor", "ModalityLUTSequence.LUTDescriptor"),
        DESCRIPTOR,
    ),
}

NUMBERS = (0, -1, -32768, 65535, 2**31 - 1)  # zero, negative, huge
WRONG_TYPES = ("abc", "bytes", "several")  # text, raw bytes of a mistaken VR, several values where one belongs
RAW_BYTES = b"\x00\x01\x02\xff"

INTEGER_FIELDS = (
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "SamplesPerPixel",
    "NumberOfFrames",
    "PixelRepresentation",
)
GEOMETRY_AND_DISPLAY = (
    "RescaleSlope",
    "RescaleIntercept",
    "WindowCenter",
    "WindowWidth",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "SliceThickness",
)

# Which fields are damaged on which base file: every field on the CT that the fast scanner reads; on the others
# the fields that their own reading path interprets (frames, colour layout, palette, compressed bits).
FIELDS_BY_BASE = {
    "CT_small": INTEGER_FIELDS + GEOMETRY_AND_DISPLAY,
    "MR_small_bigendian": (
        "Rows",
        "Columns",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "WindowCenter",
        "PixelSpacing",
    ),
    "rtdose": ("NumberOfFrames", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit"),
    "rtdose_rle": ("NumberOfFrames", "Rows", "Columns", "BitsAllocated"),
    "examples_palette": ("RedPaletteColorLookupTableDescriptor", "BitsAllocated", "BitsStored", "SamplesPerPixel"),
    "examples_rgb_color": ("SamplesPerPixel", "PlanarConfiguration", "BitsAllocated", "Rows"),
    "JPEG2000": ("Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation", "NumberOfFrames"),
    "CT_small+voi_lut": ("VOILUTSequence.LUTDescriptor",),
    "CT_small+modality_lut": ("ModalityLUTSequence.LUTDescriptor",),
}


@dataclass(frozen=True)
class BadFile:
    """One generated input: `write(path)` creates it; `values` is what an array file holds (None for DICOM)."""

    id: str
    suffix: str
    write: Callable[[Path], None]
    values: np.ndarray | None = field(default=None, compare=False)

    def make(self, folder: Path) -> Path:
        path = folder / f"{self.id}{self.suffix}"
        self.write(path)
        return path

    @property
    def some_non_finite(self) -> bool:
        """An array with NaN or infinite pixels beside finite ones: the case enhancement must keep in place."""
        return self.is_float and bool((~np.isfinite(self.values)).any()) and bool(np.isfinite(self.values).any())

    @property
    def all_nan(self) -> bool:
        return self.is_float and self.values.size > 0 and bool(np.isnan(self.values).all())

    @property
    def is_float(self) -> bool:
        return self.values is not None and self.values.dtype.kind == "f"


def _encode(kind: str, keyword: str, label: str) -> tuple[str, object]:
    """(VR, value) for a bad value of a field: the field's own VR where it can hold the value, else one that can
    (SS for negatives, UL/SL for 2**31-1, LO for text, OB for raw bytes)."""
    length = VECTOR_LENGTH.get(keyword, 1)
    if label == "abc":
        return "LO", "abc"
    if label == "bytes":
        return "OB", RAW_BYTES
    if kind == WHOLE:
        if label == "several":
            return "US", [1, 2, 3]
        number = int(label)
        return ("SS" if number < 0 else "US" if number <= 65535 else "UL"), number
    if kind == INTEGER_STRING:
        return "IS", ["1", "2", "3"] if label == "several" else label
    if kind == DECIMAL:
        if label == "several":  # one value more than belongs (WindowCenter: more centers than widths)
            return "DS", [str(index + 1) for index in range(length + 1)]
        return "DS", label if length == 1 else [label] * length
    raise AssertionError(f"no encoding for {kind} {label}")


def _descriptor(label: str) -> tuple[str, object]:
    """(VR, value) for a LUT descriptor with one damaged part: 'entries=V', 'first=V', 'bits=V', or a wrong type."""
    good = {"entries": 256, "first": 0, "bits": 16}
    if label == "abc":
        return "LO", "abc"
    if label == "bytes":
        return "OB", RAW_BYTES
    if label == "one-value":
        return "US", [256]
    if label == "four-values":
        return "US", [256, 0, 16, 16]
    part, _, number = label.partition("=")
    values = [int(number) if name == part else value for name, value in good.items()]
    if min(values) < -32768 or max(values) > 65535:
        vr = "SL" if min(values) < 0 else "UL"
    else:
        vr = "SS" if min(values) < 0 else "US"
    return vr, values


# A descriptor's first value (the number of entries) is unsigned whatever the VR (PS3.3 C.11.1.1.1; pydicom writes
# it so), so a negative count is 65535 on disk: entries=65535 covers it.
DESCRIPTOR_LABELS = (
    *(f"entries={number}" for number in NUMBERS if number >= 0),
    *(f"bits={number}" for number in NUMBERS),
    *(f"first={number}" for number in (-32768, 65535, 2**31 - 1)),
    "abc",
    "bytes",
    "one-value",
    "four-values",
)


def _labels(kind: str) -> tuple[str, ...]:
    if kind == DESCRIPTOR:
        return DESCRIPTOR_LABELS
    numbers = tuple(map(str, NUMBERS)) + (("1e300",) if kind == DECIMAL else ())
    return numbers + WRONG_TYPES


def _read_bundled(name: str) -> Dataset:
    return pydicom.dcmread(PYDICOM_FILES / f"{name}.dcm")


def _with_voi_lut(dataset: Dataset) -> None:
    """A valid linear VOI LUT Sequence (256 entries of 16 bits from 0), as tests/io/test_dicom.py builds one."""
    for keyword in ("WindowCenter", "WindowWidth"):
        if keyword in dataset:
            delattr(dataset, keyword)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 16]
    item.add_new(0x00283006, "US", (np.arange(256) * 256).tolist())  # LUT Data: US or OW; US for the list
    dataset.VOILUTSequence = Sequence([item])


def _with_modality_lut(dataset: Dataset) -> None:
    """A valid Modality LUT Sequence (256 entries of 16 bits from 0) in place of the CT's rescale."""
    for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
        if keyword in dataset:
            delattr(dataset, keyword)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 16]
    item.ModalityLUTType = "HU"
    item.add_new(0x00283006, "US", (np.arange(256) * 16).tolist())
    dataset.ModalityLUTSequence = Sequence([item])


BASES: dict[str, tuple[str, Callable[[Dataset], None] | None]] = {
    "CT_small": ("CT_small", None),
    "MR_small_bigendian": ("MR_small_bigendian", None),
    "rtdose": ("rtdose", None),
    "rtdose_rle": ("rtdose_rle", None),
    "examples_palette": ("examples_palette", None),
    "examples_rgb_color": ("examples_rgb_color", None),
    "JPEG2000": ("JPEG2000", None),
    "CT_small+voi_lut": ("CT_small", _with_voi_lut),
    "CT_small+modality_lut": ("CT_small", _with_modality_lut),
}


def _damage(dataset: Dataset, keyword: str, label: str) -> None:
    """Set `keyword` (or 'Sequence.Keyword' in the sequence's first item) to the bad value `label`."""
    kind = FIELD_KIND[keyword]
    target = dataset
    if "." in keyword:
        sequence, keyword = keyword.split(".")
        target = dataset[sequence].value[0]
    vr, value = _descriptor(label) if kind == DESCRIPTOR else _encode(kind, keyword, label)
    target.add_new(tag_for_keyword(keyword), vr, value)


def _write_dicom(case_id: str, base: str, keyword: str | None, label: str | None, path: Path) -> None:
    """A copy of the base file with one field damaged, saved in the file's own encoding, with its own UIDs:
    otherwise the window would list every copy as the series it already shows."""
    name, prepare = BASES[base]
    dataset = _read_bundled(name)
    if prepare is not None:
        prepare(dataset)
    if keyword is not None:
        _damage(dataset, keyword, label)
    dataset.StudyInstanceUID = generate_uid(entropy_srcs=[case_id, "study"])
    dataset.SeriesInstanceUID = generate_uid(entropy_srcs=[case_id, "series"])
    dataset.SOPInstanceUID = generate_uid(entropy_srcs=[case_id, "instance"])
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    little_endian = dataset.file_meta.TransferSyntaxUID != "1.2.840.10008.1.2.2"
    implicit_vr = dataset.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    pydicom.dcmwrite(path, dataset, little_endian=little_endian, implicit_vr=implicit_vr)


def _dicom_cases() -> list[BadFile]:
    cases = []
    for base, keywords in FIELDS_BY_BASE.items():
        cases.append(
            BadFile(f"{base}-unchanged", ".dcm", lambda path, base=base: _write_dicom("", base, None, None, path))
        )
        for keyword in keywords:
            for label in _labels(FIELD_KIND[keyword]):
                case_id = f"{base}-{keyword}={label}"
                cases.append(
                    BadFile(
                        case_id,
                        ".dcm",
                        lambda path, c=case_id, b=base, k=keyword, v=label: _write_dicom(c, b, k, v, path),
                    )
                )
    return cases


# --- array cases ---------------------------------------------------------------------------------------------


def _smooth(rows: int = 48, columns: int = 56) -> np.ndarray:
    """A seeded, image-like float32 ramp with noise: nlm and bicubic have something to work on."""
    rng = np.random.default_rng(SEED)
    ramp = np.add.outer(np.linspace(0, 400, rows), np.linspace(-200, 200, columns))
    return (ramp + rng.normal(0, 10, (rows, columns))).astype(np.float32)


def _scattered(image: np.ndarray, fill: list[float], count: int = 12) -> np.ndarray:
    """`image` with `count` seeded pixel positions set to the values in `fill`, in turn."""
    image = image.copy()
    rng = np.random.default_rng(SEED + 1)
    flat = rng.choice(image.size, size=count, replace=False)
    for number, index in enumerate(flat):
        image.flat[index] = fill[number % len(fill)]
    return image


def _int_extremes(dtype: type) -> np.ndarray:
    values = np.zeros((32, 40), dtype=dtype)
    values[::3, ::2] = np.iinfo(dtype).max
    if np.iinfo(dtype).min < 0:
        values[1::3, 1::2] = np.iinfo(dtype).min
    return values


def _array_values() -> dict[str, np.ndarray]:
    """The odd arrays, by name (the name is the case id's tail)."""
    smooth = _smooth()
    return {
        "nan-pixels": _scattered(smooth, [np.nan]),
        "inf-pixels": _scattered(smooth, [np.inf, -np.inf]),
        "nan-and-inf-pixels": _scattered(smooth, [np.nan, np.inf, -np.inf]),
        "all-nan": np.full((32, 40), np.nan, dtype=np.float32),
        "constant-float": np.full((32, 40), 7.5, dtype=np.float32),
        "constant-int16": np.full((32, 40), 100, dtype=np.int16),
        "1x1": np.array([[3.0]], dtype=np.float32),
        "1xN": smooth[:1].copy(),
        "Nx1": smooth[:, :1].copy(),
        "int64-extremes": _int_extremes(np.int64),
        "uint64-max": _int_extremes(np.uint64),
        "bool": smooth > 150,
        "float16": smooth.astype(np.float16),
        "float64-1e308": np.where(smooth > 150, 1e308, -1e308).astype(np.float64),
        "3-frame-stack": np.stack([smooth, smooth * 2, smooth - 50]),
        "float-rgb": np.stack([smooth, smooth / 2, smooth / 4], axis=-1) / 400.0,
        "empty-0xN": np.zeros((0, 40), dtype=np.float32),
        "0-d": np.array(5.0, dtype=np.float32),
        "4-d": np.zeros((2, 2, 8, 8), dtype=np.float32),
        "complex": (smooth + 1j * smooth).astype(np.complex64),
    }


class _Tripwire:
    """Unpickling this object creates `path`: proof that a loader unpickled what it should have refused."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return _spring, (self.path,)


def _spring(path: str) -> None:
    Path(path).touch()


def _tripwire_path(path: Path) -> Path:
    return path.with_name(path.name + ".unpickled")


def _write_object_array(path: Path) -> None:
    objects = np.empty((4, 4), dtype=object)
    for index in np.ndindex(objects.shape):
        objects[index] = _Tripwire(str(_tripwire_path(path)))
    np.save(path, objects, allow_pickle=True)


def _write_npy(values: np.ndarray, path: Path) -> None:
    with open(path, "wb") as handle:  # np.save on a name would append ".npy" to odd names
        np.save(handle, values, allow_pickle=False)


def _tiff_values(values: np.ndarray) -> np.ndarray | None:
    """What the .tif copy holds: the array's own dtype, except float64 as float32 where the values survive the
    cast (1e308 does not, and stays float64); None where TIFF has no such image (a 0-d array)."""
    if values.ndim == 0:
        return None
    if values.dtype == np.float64:
        with np.errstate(over="ignore"):
            narrowed = values.astype(np.float32)
        if np.array_equal(np.isfinite(narrowed), np.isfinite(values)):
            return narrowed
    return values


def _write_tiff(values: np.ndarray, path: Path) -> None:
    rgb = values.ndim == 3 and values.shape[-1] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tifffile warns that a zero-size TIFF is nonconformant: that is the case
        tifffile.imwrite(path, values, photometric="rgb" if rgb else "minisblack")


def _array_cases() -> list[BadFile]:
    cases = []
    for name, values in _array_values().items():
        cases.append(BadFile(f"npy-{name}", ".npy", lambda path, v=values: _write_npy(v, path), values))
        tiff = _tiff_values(values)
        if tiff is not None:
            cases.append(BadFile(f"tif-{name}", ".tif", lambda path, v=tiff: _write_tiff(v, path), tiff))
    cases.append(BadFile("npy-object-pickled", ".npy", _write_object_array))
    return cases


DICOM_CASES = _dicom_cases()
ARRAY_CASES = _array_cases()
ALL_CASES = DICOM_CASES + ARRAY_CASES


def _gui_cases() -> list[BadFile]:
    """A representative subset for the window (30 files): one seeded pick from each DICOM base; the CT's display
    and geometry fields that load and reach the drawing code (window, scale bar, orientation labels); and the
    array cases that reach different branches (non-finite pixels, odd shapes, refused dtypes, the pickle)."""
    rng = np.random.default_rng(SEED)
    chosen = []
    for base in FIELDS_BY_BASE:
        damaged = [case for case in DICOM_CASES if case.id.startswith(f"{base}-") and not case.id.endswith("unchanged")]
        chosen.append(damaged[int(rng.integers(len(damaged)))])
    wanted = (
        "CT_small-WindowWidth=0",
        "CT_small-WindowWidth=-32768",
        "CT_small-WindowCenter=1e300",
        "CT_small-WindowWidth=1e300",
        "CT_small-RescaleSlope=-1",
        "CT_small-PixelSpacing=1e300",
        "CT_small-PixelSpacing=-1",
        "CT_small-ImageOrientationPatient=0",
        "CT_small-ImagePositionPatient=1e300",
        "npy-nan-pixels",
        "tif-inf-pixels",
        "npy-all-nan",
        "npy-1x1",
        "npy-Nx1",
        "tif-int64-extremes",
        "npy-float64-1e308",
        "npy-3-frame-stack",
        "npy-float-rgb",
        "npy-empty-0xN",
        "npy-4-d",
        "npy-object-pickled",
    )
    chosen.extend(case for case in ALL_CASES if case.id in wanted and case not in chosen)
    assert len(chosen) == len(FIELDS_BY_BASE) + len(wanted), "a wanted GUI case id no longer exists"
    return chosen


GUI_CASES = _gui_cases()

# --- running the command line ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntryPoint:
    """One way into the program: `argv(source, folder)` is its command line; `output` names the file it writes
    in `folder`, if any; `enhance` marks the enhance commands, which the non-finite promises are about."""

    name: str
    arguments: tuple[str, ...]
    output: str | None = None
    enhance: bool = False

    def argv(self, source: Path, folder: Path) -> list[str]:
        argv = [str(folder / self.output) if part == "{output}" else part for part in self.arguments]
        return [str(source) if part == "{source}" else part for part in argv]


ENTRY_POINTS = (
    EntryPoint("info", ("info", "{source}")),
    EntryPoint("info --json", ("info", "--json", "{source}")),
    EntryPoint("export .npy", ("export", "{source}", "-o", "{output}"), "export.npy"),
    EntryPoint("export .png", ("export", "{source}", "-o", "{output}"), "export.png"),
    EntryPoint("enhance nlm", ("enhance", "--model", "nlm", "-o", "{output}", "{source}"), "nlm.npy", True),
    EntryPoint(
        "enhance bicubic-x2", ("enhance", "--model", "bicubic-x2", "-o", "{output}", "{source}"), "x2.npy", True
    ),
    EntryPoint(
        "enhance nlm --degrade noise:25",
        ("enhance", "--model", "nlm", "--degrade", "noise:25", "-o", "{output}", "{source}"),
        "simulated.npy",
        True,
    ),
    EntryPoint("enhance nlm -> .dcm", ("enhance", "--model", "nlm", "-o", "{output}", "{source}"), "derived.dcm", True),
)


@dataclass
class Outcome:
    """What one call of `main` did: exit code, streams, log records at WARNING or above, or the escape."""

    code: int | None
    out: str
    err: str
    warnings: list[str]
    escaped: str = ""  # a hang, or an exception that escaped main with the last lines of its traceback


class _Hang(BaseException):
    """A call past its deadline; a BaseException so that no `except Exception` in the code under test hides it."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Turn a call that runs past `seconds` into an exception (SIGALRM: main thread, POSIX)."""

    def expire(signum, frame):
        raise _Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _last_lines(error: BaseException, count: int = 6) -> str:
    lines = "".join(traceback.format_exception(error)).rstrip().splitlines()
    return "\n      ".join(lines[-count:])


def _run(argv: list[str], capsys, caplog) -> Outcome:
    """main(argv) in-process. Log records at WARNING or above are collected: outside pytest, main's
    logging.basicConfig prints each of them on stderr, as a second line beside the error."""
    caplog.clear()
    code, escaped = None, ""
    try:
        with _deadline(CALL_DEADLINE_S):
            code = main(argv)
    except SystemExit as error:  # argparse's own exit; its code is checked like any other
        code = error.code if isinstance(error.code, int) else 1
    except _Hang as error:
        escaped = f"a hang: {error}"
    except BaseException as error:  # noqa: BLE001 - anything escaping main is the failure being looked for
        escaped = f"an exception escaped main: {type(error).__name__}: {error}\n      {_last_lines(error)}"
    captured = capsys.readouterr()
    logged = [
        f"{record.levelname} {record.name}: {record.getMessage()}"
        for record in caplog.records
        if record.levelno >= logging.WARNING
    ]
    return Outcome(code, captured.out, captured.err, logged, escaped)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_output(path: Path) -> str:
    """'' when the written file is what its suffix promises, else what is wrong with it."""
    try:
        if path.suffix == ".npy":
            values = np.load(path, allow_pickle=False)
            if not isinstance(values, np.ndarray) or values.size == 0 or values.dtype.kind not in "biuf":
                return f"{path.name} holds {type(values).__name__} {getattr(values, 'dtype', '')}, not an image"
        elif path.suffix == ".png":
            with Image.open(path) as image:
                image.load()
        elif path.suffix == ".dcm":
            pydicom.dcmread(path).pixel_array  # noqa: B018 - decoding is the check
    except Exception as error:  # noqa: BLE001 - any failure to read it back is the finding
        return f"{path.name} cannot be read back: {type(error).__name__}: {error}"
    return ""


def _promise_problems(entry: EntryPoint, outcome: Outcome, output: Path | None, folder: Path) -> list[str]:
    """Every way this outcome breaks the promise: a picture, or one line on stderr and exit code 2."""
    if outcome.escaped:
        return [outcome.escaped]
    problems = []
    left = sorted(path.name for path in folder.iterdir())
    if "Traceback" in outcome.err:
        problems.append(f"a traceback on stderr: {outcome.err.strip().splitlines()[-1]}")
    if outcome.code == 0:
        expected = [output.name] if output is not None else []
        if left != expected:
            problems.append(f"exit 0 but the output folder holds {left}, expected {expected}")
        elif output is not None and (problem := _check_output(output)):
            problems.append(f"exit 0 but {problem}")
        if entry.name == "info --json":
            problems.extend(_decodable_problems(outcome))
    elif outcome.code == 2:
        lines = outcome.err.splitlines()
        if len(lines) != 1 or not lines[0].startswith("medviewer: error: "):
            problems.append(f"exit 2 with {len(lines)} stderr lines: {lines[:4]}")
        if outcome.warnings:
            problems.append(f"exit 2 and logged {outcome.warnings[:2]} (more stderr lines outside pytest)")
        if left:
            problems.append(f"exit 2 but left {left} behind")
    else:
        problems.append(f"exit code {outcome.code}; stderr {outcome.err.strip().splitlines()[-3:]}")
    return problems


def _series_records(outcome: Outcome) -> list[dict]:
    """The series records of an `info --json` report."""
    return [series for study in json.loads(outcome.out)["studies"] for series in study["series"]]


def _decodable_problems(outcome: Outcome) -> list[str]:
    """A loaded file's `info --json` report is JSON with a series, and each series says whether it decodes."""
    try:
        records = _series_records(outcome)
    except (ValueError, KeyError, TypeError) as error:
        return [f"exit 0 but the report is not the documented JSON: {type(error).__name__}: {error}"]
    if not records:
        return ["exit 0 but the report lists no series"]
    return [
        f"series {index} has no boolean 'decodable'"
        for index, record in enumerate(records)
        if not isinstance(record.get("decodable"), bool)
    ]


def _non_finite_problems(case: BadFile, entry: EntryPoint, outcome: Outcome, output: Path | None) -> list[str]:
    """The non-finite promises: counted by info, drawn black in a PNG, kept in place by enhancement, and an
    all-NaN image refused by enhancement in one line that names the file."""
    problems = []
    values = case.values
    if values is None or outcome.escaped:
        return problems
    name = f"{case.id}{case.suffix}"
    if entry.name == "info --json" and outcome.code == 0 and case.is_float and not _decodable_problems(outcome):
        expected = int(np.count_nonzero(~np.isfinite(values)))
        counted = [record.get("non_finite_pixels") for record in _series_records(outcome)]
        if counted != [expected]:
            problems.append(f"non_finite_pixels {counted}, expected [{expected}] (the file's own count)")
    if case.some_non_finite and entry.name == "export .png" and outcome.code != 0:
        problems.append(f"PNG export of an image with some NaN/inf pixels failed: {outcome.err.strip()}")
    if case.some_non_finite and entry.enhance and output is not None and output.suffix == ".npy":
        if outcome.code != 0:
            problems.append(f"enhancing an image with some NaN/inf pixels failed: {outcome.err.strip()}")
        else:
            problems.extend(_kept_in_place(values, np.load(output), 2 if "x2" in entry.name else 1))
            if KEPT_LINE not in outcome.out:
                problems.append(f"the output line does not say {KEPT_LINE!r}: {outcome.out.strip()!r}")
    if case.all_nan and entry.enhance:
        lines = outcome.err.splitlines()
        if outcome.code != 2 or len(lines) != 1 or name not in lines[0]:
            problems.append(f"all-NaN image: exit {outcome.code}, stderr {lines}; expected exit 2, one line naming it")
    return problems


def _kept_in_place(values: np.ndarray, enhanced: np.ndarray, scale: int) -> list[str]:
    """Non-finite output pixels exactly where the input's were (scale x scale blocks), with the same values."""
    expected = values.astype(np.float32)
    for axis in (-2, -1):
        expected = np.repeat(expected, scale, axis=axis)
    if enhanced.shape != expected.shape:
        return [f"output shape {enhanced.shape}, expected {expected.shape}"]
    where = ~np.isfinite(expected)
    if not np.array_equal(~np.isfinite(enhanced), where):
        moved = int(np.count_nonzero((~np.isfinite(enhanced)) != where))
        return [f"non-finite output pixels differ from the input's at {moved} positions (scale {scale})"]
    if not np.array_equal(enhanced[where], expected[where], equal_nan=True):
        return ["non-finite output pixels are in place but not the input's values (NaN, +inf, -inf)"]
    return []


@pytest.fixture(autouse=True)
def no_user_models(tmp_path, monkeypatch):
    """An empty user models folder: the registry holds the bundled methods only, never the developer's."""
    monkeypatch.setenv(USER_MODELS_ENVIRONMENT, str(tmp_path / "user-models"))


@pytest.mark.parametrize("case", ALL_CASES, ids=[case.id for case in ALL_CASES])
def test_command_line_gives_a_picture_or_one_line(case: BadFile, tmp_path: Path, capsys, caplog):
    source = case.make(tmp_path)
    before = _sha256(source)
    problems = []
    for number, entry in enumerate(ENTRY_POINTS):
        folder = tmp_path / f"out{number}"
        folder.mkdir()
        output = folder / entry.output if entry.output else None
        outcome = _run(entry.argv(source, folder), capsys, caplog)
        found = _promise_problems(entry, outcome, output, folder) + _non_finite_problems(case, entry, outcome, output)
        problems.extend(f"{entry.name}: {problem}" for problem in found)
    if _sha256(source) != before:
        problems.append("the input file was modified")
    if _tripwire_path(source).exists():
        problems.append("the object array was unpickled")
    assert not problems, f"{source.name}:\n  " + "\n  ".join(problems)


# --- the window ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def viewer(qapp, tmp_path_factory):
    """One main window for the whole module, with settings in a temporary folder and no model discovery
    (importing torch is not what these tests are about)."""
    from PySide6.QtCore import QSettings

    from medviewer.gui.main_window import MainWindow
    from medviewer.gui.settings import ViewerSettings

    folder = tmp_path_factory.mktemp("viewer")
    settings = ViewerSettings(QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat))
    window = MainWindow(settings, models_job=False)
    window.resize(1200, 800)
    window.show()
    yield window
    window.stop_jobs()
    window.close()
    window.deleteLater()


@pytest.mark.parametrize("case", GUI_CASES, ids=[case.id for case in GUI_CASES])
def test_window_shows_the_picture_or_says_why(case: BadFile, viewer, qtbot, tmp_path: Path, caplog):
    from PySide6.QtWidgets import QMessageBox

    source = case.make(tmp_path)
    listed = {id(series) for series in viewer.browser.series_list()}
    viewer.last_error = None
    viewer.open_paths([source])
    qtbot.waitUntil(lambda: not viewer._load_jobs, timeout=CALL_DEADLINE_S * 1000)
    new = [series for series in viewer.browser.series_list() if id(series) not in listed]
    for series in new:
        viewer.set_series(series)  # draws the first slice through the current window/level on every pane
    error = viewer.last_error
    for box in viewer.findChildren(QMessageBox):  # the messages are not modal; close them for the next case
        box.close()
    bugs = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert viewer.isVisible()
    assert not bugs, f"errors logged (a bug's traceback): {bugs}"
    assert not _tripwire_path(source).exists(), "the object array was unpickled"
    if error is None:
        assert new, "neither a new series nor a message"
        assert viewer.grid.pane("original").values is not None, "the series was listed but nothing drawn"
    else:
        assert "unexpected error" not in error, error
        assert "\n" not in error and source.name in error, error
