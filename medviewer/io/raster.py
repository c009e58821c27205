"""Reading PNG, JPEG, TIFF and NumPy .npy files as single-image studies (DICOM is read elsewhere)."""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import tifffile
from PIL import Image, ImageOps, UnidentifiedImageError

from medviewer.errors import UnreadableFileError
from medviewer.io.input_file import open_input_file
from medviewer.io.volume_memory import too_large_for_memory

log = logging.getLogger(__name__)

RASTER_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy"})

MAX_MEGAPIXELS = 500
MAX_PIXELS_PER_FRAME = MAX_MEGAPIXELS * 1_000_000

# Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that, process-wide. Its default (~89 MP)
# would refuse large film scans that we accept, so it is raised to our own limit; our own check below
# refuses anything over the limit with a message that names the size.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS_PER_FRAME

_FORMAT_BY_SUFFIX = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".npy": "NPY",
}

# (leading bytes, our format or None, what to call it when it turns up under the wrong suffix)
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG", "a PNG image"),
    (b"\xff\xd8\xff", "JPEG", "a JPEG image"),
    (b"II*\x00", "TIFF", "a TIFF image"),
    (b"MM\x00*", "TIFF", "a TIFF image"),
    (b"II+\x00", "TIFF", "a TIFF image"),  # BigTIFF
    (b"MM\x00+", "TIFF", "a TIFF image"),
    (b"\x93NUMPY", "NPY", "a NumPy .npy array"),
    (b"PK\x03\x04", None, "a ZIP archive, such as .npz"),
    (b"GIF8", None, "a GIF image"),
)

_FORMAT_LABEL = {"PNG": "PNG", "JPEG": "JPEG", "TIFF": "TIFF", "NPY": ".npy"}

# Pillow's JPEG opener also returns a camera's multi-picture JPEG (MPO); we show its first picture.
_PILLOW_FORMATS = {"PNG": ("PNG",), "JPEG": ("JPEG",)}

_PNG_GREY_ALPHA = 4  # IHDR colour type


@dataclass(frozen=True, eq=False)
class RasterImage:
    """A decoded raster file shaped like a series of frames, so the viewer treats it like any study.

    `pixels` is a private, writable, C-ordered array in native byte order: (frames, rows, cols) in the
    file's own dtype for grayscale, (frames, rows, cols, 3) uint8 for colour. Equality is identity
    (eq=False), since comparing arrays field by field has no single truth value.
    """

    path: Path
    format: str
    pixels: np.ndarray
    is_colour: bool
    bits_per_sample: int

    @property
    def frame_count(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of one frame."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[2])


def is_raster_path(path: Path) -> bool:
    """Whether `read_raster` handles this path, judged by its suffix alone (case-insensitive)."""
    return Path(path).suffix.lower() in RASTER_SUFFIXES


def read_raster(path: Path) -> RasterImage:
    """Decode one raster file; every bad input raises UnreadableFileError with a reason a user can act on."""
    path = Path(path)
    fmt = _FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise UnreadableFileError(path, f"not a raster image file (unsupported suffix {path.suffix!r})")
    stream, size = open_input_file(path)
    with stream:
        head = stream.read(132)
        stream.seek(0)
        _check_signature(path, fmt, head)
        if fmt == "NPY":
            image = _read_npy(path, stream, size)
        elif fmt == "TIFF":
            image = _read_tiff(path, stream, size)
        else:
            image = _read_pillow(path, stream, fmt, head)
    _check_float32_range(path, image.pixels)
    log.debug(
        "read %s: %s %s frames=%d colour=%s bits=%d",
        path,
        image.format,
        image.pixels.dtype,
        image.frame_count,
        image.is_colour,
        image.bits_per_sample,
    )
    return image


# --- common checks ---------------------------------------------------------------------------------


def _check_signature(path: Path, fmt: str, head: bytes) -> None:
    """Refuse content that is not what the suffix says, naming what it looks like when we can tell."""
    label = _FORMAT_LABEL[fmt]
    for signature, name, _description in _SIGNATURES:
        if name != fmt:
            continue
        if head.startswith(signature):
            return
        if len(head) < len(signature) and signature.startswith(head):
            raise UnreadableFileError(path, f"truncated {label} file")
    seen = _sniff(head)
    hint = f" (it looks like {seen})" if seen else ""
    raise UnreadableFileError(path, f"not a {label} file{hint}")


def _sniff(head: bytes) -> str | None:
    if head[128:132] == b"DICM":
        return "a DICOM file"
    for signature, _name, description in _SIGNATURES:
        if head.startswith(signature):
            return description
    return None


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_float32_range(path: Path, pixels: np.ndarray) -> None:
    """Refuse finite values beyond float32: values in units are float32 everywhere after loading, and a
    1e308 turned silently into infinity would be shown, measured and exported as a value the file never had."""
    if pixels.dtype.kind != "f" or pixels.dtype.itemsize <= 4:
        return
    finite = pixels[np.isfinite(pixels)]
    largest = float(np.abs(finite).max()) if finite.size else 0.0
    if largest > _FLOAT32_MAX:
        raise UnreadableFileError(
            path, f"values up to {largest:.3g} are beyond the float32 range (+-{_FLOAT32_MAX:.3g}) images are shown in"
        )


def _check_frame_size(path: Path, rows: int, cols: int) -> None:
    """Refuse a frame over the pixel limit, before any pixel memory is allocated."""
    if rows <= 0 or cols <= 0:
        raise UnreadableFileError(path, f"image is {cols}x{rows} pixels: it has no pixels")
    if rows * cols > MAX_PIXELS_PER_FRAME:
        raise UnreadableFileError(path, f"image is {cols}x{rows} pixels, over the {MAX_MEGAPIXELS}-megapixel limit")


def _finish(array: np.ndarray) -> np.ndarray:
    """A writable, C-ordered, native-order ndarray sharing no memory with a decoder buffer or memory map."""
    dtype = array.dtype.newbyteorder("=") if array.dtype.byteorder not in "=|" else array.dtype
    if (
        type(array) is np.ndarray
        and array.dtype == dtype
        and array.flags.owndata
        and array.flags.writeable
        and array.flags.c_contiguous
    ):
        return array
    return np.array(array, dtype=dtype, order="C")


def _decoder_failure(path: Path, label: str, exc: BaseException) -> UnreadableFileError:
    """Map a decoding library's exception to our own; the traceback stays in the debug log."""
    log.debug("decoding %s failed", path, exc_info=exc)
    if isinstance(exc, MemoryError):
        return UnreadableFileError(path, "not enough memory to decode the image")
    text = str(exc)
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return UnreadableFileError(path, f"truncated {label} file")
    # Pillow's messages may embed the stream's repr, which says nothing to a user.
    detail = f" ({text})" if text and "<_io." not in text else ""
    return UnreadableFileError(path, f"corrupt {label} file{detail}")


# --- PNG and JPEG (Pillow) -------------------------------------------------------------------------


def _read_pillow(path: Path, stream: BinaryIO, fmt: str, head: bytes) -> RasterImage:
    label = _FORMAT_LABEL[fmt]
    try:
        with warnings.catch_warnings():
            # Between Pillow's limit and twice it only a warning comes; our own check names the size.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(stream, formats=list(_PILLOW_FORMATS[fmt]))
    except Image.DecompressionBombError as exc:
        cols, rows = _pillow_header_size(stream, fmt)
        if cols and rows:
            _check_frame_size(path, rows, cols)
        log.debug("Pillow refused %s", path, exc_info=exc)
        raise UnreadableFileError(path, f"image is over the {MAX_MEGAPIXELS}-megapixel limit") from exc
    except UnidentifiedImageError as exc:
        log.debug("Pillow could not identify %s", path, exc_info=exc)
        raise UnreadableFileError(path, f"corrupt or truncated {label} file (unreadable header)") from exc
    except Exception as exc:
        raise _decoder_failure(path, label, exc) from exc

    _check_frame_size(path, image.height, image.width)
    if getattr(image, "n_frames", 1) > 1:
        log.info("%s holds %d images; showing the first", path, image.n_frames)
    try:
        if fmt == "JPEG":
            # A photographed film may be stored sideways with an EXIF orientation; show it upright.
            ImageOps.exif_transpose(image, in_place=True)
        else:
            image.load()
    except Exception as exc:
        raise _decoder_failure(path, label, exc) from exc

    png_colour_type = head[25] if fmt == "PNG" and len(head) > 25 else None
    pixels, is_colour = _pillow_pixels(path, image, label, png_colour_type)
    # Pillow 13 decodes 16-bit RGB, RGBA and grey+alpha PNGs to 8 bits per channel (it keeps the high
    # byte, i.e. value >> 8, the same scaling we apply to 16-bit colour TIFF). We cannot get the 16-bit
    # samples back, so bits_per_sample says 8 for them: it describes the pixels we return.
    bits = pixels.dtype.itemsize * 8
    return RasterImage(path, fmt, pixels[np.newaxis], is_colour, bits)


def _pillow_header_size(stream: BinaryIO, fmt: str) -> tuple[int, int]:
    """Width and height from the header alone, for the message when Pillow refuses a huge image.

    Image.open refuses before returning the image; the registered plugin factory reads the same
    header without that check, and, being lazy, decodes no pixels.
    """
    try:
        stream.seek(0)
        factory, _accept = Image.OPEN[_PILLOW_FORMATS[fmt][0]]
        return factory(stream, "").size
    except Exception:  # only used to word a message; the caller refuses the file either way
        log.debug("could not read header size", exc_info=True)
        return 0, 0


def _pillow_pixels(
    path: Path, image: Image.Image, label: str, png_colour_type: int | None = None
) -> tuple[np.ndarray, bool]:
    """Map a Pillow mode to (rows, cols) grayscale in the stored dtype or (rows, cols, 3) uint8 RGB."""
    mode = image.mode
    if mode == "1":
        # Pillow's own "1" -> "L" conversion: black 0, white 255, as the image is meant to look.
        return _finish(np.asarray(image.convert("L"))), False
    if mode == "L":
        return _finish(np.asarray(image)), False
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return _finish(np.asarray(image).astype(np.uint16)), False
    if mode == "I":
        values = np.asarray(image)
        # Older Pillow decodes a 16-bit grayscale PNG to 32-bit "I"; keep 16 bits when the values fit.
        if values.size and values.min() >= 0 and values.max() <= 0xFFFF:
            return _finish(values.astype(np.uint16)), False
        return _finish(values), False
    if mode == "F":
        return _finish(np.asarray(image, dtype=np.float32)), False
    if mode == "P":
        return _palette_pixels(image)
    if mode == "LA":
        return _finish(np.asarray(image)[..., 0]), False
    if mode == "RGB":
        return _finish(np.asarray(image)), True
    if mode in ("RGBA", "RGBX"):
        rgba = np.asarray(image)
        if png_colour_type == _PNG_GREY_ALPHA:
            # Pillow widens a 16-bit grey+alpha PNG to RGBA with equal channels; the file says grey.
            return _finish(rgba[..., 0]), False
        return _finish(rgba[..., :3]), True
    if mode in ("CMYK", "YCbCr"):
        return _finish(np.asarray(image.convert("RGB"))), True
    raise UnreadableFileError(path, f"unsupported {label} image mode {mode!r}")


def _palette_pixels(image: Image.Image) -> tuple[np.ndarray, bool]:
    """A palette of greys gives grayscale; any colour entry gives RGB (the pixels are not inspected)."""
    indices = np.asarray(image)
    palette = image.getpalette("RGB") or []
    entries = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)[:256]
    lut = np.zeros((256, 3), dtype=np.uint8)  # indices past the palette's end show black
    lut[: len(entries)] = entries
    if np.array_equal(lut[:, 0], lut[:, 1]) and np.array_equal(lut[:, 1], lut[:, 2]):
        return _finish(lut[indices, 0]), False
    return _finish(lut[indices]), True


# --- TIFF (tifffile, Pillow for codecs tifffile lacks) ----------------------------------------------


@dataclass(frozen=True)
class _PageLayout:
    """What one TIFF page decodes to; pages of a different layout cannot share a frame array."""

    rows: int
    cols: int
    is_colour: bool
    dtype: np.dtype


_TIFF_GREY = (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.MINISWHITE)
# Colour spaces tifffile returns undecoded; Pillow (libtiff) converts them to RGB.
_TIFF_VIA_PILLOW = (tifffile.PHOTOMETRIC.YCBCR, tifffile.PHOTOMETRIC.SEPARATED)


def _read_tiff(path: Path, stream: BinaryIO, size: int) -> RasterImage:
    try:
        tif = tifffile.TiffFile(stream)
    except Exception as exc:
        raise _decoder_failure(path, "TIFF", exc) from exc
    with tif:
        try:
            kept, layout = _tiff_frames(path, tif, size)
        except UnreadableFileError:
            raise
        except Exception as exc:
            # tifffile parses tags lazily, as their properties are read; damaged tags fail there in
            # many ways (ZeroDivisionError, TypeError, TiffFileError ...), all meaning "corrupt".
            raise _decoder_failure(path, "TIFF", exc) from exc
        shape = (len(kept), layout.rows, layout.cols) + ((3,) if layout.is_colour else ())
        # Compressed pages can expand far beyond the file's size: check the total before allocating.
        reason = too_large_for_memory(math.prod(shape) * np.dtype(layout.dtype).itemsize)
        if reason:
            raise UnreadableFileError(path, reason)
        try:
            pixels = np.empty(shape, dtype=layout.dtype)
        except MemoryError as exc:
            raise UnreadableFileError(path, "not enough memory to decode the image") from exc
        pillow = _PillowTiff(stream)
        for frame, (index, page) in enumerate(kept):
            decoded = _tiff_page_pixels(path, pillow, index, page, layout)
            if decoded.shape != pixels.shape[1:]:  # the tags lied about the data
                raise UnreadableFileError(
                    path,
                    f"corrupt TIFF file (page {index} decodes to {decoded.shape}, not {pixels.shape[1:]})",
                )
            pixels[frame] = decoded
        bits = kept[0][1].dtype.itemsize * 8
    return RasterImage(path, "TIFF", pixels, layout.is_colour, bits)


def _tiff_frames(
    path: Path, tif: tifffile.TiffFile, size: int
) -> tuple[list[tuple[int, tifffile.TiffPage]], _PageLayout]:
    """The pages to show, with the layout they share, from tags alone."""
    # Counting first indexes the whole IFD chain, which tifffile checks for loops; iterating
    # tif.pages directly can spin forever on some damaged chains.
    pages = [(index, tif.pages[index]) for index in range(len(tif.pages))]
    # Reduced-resolution pages are thumbnails or pyramid levels of the main image, not frames.
    frames = [(index, page) for index, page in pages if not page.is_reduced] or pages
    if not frames:
        raise UnreadableFileError(path, "TIFF file holds no readable image")
    first_index, first = frames[0]
    layout = _tiff_layout(path, first)
    kept = []
    for index, page in frames:
        if index != first_index and not _same_tiff_layout(path, page, layout):
            # A file mixing sizes (a label, a preview) has one main image series; show that one.
            log.warning("%s: skipping TIFF page %d, whose size or type differs from page %d", path, index, first_index)
            continue
        _check_tiff_complete(path, page, size)
        kept.append((index, page))
    return kept, layout


def _same_tiff_layout(path: Path, page: tifffile.TiffPage, layout: _PageLayout) -> bool:
    try:
        return _tiff_layout(path, page) == layout
    except UnreadableFileError:
        return False


def _tiff_layout(path: Path, page: tifffile.TiffPage) -> _PageLayout:
    """The decoded frame's shape and type, from the page's tags alone (no pixels read)."""
    counts = (page.imagelength, page.imagewidth, page.imagedepth, page.samplesperpixel, page.bitspersample)
    if not all(isinstance(count, int) for count in counts):
        # Damaged tags can hold several values where the format allows one.
        raise UnreadableFileError(path, "corrupt TIFF file (malformed image size tags)")
    _check_frame_size(path, page.imagelength, page.imagewidth)
    if page.imagedepth > 1:
        raise UnreadableFileError(path, "unsupported TIFF with volumetric (ImageDepth) pages")
    if page.dtype is None:
        raise UnreadableFileError(
            path, f"unsupported TIFF sample format ({page.bitspersample}-bit {_tag_name(page.sampleformat)})"
        )
    photometric = page.photometric
    if photometric in _TIFF_GREY:
        colour_samples = page.samplesperpixel - len(page.extrasamples)
        if colour_samples != 1:
            raise UnreadableFileError(
                path, f"unsupported TIFF: {page.samplesperpixel} samples per pixel in a grayscale image"
            )
        dtype = np.dtype(np.uint8) if page.dtype == np.bool_ else page.dtype
        return _PageLayout(page.imagelength, page.imagewidth, False, dtype)
    if photometric == tifffile.PHOTOMETRIC.RGB:
        if page.samplesperpixel < 3:
            raise UnreadableFileError(path, f"TIFF says RGB but has {page.samplesperpixel} samples per pixel")
        if page.dtype.kind != "u":
            raise UnreadableFileError(path, f"unsupported TIFF colour samples of type {page.dtype}")
        return _PageLayout(page.imagelength, page.imagewidth, True, np.dtype(np.uint8))
    if photometric == tifffile.PHOTOMETRIC.PALETTE:
        colour = _tiff_colormap(path, page)[1]
        return _PageLayout(page.imagelength, page.imagewidth, colour, np.dtype(np.uint8))
    if photometric in _TIFF_VIA_PILLOW:
        return _PageLayout(page.imagelength, page.imagewidth, True, np.dtype(np.uint8))
    raise UnreadableFileError(path, f"unsupported TIFF colour space {_tag_name(photometric)}")


def _tag_name(value: object) -> str:
    """A tag value's name; tifffile leaves values outside the TIFF enumerations as plain numbers."""
    return str(getattr(value, "name", value))


def _tiff_colormap(path: Path, page: tifffile.TiffPage) -> tuple[np.ndarray, bool]:
    """The 8-bit (2**bits, 3) lookup table for every possible index, and whether it holds any colour."""
    if not 1 <= page.bitspersample <= 16:
        raise UnreadableFileError(path, f"unsupported {page.bitspersample}-bit palette TIFF")
    colormap = page.colormap
    if colormap is None:
        raise UnreadableFileError(path, "palette TIFF without a colour map")
    colormap = np.asarray(colormap)
    if colormap.ndim != 2 or colormap.shape[0] != 3 or colormap.dtype.kind not in "ui":
        raise UnreadableFileError(path, "corrupt TIFF file (malformed colour map)")
    # 16-bit colour map entries to 8 bits by their high byte, as Pillow does.
    entries = (colormap.astype(np.uint16) >> 8).astype(np.uint8).T
    lut = np.zeros((1 << max(8, page.bitspersample), 3), dtype=np.uint8)  # missing entries show black
    lut[: len(entries)] = entries[: len(lut)]
    grey = np.array_equal(lut[:, 0], lut[:, 1]) and np.array_equal(lut[:, 1], lut[:, 2])
    return lut, not grey


def _check_tiff_complete(path: Path, page: tifffile.TiffPage, size: int) -> None:
    """Refuse a page whose strips or tiles lie past the end of the file, rather than decode garbage."""
    try:
        offsets = np.asarray(page.dataoffsets, dtype=np.int64)
        counts = np.asarray(page.databytecounts, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):  # damaged tags may hold text or huge numbers
        raise UnreadableFileError(path, "corrupt TIFF file (malformed strip or tile tags)") from None
    if offsets.shape != counts.shape or offsets.ndim != 1:
        raise UnreadableFileError(path, "corrupt TIFF file (malformed strip or tile tags)")
    present = counts > 0
    if np.any(offsets[present] + counts[present] > size):
        raise UnreadableFileError(path, "truncated TIFF file")
    # tifffile fills strips or tiles the tags do not list with zeros; a damaged ImageLength can thus
    # turn an 800-byte file into millions of empty strips, slow to "decode" and meaningless to show.
    expected = math.prod(page.chunked)
    if len(offsets) < expected:
        raise UnreadableFileError(path, f"corrupt TIFF file ({len(offsets)} of {expected} strips or tiles present)")


def _tiff_page_pixels(
    path: Path, pillow: _PillowTiff, index: int, page: tifffile.TiffPage, layout: _PageLayout
) -> np.ndarray:
    if page.photometric in _TIFF_VIA_PILLOW:
        return _tiff_page_via_pillow(path, pillow, index, page, layout)
    try:
        data = page.asarray()
    except Exception as exc:
        # Without the optional imagecodecs package tifffile cannot decode LZW, JPEG, CCITT and other
        # common compressions; Pillow's libtiff can.
        if isinstance(exc, ImportError) or "imagecodecs" in str(exc):
            log.debug("tifffile cannot decode %s page %d (%s); using Pillow", path, index, exc)
            return _tiff_page_via_pillow(path, pillow, index, page, layout)
        raise _decoder_failure(path, "TIFF", exc) from exc

    samples = page.samplesperpixel
    # tifffile gives (samples, rows, cols) for separate planes; the tag, not the shape, says which.
    if samples > 1 and page.planarconfig == tifffile.PLANARCONFIG.SEPARATE:
        data = np.moveaxis(data, 0, -1)
    photometric = page.photometric
    if photometric in _TIFF_GREY:
        if samples > 1:
            data = data[..., 0]  # extra samples (alpha) follow the grey one
        if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
            data = _invert_miniswhite(path, data, page.bitspersample)
        if data.dtype == np.bool_:
            return data.astype(np.uint8) * np.uint8(255)  # bilevel as Pillow shows it: 0 or 255
        return data
    if photometric == tifffile.PHOTOMETRIC.PALETTE:
        lut, colour = _tiff_colormap(path, page)
        indices = data.astype(np.intp)  # 1-bit indices arrive as bool, which would mask, not index
        return lut[indices] if colour else lut[indices, 0]
    rgb = data[..., :3]  # RGB; extra samples (alpha) are dropped
    if rgb.dtype == np.uint8:
        return rgb
    # Higher-precision colour is scaled to 8 bits by its top byte (16-bit: value >> 8).
    shift = max(page.bitspersample - 8, 0)
    return (rgb >> shift).astype(np.uint8)


def _invert_miniswhite(path: Path, data: np.ndarray, bits: int) -> np.ndarray:
    """MinIsWhite stores 0 as white; flip it so that larger values are brighter, as everywhere else."""
    if data.dtype == np.bool_:
        return ~data
    if data.dtype.kind == "u":
        return (np.asarray((1 << bits) - 1, dtype=data.dtype) - data).astype(data.dtype)
    log.warning("%s: MinIsWhite %s samples are shown as stored", path, data.dtype)
    return data


class _PillowTiff:
    """Pillow's view of the open TIFF, opened once when first needed: reaching page n afresh walks n IFDs."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._image: Image.Image | None = None

    def page(self, index: int) -> Image.Image:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # size checked already
            if self._image is None:
                self._stream.seek(0)
                self._image = Image.open(self._stream, formats=["TIFF"])
            self._image.seek(index)
            self._image.load()
        return self._image


def _tiff_page_via_pillow(
    path: Path, pillow: _PillowTiff, index: int, page: tifffile.TiffPage, layout: _PageLayout
) -> np.ndarray:
    """Decode one page with Pillow and bring it to the layout tifffile's tags promised."""
    try:
        image = pillow.page(index)
    except UnidentifiedImageError as exc:
        log.debug("Pillow cannot read %s either", path, exc_info=exc)
        raise UnreadableFileError(
            path, f"unsupported TIFF: {_tag_name(page.compression)}-compressed {page.dtype} samples"
        ) from exc
    except Exception as exc:
        raise _decoder_failure(path, "TIFF", exc) from exc
    pixels, is_colour = _pillow_pixels(path, image, "TIFF")
    if pixels.shape[:2] != (layout.rows, layout.cols) or is_colour != layout.is_colour:
        raise UnreadableFileError(path, f"unsupported TIFF page {index} ({_tag_name(page.compression)} compressed)")
    if is_colour:
        return pixels
    # Pillow inverts 1- and 8-bit MinIsWhite itself but leaves wider samples as stored.
    if page.photometric == tifffile.PHOTOMETRIC.MINISWHITE and page.bitspersample > 8:
        pixels = _invert_miniswhite(path, pixels, page.bitspersample)
    if pixels.dtype != layout.dtype:
        # Pillow widens e.g. int16 to int32; narrow back only when no value changes.
        narrowed = pixels.astype(layout.dtype)
        if not np.array_equal(narrowed, pixels):
            raise UnreadableFileError(
                path, f"unsupported TIFF page {index} ({_tag_name(page.compression)} compressed {page.dtype})"
            )
        pixels = narrowed
    return pixels


# --- NumPy .npy ----------------------------------------------------------------------------------


def _read_npy(path: Path, stream: BinaryIO, size: int) -> RasterImage:
    shape, dtype, data_offset = _npy_header(path, stream)
    if dtype.hasobject:
        # Loading objects means unpickling, which can run arbitrary code.
        raise UnreadableFileError(path, "object arrays are not allowed")
    if dtype.names is not None:
        raise UnreadableFileError(path, "structured arrays are not supported")
    if dtype.kind == "c":
        raise UnreadableFileError(path, "complex arrays are not supported")
    if dtype.kind not in "biuf" or dtype.subdtype is not None:
        raise UnreadableFileError(path, f"unsupported .npy data type {dtype}")
    if any(extent == 0 for extent in shape):
        raise UnreadableFileError(path, f"empty .npy array of shape {shape}")

    ndim = len(shape)
    if ndim == 2:
        is_colour, rows, cols = False, shape[0], shape[1]
    elif ndim == 3 and shape[-1] in (3, 4):
        is_colour, rows, cols = True, shape[0], shape[1]
    elif ndim == 3:
        is_colour, rows, cols = False, shape[1], shape[2]
    elif ndim == 4 and shape[-1] in (3, 4):
        is_colour, rows, cols = True, shape[1], shape[2]
    else:
        raise UnreadableFileError(path, f"unsupported .npy array of shape {shape}")
    _check_frame_size(path, rows, cols)
    # math.prod, not np.prod: a forged header's extents must not wrap around 64 bits.
    if size < data_offset + math.prod(shape) * dtype.itemsize:
        raise UnreadableFileError(path, "truncated .npy file")

    try:
        # Memory-mapped so that only what we return is copied into memory; never unpickles.
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise _decoder_failure(path, ".npy", exc) from exc
    if mapped.shape != shape or mapped.dtype != dtype:
        raise UnreadableFileError(path, "file changed while it was being read")

    if is_colour:
        pixels = _npy_colour(path, mapped[..., :3])
    elif dtype == np.bool_:
        pixels = np.array(mapped, dtype=np.uint8)  # 0 or 1; np.array, unlike astype, drops the memmap type
    else:
        pixels = _finish(mapped)
    del mapped  # release the memory map (and the file) now
    if ndim == 2 or (ndim == 3 and is_colour):
        pixels = pixels[np.newaxis]
    return RasterImage(path, "NPY", pixels, is_colour, dtype.itemsize * 8)


def _npy_header(path: Path, stream: BinaryIO) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset, read from the header before any data is touched."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        if version == (1, 0):
            shape, _fortran_order, dtype = fmt.read_array_header_1_0(stream)
        elif version in ((2, 0), (3, 0)):
            # 3.0 differs only in allowing UTF-8 field names, i.e. structured arrays, refused anyway.
            shape, _fortran_order, dtype = fmt.read_array_header_2_0(stream)
        else:
            raise UnreadableFileError(path, f"unsupported .npy format version {version[0]}.{version[1]}")
    except UnreadableFileError:
        raise
    except Exception as exc:
        log.debug("bad .npy header in %s", path, exc_info=exc)
        if "EOF" in str(exc):
            raise UnreadableFileError(path, "truncated .npy file") from exc
        raise UnreadableFileError(path, "corrupt .npy header") from exc
    return tuple(int(extent) for extent in shape), np.dtype(dtype), stream.tell()


def _npy_colour(path: Path, rgb: np.ndarray) -> np.ndarray:
    """Colour must be 8-bit; other types are accepted only when every value is already an integer 0..255."""
    if rgb.dtype == np.uint8:
        return _finish(rgb)
    if rgb.dtype == np.bool_:
        return np.array(rgb, dtype=np.uint8)
    values = rgb
    in_range = bool(values.min() >= 0 and values.max() <= 255)
    if values.dtype.kind == "f":
        in_range = in_range and bool(np.all(np.isfinite(values)) and np.all(values == np.floor(values)))
    if not in_range:
        raise UnreadableFileError(
            path, f"colour .npy arrays must be uint8, or hold only integers 0..255 (this one is {rgb.dtype})"
        )
    return np.array(values, dtype=np.uint8)
