"""Tests for medviewer.io.raster; expected pixels are the arrays written, or Pillow's or tifffile's own decode."""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageOps

from medviewer.errors import UnreadableFileError
from medviewer.io.raster import (
    MAX_PIXELS_PER_FRAME,
    RASTER_SUFFIXES,
    RasterImage,
    is_raster_path,
    read_raster,
)


def random_array(shape, dtype, seed: int = 20240611) -> np.ndarray:
    """Full-range values, the same whichever tests run and in whatever order."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return (rng.standard_normal(shape) * 1000).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


def write_png(path: Path, samples: np.ndarray, bit_depth: int, colour_type: int) -> Path:
    """A PNG written by hand from the specification, for layouts Pillow cannot write (16-bit colour).

    `samples` is (rows, cols) or (rows, cols, channels); 2-bit rows come pre-packed as (rows, bytes).
    """
    rows = samples.shape[0]
    cols = samples.shape[1] * (8 // bit_depth if bit_depth < 8 else 1)
    dtype = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\x00" + samples[row].astype(dtype).tobytes() for row in range(rows))
    header = struct.pack(">IIBBBBB", cols, rows, bit_depth, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def tiny_tiff(
    path: Path,
    width: int,
    height: int,
    data: bytes = b"",
    *,
    bits: int = 8,
    photometric: int = 1,
    rows_per_strip: int | None = None,
    strip_bytes: int | None = None,
    colormap: tuple[int, ...] = (),
) -> Path:
    """A one-strip little-endian TIFF written by hand from the specification, for layouts and damage
    that tifffile and Pillow will not write: huge announced sizes, missing strips, 1-bit palettes."""
    entries = [
        (256, 4, 1, width),  # ImageWidth, LONG
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, bits),  # BitsPerSample, SHORT
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, photometric),
        (273, 4, 1, 0),  # StripOffsets: filled in below
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 4, 1, rows_per_strip or height),  # RowsPerStrip
        (279, 4, 1, min(strip_bytes if strip_bytes is not None else len(data), 0xFFFFFFFF)),
    ]
    if colormap:
        entries.append((320, 3, len(colormap), 0))  # ColorMap, SHORT, out of line: filled in below
    ifd_size = 2 + 12 * len(entries) + 4
    colormap_offset = 8 + ifd_size
    data_offset = colormap_offset + 2 * len(colormap)
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 273:
            value = data_offset
        if tag == 320:
            packed = struct.pack("<I", colormap_offset)
        elif kind == 3:
            packed = struct.pack("<H", value) + b"\x00\x00"
        else:
            packed = struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    colormap_bytes = struct.pack(f"<{len(colormap)}H", *colormap)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + colormap_bytes + data)
    return path


def digest(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def pillow_pixels(path: Path, mode: str | None = None) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert(mode) if mode else image)


def assert_unreadable(path: Path, *reason_parts: str) -> UnreadableFileError:
    with pytest.raises(UnreadableFileError) as caught:
        read_raster(path)
    error = caught.value
    assert type(error) is UnreadableFileError
    assert path.name in str(error)
    assert error.path == path
    for part in reason_parts:
        assert part in error.reason, error.reason
    return error


def assert_grey(image: RasterImage, expected: np.ndarray, fmt: str, bits: int) -> None:
    assert image.format == fmt
    assert not image.is_colour
    assert image.bits_per_sample == bits
    expected = expected if expected.ndim == 3 else expected[np.newaxis]
    assert image.pixels.dtype == expected.dtype.newbyteorder("=")
    assert image.pixels.shape == expected.shape
    assert image.frame_count == expected.shape[0]
    assert image.shape == expected.shape[1:3]
    assert image.pixels.tobytes() == expected.astype(image.pixels.dtype).tobytes()  # bit-exact, NaN too


def assert_colour(image: RasterImage, expected: np.ndarray, fmt: str, bits: int) -> None:
    assert image.format == fmt
    assert image.is_colour
    assert image.bits_per_sample == bits
    expected = expected if expected.ndim == 4 else expected[np.newaxis]
    assert image.pixels.dtype == np.uint8
    assert image.pixels.shape == expected.shape
    assert image.shape == expected.shape[1:3]
    np.testing.assert_array_equal(image.pixels, expected)


# --- API ---------------------------------------------------------------------------------------------


def test_suffixes_are_lower_case_and_complete():
    assert RASTER_SUFFIXES == frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy"})


@pytest.mark.parametrize("name", ["a.png", "B.PNG", "c.Jpg", "d.jpeg", "e.TIF", "f.tiff", "g.NPY"])
def test_is_raster_path_accepts_by_suffix(name):
    assert is_raster_path(Path(name))
    assert is_raster_path(name)


@pytest.mark.parametrize("name", ["a.dcm", "b", "c.png.gz", "d.npz", "e.bmp", "png"])
def test_is_raster_path_rejects_other_suffixes(name):
    assert not is_raster_path(Path(name))


def test_result_is_frozen_private_and_writable(tmp_path):
    path = tmp_path / "plane.npy"
    np.save(path, np.arange(12, dtype=np.uint16).reshape(3, 4))
    image = read_raster(path)
    assert type(image.pixels) is np.ndarray  # not a memmap still holding the file
    assert image.pixels.flags.writeable and image.pixels.flags.c_contiguous
    with pytest.raises(AttributeError):
        image.format = "PNG"  # type: ignore[misc]


# --- PNG -----------------------------------------------------------------------------------------------


def test_png_8bit_grey_is_bit_exact(tmp_path):
    values = random_array((37, 53), np.uint8)
    Image.fromarray(values).save(tmp_path / "grey8.png")
    assert_grey(read_raster(tmp_path / "grey8.png"), values, "PNG", 8)


def test_png_16bit_grey_is_bit_exact(tmp_path):
    values = random_array((29, 41), np.uint16)
    values[0, :6] = [0, 1, 255, 256, 65534, 65535]
    Image.fromarray(values).save(tmp_path / "grey16.png")
    with Image.open(tmp_path / "grey16.png") as written:
        assert written.mode.startswith("I")  # Pillow really stored 16 bits
    assert_grey(read_raster(tmp_path / "grey16.png"), values, "PNG", 16)


def test_png_bilevel_reads_as_pillow_shows_it(tmp_path):
    Image.fromarray(random_array((9, 17), np.uint8) > 127).save(tmp_path / "bilevel.png")
    expected = pillow_pixels(tmp_path / "bilevel.png", "L")  # 0 and 255
    assert_grey(read_raster(tmp_path / "bilevel.png"), expected, "PNG", 8)


def test_png_rgb_is_bit_exact(tmp_path):
    values = random_array((21, 34, 3), np.uint8)
    Image.fromarray(values).save(tmp_path / "rgb.png")
    assert_colour(read_raster(tmp_path / "rgb.png"), values, "PNG", 8)


def test_png_rgb_with_equal_channels_stays_colour(tmp_path):
    grey = random_array((12, 13), np.uint8)
    Image.fromarray(np.dstack([grey, grey, grey])).save(tmp_path / "greyish.png")
    assert_colour(read_raster(tmp_path / "greyish.png"), np.dstack([grey, grey, grey]), "PNG", 8)


def test_png_rgba_drops_alpha(tmp_path):
    values = random_array((11, 19, 4), np.uint8)
    Image.fromarray(values).save(tmp_path / "rgba.png")
    assert_colour(read_raster(tmp_path / "rgba.png"), values[..., :3], "PNG", 8)


def test_png_grey_alpha_drops_alpha(tmp_path):
    values = random_array((11, 19, 2), np.uint8)
    Image.fromarray(values, mode="LA").save(tmp_path / "la.png")
    assert_grey(read_raster(tmp_path / "la.png"), values[..., 0], "PNG", 8)


def test_png_grey_palette_reads_as_grey(tmp_path):
    Image.fromarray(random_array((15, 16), np.uint8)).convert("P").save(tmp_path / "greypal.png")
    with Image.open(tmp_path / "greypal.png") as written:
        assert written.mode == "P"
    expected = pillow_pixels(tmp_path / "greypal.png", "L")
    assert_grey(read_raster(tmp_path / "greypal.png"), expected, "PNG", 8)


def test_png_colour_palette_reads_as_rgb(tmp_path):
    image = Image.fromarray(random_array((15, 16, 3), np.uint8)).quantize(colors=32)
    image.save(tmp_path / "colourpal.png", transparency=0)
    expected = pillow_pixels(tmp_path / "colourpal.png", "RGB")
    assert_colour(read_raster(tmp_path / "colourpal.png"), expected, "PNG", 8)


def test_png_16bit_rgb_becomes_8bit_high_byte(tmp_path):
    """Pillow 13 decodes 16-bit RGB PNG to 8 bits per channel by keeping the high byte."""
    values = random_array((7, 9, 3), np.uint16)
    path = write_png(tmp_path / "rgb16.png", values, 16, 2)
    image = read_raster(path)
    assert_colour(image, (values >> 8).astype(np.uint8), "PNG", 8)
    np.testing.assert_array_equal(image.pixels[0], pillow_pixels(path))


def test_png_16bit_rgba_becomes_8bit_rgb(tmp_path):
    values = random_array((5, 6, 4), np.uint16)
    path = write_png(tmp_path / "rgba16.png", values, 16, 6)
    assert_colour(read_raster(path), (values[..., :3] >> 8).astype(np.uint8), "PNG", 8)


def test_png_16bit_grey_alpha_stays_grey(tmp_path):
    """Pillow widens 16-bit grey+alpha to RGBA; the file's colour type says grey."""
    values = random_array((5, 6, 2), np.uint16)
    path = write_png(tmp_path / "la16.png", values, 16, 4)
    assert_grey(read_raster(path), (values[..., 0] >> 8).astype(np.uint8), "PNG", 8)


def test_png_2bit_grey_reads_as_pillow_scales_it(tmp_path):
    path = write_png(tmp_path / "grey2.png", np.array([[0b00011011]], np.uint8), 2, 0)
    image = read_raster(path)
    assert_grey(image, pillow_pixels(path), "PNG", 8)
    assert image.shape == (1, 4)


def test_skimage_camera_png(tmp_path):
    from skimage import data

    camera = data.camera()
    Image.fromarray(camera).save(tmp_path / "camera.png")
    assert_grey(read_raster(tmp_path / "camera.png"), camera, "PNG", 8)


def test_skimage_astronaut_png(tmp_path):
    from skimage import data

    astronaut = data.astronaut()
    Image.fromarray(astronaut).save(tmp_path / "astronaut.png")
    assert_colour(read_raster(tmp_path / "astronaut.png"), astronaut, "PNG", 8)


# --- JPEG ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".JPG"])
def test_jpeg_rgb_matches_pillow(tmp_path, suffix):
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(random_array((40, 48, 3), np.uint8)).save(path, "JPEG", quality=90)
    assert_colour(read_raster(path), pillow_pixels(path), "JPEG", 8)


def test_jpeg_grey_matches_pillow(tmp_path):
    path = tmp_path / "film.jpg"
    Image.fromarray(random_array((40, 48), np.uint8)).save(path, "JPEG")
    assert_grey(read_raster(path), pillow_pixels(path), "JPEG", 8)


def test_jpeg_cmyk_converts_to_rgb_as_pillow(tmp_path):
    path = tmp_path / "print.jpg"
    Image.fromarray(random_array((16, 24, 4), np.uint8), mode="CMYK").save(path, "JPEG")
    assert_colour(read_raster(path), pillow_pixels(path, "RGB"), "JPEG", 8)


def test_jpeg_exif_orientation_is_applied(tmp_path):
    path = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    Image.fromarray(random_array((20, 50, 3), np.uint8)).save(path, "JPEG", exif=exif)
    image = read_raster(path)
    assert image.shape == (50, 20)
    with Image.open(path) as stored:
        expected = np.asarray(ImageOps.exif_transpose(stored))
    assert_colour(image, expected, "JPEG", 8)


# --- TIFF ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.uint32, np.int32, np.float32, np.float64])
def test_tiff_grey_is_bit_exact(tmp_path, dtype):
    values = random_array((23, 31), dtype)
    if np.dtype(dtype).kind == "f":
        values[0, :3] = [np.nan, np.inf, -0.0]
    tifffile.imwrite(tmp_path / "grey.tif", values)
    assert_grey(read_raster(tmp_path / "grey.tif"), values, "TIFF", np.dtype(dtype).itemsize * 8)


def test_tiff_big_endian_reads_in_native_order(tmp_path):
    values = random_array((8, 9), np.int16)
    tifffile.imwrite(tmp_path / "motorola.tiff", values, byteorder=">")
    image = read_raster(tmp_path / "motorola.tiff")
    assert image.pixels.dtype.isnative
    assert_grey(image, values, "TIFF", 16)


def test_tiff_rgb_is_bit_exact(tmp_path):
    values = random_array((13, 17, 3), np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", values, photometric="rgb")
    assert_colour(read_raster(tmp_path / "rgb.tif"), values, "TIFF", 8)


def test_tiff_rgba_drops_alpha(tmp_path):
    values = random_array((13, 17, 4), np.uint8)
    tifffile.imwrite(tmp_path / "rgba.tif", values, photometric="rgb", extrasamples=["unassalpha"])
    assert_colour(read_raster(tmp_path / "rgba.tif"), values[..., :3], "TIFF", 8)


def test_tiff_16bit_rgb_scales_to_8bit_and_records_16(tmp_path):
    values = random_array((13, 17, 3), np.uint16)
    tifffile.imwrite(tmp_path / "rgb16.tif", values, photometric="rgb")
    assert_colour(read_raster(tmp_path / "rgb16.tif"), (values >> 8).astype(np.uint8), "TIFF", 16)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tiff_planar_separate_rgb(tmp_path, dtype):
    planes = random_array((3, 12, 14), dtype)  # three planes of 12x14, not a 3-frame stack
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, planes, photometric="rgb", planarconfig="separate")
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].planarconfig == tifffile.PLANARCONFIG.SEPARATE
    expected = np.moveaxis(planes, 0, -1)
    if dtype == np.uint16:
        expected = (expected >> 8).astype(np.uint8)
    assert_colour(read_raster(path), expected, "TIFF", np.dtype(dtype).itemsize * 8)


def test_tiff_three_pages_give_three_frames(tmp_path):
    frames = random_array((3, 10, 11), np.uint16)
    path = tmp_path / "stack.tif"
    with tifffile.TiffWriter(path) as writer:
        for frame in frames:
            writer.write(frame, photometric="minisblack")
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 3
    assert_grey(read_raster(path), frames, "TIFF", 16)


def test_tiff_multipage_colour(tmp_path):
    frames = random_array((2, 10, 11, 3), np.uint8)
    tifffile.imwrite(tmp_path / "colour.tif", frames, photometric="rgb")
    assert_colour(read_raster(tmp_path / "colour.tif"), frames, "TIFF", 8)


def test_tiff_reduced_resolution_page_is_not_a_frame(tmp_path):
    full = random_array((16, 20), np.uint8)
    path = tmp_path / "pyramid.tif"
    with tifffile.TiffWriter(path) as writer:
        writer.write(full)
        writer.write(full[::2, ::2].copy(), subfiletype=1)
    assert_grey(read_raster(path), full, "TIFF", 8)


def test_tiff_pages_of_another_size_are_skipped_with_a_warning(tmp_path, caplog):
    first, other, third = (random_array(shape, np.uint8, seed) for seed, shape in enumerate([(8, 9), (5, 5), (8, 9)]))
    path = tmp_path / "mixed.tif"
    with tifffile.TiffWriter(path) as writer:
        for page in (first, other, third):
            writer.write(page, photometric="minisblack")
    with caplog.at_level(logging.WARNING, logger="medviewer.io.raster"):
        image = read_raster(path)
    assert_grey(image, np.stack([first, third]), "TIFF", 8)
    assert "page 1" in caplog.text


def test_tiff_miniswhite_is_shown_as_pillow_shows_it(tmp_path):
    values = random_array((6, 7), np.uint8)
    tifffile.imwrite(tmp_path / "negative.tif", values, photometric="miniswhite")
    assert_grey(read_raster(tmp_path / "negative.tif"), pillow_pixels(tmp_path / "negative.tif"), "TIFF", 8)


def test_tiff_bilevel_reads_as_pillow_shows_it(tmp_path):
    tifffile.imwrite(tmp_path / "bilevel.tif", random_array((6, 13), np.uint8) > 100)
    expected = pillow_pixels(tmp_path / "bilevel.tif", "L")
    assert_grey(read_raster(tmp_path / "bilevel.tif"), expected, "TIFF", 8)


def test_tiff_grey_palette_reads_as_grey(tmp_path):
    Image.fromarray(random_array((9, 10), np.uint8)).convert("P").save(tmp_path / "greypal.tif")
    expected = pillow_pixels(tmp_path / "greypal.tif", "L")
    assert_grey(read_raster(tmp_path / "greypal.tif"), expected, "TIFF", 8)


def test_tiff_colour_palette_reads_as_rgb(tmp_path):
    Image.fromarray(random_array((9, 10, 3), np.uint8)).quantize(colors=16).save(tmp_path / "pal.tif")
    expected = pillow_pixels(tmp_path / "pal.tif", "RGB")
    assert_colour(read_raster(tmp_path / "pal.tif"), expected, "TIFF", 8)


# tifffile needs the optional imagecodecs package for these compressions; Pillow (libtiff) decodes them.
@pytest.mark.parametrize(
    ("values", "compression"),
    [
        (random_array((12, 15), np.uint8), "tiff_lzw"),
        (random_array((12, 15), np.uint16), "tiff_lzw"),
        (random_array((12, 15), np.float32), "tiff_lzw"),
        (random_array((12, 15, 3), np.uint8), "tiff_lzw"),
    ],
    ids=["lzw-uint8", "lzw-uint16", "lzw-float32", "lzw-rgb"],
)
def test_tiff_compressions_tifffile_lacks_are_decoded(tmp_path, values, compression):
    path = tmp_path / "compressed.tif"
    Image.fromarray(values).save(path, compression=compression)
    image = read_raster(path)
    if values.ndim == 3:
        assert_colour(image, values, "TIFF", 8)
    else:
        assert_grey(image, values, "TIFF", values.dtype.itemsize * 8)


def test_tiff_lzw_16bit_miniswhite_is_inverted_like_tifffile_does(tmp_path):
    values = random_array((6, 7), np.uint16)
    plain, lzw = tmp_path / "plain.tif", tmp_path / "lzw.tif"
    tifffile.imwrite(plain, values, photometric="miniswhite")
    Image.fromarray(values).save(lzw, compression="tiff_lzw")
    with tifffile.TiffFile(lzw, mode="r+b") as tif:
        tif.pages[0].tags["PhotometricInterpretation"].overwrite(0)  # MinIsWhite
    expected = (65535 - values).astype(np.uint16)
    assert_grey(read_raster(plain), expected, "TIFF", 16)
    assert_grey(read_raster(lzw), expected, "TIFF", 16)


def test_tiff_group4_bilevel(tmp_path):
    path = tmp_path / "fax.tif"
    Image.fromarray(random_array((16, 24), np.uint8) > 127).save(path, compression="group4")
    assert_grey(read_raster(path), pillow_pixels(path, "L"), "TIFF", 8)


def test_tiff_1bit_palette(tmp_path):
    colormap = (65535, 0) + (0, 65535) + (0, 0)  # index 0 red, index 1 green
    path = tiny_tiff(
        tmp_path / "twocolour.tif", 8, 2, bytes([0b10110000, 0b01001111]), bits=1, photometric=3, colormap=colormap
    )
    assert_colour(read_raster(path), pillow_pixels(path, "RGB"), "TIFF", 8)


def test_tiff_with_strips_missing_is_refused(tmp_path):
    """tifffile would zero-fill the 999 strips the tags do not list; that is damage, not an image."""
    path = tiny_tiff(tmp_path / "holes.tif", 4, 1000, bytes(4), rows_per_strip=1)
    assert_unreadable(path, "corrupt TIFF", "1 of 1000 strips")


def test_tiff_with_no_rows_is_refused(tmp_path):
    path = tiny_tiff(tmp_path / "flat.tif", 4, 0, bytes(4))
    assert_unreadable(path, "no pixels")


def test_tiff_with_a_circular_page_chain_ends(tmp_path):
    path = tmp_path / "loop.tif"
    tifffile.imwrite(path, random_array((4, 5), np.uint8))
    data = bytearray(path.read_bytes())
    first_ifd = struct.unpack("<I", data[4:8])[0]
    entries = struct.unpack("<H", data[first_ifd : first_ifd + 2])[0]
    next_pointer = first_ifd + 2 + 12 * entries
    data[next_pointer : next_pointer + 4] = struct.pack("<I", first_ifd)  # the page points back to itself
    path.write_bytes(bytes(data))
    try:
        image = read_raster(path)
    except UnreadableFileError as error:
        assert path.name in str(error)
    else:
        assert image.frame_count == 1


def test_tiff_jpeg_compressed_rgb_matches_pillow(tmp_path):
    path = tmp_path / "jpeg_in_tiff.tif"
    Image.fromarray(random_array((16, 24, 3), np.uint8)).save(path, compression="jpeg")
    assert_colour(read_raster(path), pillow_pixels(path, "RGB"), "TIFF", 8)


def test_tiff_lzw_multipage(tmp_path):
    frames = [Image.fromarray(random_array((8, 9), np.uint8, seed)) for seed in range(3)]
    path = tmp_path / "stack_lzw.tif"
    frames[0].save(path, compression="tiff_lzw", save_all=True, append_images=frames[1:])
    expected = np.stack([np.asarray(frame) for frame in frames])
    assert_grey(read_raster(path), expected, "TIFF", 8)


# --- NumPy .npy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int64, np.float16, np.float32, np.float64])
def test_npy_2d_is_one_grey_frame(tmp_path, dtype):
    values = random_array((9, 12), dtype)
    np.save(tmp_path / "plane.npy", values)
    assert_grey(read_raster(tmp_path / "plane.npy"), values, "NPY", np.dtype(dtype).itemsize * 8)


def test_npy_bool_becomes_0_and_1(tmp_path):
    mask = random_array((5, 6), np.uint8) > 127
    np.save(tmp_path / "mask.npy", mask)
    assert_grey(read_raster(tmp_path / "mask.npy"), mask.astype(np.uint8), "NPY", 8)


def test_npy_3d_is_grey_frames(tmp_path):
    volume = random_array((4, 7, 8), np.int16)
    np.save(tmp_path / "volume.npy", volume)
    assert_grey(read_raster(tmp_path / "volume.npy"), volume, "NPY", 16)


@pytest.mark.parametrize("channels", [3, 4])
def test_npy_3d_with_colour_axis_is_one_colour_frame(tmp_path, channels):
    values = random_array((7, 8, channels), np.uint8)
    np.save(tmp_path / "colour.npy", values)
    assert_colour(read_raster(tmp_path / "colour.npy"), values[..., :3], "NPY", 8)


def test_npy_4d_is_colour_frames(tmp_path):
    values = random_array((3, 7, 8, 3), np.uint8)
    np.save(tmp_path / "clip.npy", values)
    assert_colour(read_raster(tmp_path / "clip.npy"), values, "NPY", 8)


@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.float32])
def test_npy_colour_of_integers_0_to_255_is_converted(tmp_path, dtype):
    values = random_array((7, 8, 3), np.uint8)
    np.save(tmp_path / "colour.npy", values.astype(dtype))
    assert_colour(read_raster(tmp_path / "colour.npy"), values, "NPY", np.dtype(dtype).itemsize * 8)


@pytest.mark.parametrize(
    "values",
    [
        np.full((4, 4, 3), 256, np.int32),
        np.full((4, 4, 3), -1, np.int16),
        np.full((4, 4, 3), 0.5, np.float32),
        np.full((4, 4, 3), np.nan, np.float64),
    ],
    ids=["over-255", "negative", "fraction", "nan"],
)
def test_npy_colour_outside_0_to_255_integers_is_refused(tmp_path, values):
    np.save(tmp_path / "colour.npy", values)
    assert_unreadable(tmp_path / "colour.npy", "colour", "0..255")


def test_npy_fortran_order_and_big_endian(tmp_path):
    values = np.asfortranarray(random_array((6, 10), np.uint16)).astype(">u2")
    np.save(tmp_path / "fortran.npy", values)
    image = read_raster(tmp_path / "fortran.npy")
    assert image.pixels.flags.c_contiguous and image.pixels.dtype == np.dtype("=u2")
    assert_grey(image, values, "NPY", 16)


class _Trap:
    """Unpickling this would create a directory: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_npy_object_array_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "evil.npy"
    np.save(path, np.array([_Trap(marker)], dtype=object), allow_pickle=True)
    assert_unreadable(path, "object arrays are not allowed")
    assert not marker.exists()


def test_npy_pickle_renamed_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "evil2.npy"
    path.write_bytes(pickle.dumps(_Trap(marker)))
    assert_unreadable(path, "not a .npy file")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (np.ones((3, 4), np.complex64), "complex arrays are not supported"),
        (np.zeros((3, 4), dtype=[("a", "u1"), ("b", "f4")]), "structured arrays are not supported"),
        (np.array([["a", "b"], ["c", "d"]]), "unsupported .npy data type"),
        (np.zeros((0, 5), np.uint8), "empty"),
        (np.zeros((3, 0, 5), np.uint8), "empty"),
        (np.arange(5, dtype=np.uint8), "unsupported .npy array of shape (5,)"),
        (np.array(7, np.uint8), "unsupported .npy array of shape ()"),
        (np.zeros((2, 3, 4, 5), np.uint8), "unsupported .npy array of shape (2, 3, 4, 5)"),
        (np.zeros((1, 2, 3, 4, 3), np.uint8), "unsupported .npy array of shape (1, 2, 3, 4, 3)"),
    ],
    ids=["complex", "structured", "strings", "empty-2d", "empty-3d", "1d", "0d", "4d", "5d"],
)
def test_npy_unsupported_arrays_are_refused(tmp_path, values, reason):
    np.save(tmp_path / "bad.npy", values)
    assert_unreadable(tmp_path / "bad.npy", reason)


def test_npz_renamed_to_npy_is_refused(tmp_path):
    np.savez(tmp_path / "bundle.npz", a=np.zeros((3, 3)))
    (tmp_path / "bundle.npz").rename(tmp_path / "bundle.npy")
    assert_unreadable(tmp_path / "bundle.npy", "not a .npy file", "ZIP")


def test_npy_truncated_data_is_refused(tmp_path):
    np.save(tmp_path / "cut.npy", random_array((50, 60), np.uint16))
    data = (tmp_path / "cut.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) - 100])
    assert_unreadable(tmp_path / "cut.npy", "truncated .npy")


def test_npy_truncated_header_is_refused(tmp_path):
    np.save(tmp_path / "cut.npy", random_array((5, 6), np.uint16))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "cut.npy").read_bytes()[:30])
    assert_unreadable(tmp_path / "cut.npy", "truncated .npy")


# --- size guard ------------------------------------------------------------------------------------


LIMIT = "over the 500-megapixel limit"


def test_limit_is_500_megapixels():
    assert MAX_PIXELS_PER_FRAME == 500_000_000
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS_PER_FRAME


@pytest.mark.parametrize(("width", "height"), [(60000, 60000), (25000, 25000)])
def test_huge_png_is_refused_from_its_header(tmp_path, width, height):
    """3.6 Gpx trips Pillow's own refusal; 625 Mpx only its warning, so our check must catch it."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path = tmp_path / "bomb.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )
    assert_unreadable(path, f"image is {width}x{height} pixels, {LIMIT}")


def test_huge_jpeg_is_refused_from_its_header(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(random_array((8, 8), np.uint8)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)  # height, width
    path = tmp_path / "bomb.jpg"
    path.write_bytes(bytes(data))
    assert_unreadable(path, f"image is 60000x60000 pixels, {LIMIT}")


def test_huge_tiff_is_refused_from_its_header(tmp_path):
    path = tiny_tiff(tmp_path / "bomb.tif", 60000, 60000, strip_bytes=60000 * 60000)
    assert_unreadable(path, f"image is 60000x60000 pixels, {LIMIT}")


def test_huge_npy_is_refused_from_its_header(tmp_path):
    path = tmp_path / "bomb.npy"
    with path.open("wb") as stream:
        header = {"descr": "|u1", "fortran_order": False, "shape": (60000, 60000)}
        np.lib.format.write_array_header_1_0(stream, header)
    assert_unreadable(path, f"image is 60000x60000 pixels, {LIMIT}")


def test_many_frames_of_allowed_size_are_not_refused_by_the_frame_limit(tmp_path):
    values = random_array((40, 30, 20), np.uint8)
    np.save(tmp_path / "frames.npy", values)
    assert read_raster(tmp_path / "frames.npy").frame_count == 40


# --- bad files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["missing.png", "missing.tif", "missing.npy", "missing.jpg"])
def test_missing_file(tmp_path, name):
    assert_unreadable(tmp_path / name, "file not found")


def test_directory(tmp_path):
    (tmp_path / "folder.png").mkdir()
    assert_unreadable(tmp_path / "folder.png", "directory")


@pytest.mark.parametrize("suffix", sorted(RASTER_SUFFIXES))
def test_empty_file(tmp_path, suffix):
    (tmp_path / f"empty{suffix}").touch()
    assert_unreadable(tmp_path / f"empty{suffix}", "empty file")


def test_unsupported_suffix(tmp_path):
    (tmp_path / "scan.bmp").write_bytes(b"BM" + bytes(64))
    assert_unreadable(tmp_path / "scan.bmp", "unsupported suffix")


def test_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "locked.png"
    Image.fromarray(random_array((4, 4), np.uint8)).save(path)

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", refuse)
    assert_unreadable(path, "permission denied")


def test_permission_denied_on_disk(tmp_path):
    path = tmp_path / "locked.png"
    Image.fromarray(random_array((4, 4), np.uint8)).save(path)
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running with privileges that read any file")
        assert_unreadable(path, "permission denied")
    finally:
        path.chmod(0o644)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("notes.png", "not a PNG file"),
        ("notes.jpg", "not a JPEG file"),
        ("notes.tif", "not a TIFF file"),
        ("notes.npy", "not a .npy file"),
    ],
)
def test_text_renamed_is_refused(tmp_path, name, label):
    (tmp_path / name).write_text("patient notes, not an image\n" * 10)
    assert_unreadable(tmp_path / name, label)


def test_wrong_suffix_says_what_the_file_looks_like(tmp_path):
    Image.fromarray(random_array((4, 4), np.uint8)).save(tmp_path / "real.png")
    (tmp_path / "real.png").rename(tmp_path / "real.jpg")
    assert_unreadable(tmp_path / "real.jpg", "not a JPEG file", "PNG")


def test_dicom_renamed_is_recognised(tmp_path):
    (tmp_path / "ct.tif").write_bytes(bytes(128) + b"DICM" + bytes(200))
    assert_unreadable(tmp_path / "ct.tif", "not a TIFF file", "DICOM")


def _truncate(path: Path, keep: int) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: keep if keep > 0 else len(data) + keep])
    return path


@pytest.mark.parametrize("keep", [4, 20, 40, 0.5])
def test_truncated_png(tmp_path, keep):
    path = tmp_path / "cut.png"
    Image.fromarray(random_array((64, 64), np.uint16)).save(path)
    keep = int(path.stat().st_size * keep) if isinstance(keep, float) else keep
    assert_unreadable(_truncate(path, keep), "PNG")


@pytest.mark.parametrize("keep", [2, 100, 0.5, 0.9])
def test_truncated_jpeg(tmp_path, keep):
    path = tmp_path / "cut.jpg"
    Image.fromarray(random_array((64, 64, 3), np.uint8)).save(path, "JPEG")
    keep = int(path.stat().st_size * keep) if isinstance(keep, float) else keep
    assert_unreadable(_truncate(path, keep), "JPEG")


def test_truncated_png_says_truncated(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(random_array((64, 64), np.uint16)).save(path)
    assert_unreadable(_truncate(path, path.stat().st_size // 2), "truncated PNG")


def test_truncated_jpeg_says_truncated(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.fromarray(random_array((64, 64, 3), np.uint8)).save(path, "JPEG")
    assert_unreadable(_truncate(path, path.stat().st_size // 2), "truncated JPEG")


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_truncated_tiff_says_truncated(tmp_path, compression):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, random_array((64, 64), np.uint16), compression=compression)
    assert_unreadable(_truncate(path, -100), "truncated TIFF")


@pytest.mark.parametrize("keep", [3, 6, 60])
def test_truncated_tiff_header(tmp_path, keep):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, random_array((64, 64), np.uint16))
    assert_unreadable(_truncate(path, keep), "TIFF")


@functools.cache
def _sample_bytes() -> dict[str, bytes]:
    """One small file of each kind, the same on every call (hypothesis replays examples)."""
    values = np.random.default_rng(7).integers(0, 256, (16, 12, 3), dtype=np.uint8)
    writers = {
        "s.png": lambda stream: Image.fromarray(values).save(stream, "PNG"),
        "s.jpg": lambda stream: Image.fromarray(values).save(stream, "JPEG"),
        "s.tif": lambda stream: tifffile.imwrite(stream, values, photometric="rgb", compression="zlib"),
        "s.npy": lambda stream: np.save(stream, values),
        "l.tif": lambda stream: Image.fromarray(values).save(stream, "TIFF", compression="tiff_lzw"),
    }
    samples = {}
    for name, write in writers.items():
        stream = io.BytesIO()
        write(stream)
        samples[name] = stream.getvalue()
    return samples


def _sample_files(directory: Path) -> list[Path]:
    paths = []
    for name, content in _sample_bytes().items():
        (directory / name).write_bytes(content)
        paths.append(directory / name)
    return paths


def test_input_files_are_never_modified(tmp_path):
    for path in _sample_files(tmp_path):
        before = digest(path)
        read_raster(path)
        assert digest(path) == before, path


# --- properties ------------------------------------------------------------------------------------


grey_arrays = st.sampled_from([np.uint8, np.uint16]).flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=24))
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=grey_arrays, suffix=st.sampled_from([".png", ".tif"]))
def test_png_and_tiff_round_trip_bit_exact(tmp_path_factory, values, suffix):
    path = tmp_path_factory.mktemp("roundtrip") / f"image{suffix}"
    if suffix == ".png":
        Image.fromarray(values).save(path)
    else:
        tifffile.imwrite(path, values)
    image = read_raster(path)
    assert image.pixels.dtype == values.dtype
    np.testing.assert_array_equal(image.pixels, values[np.newaxis])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_files_raise_only_unreadable_file_error(tmp_path_factory, data):
    name = data.draw(st.sampled_from(sorted(_sample_bytes())))
    source = tmp_path_factory.mktemp("damaged") / name
    content = bytearray(_sample_bytes()[name])
    cut = data.draw(st.integers(1, len(content)))
    content = content[:cut]
    for _ in range(data.draw(st.integers(0, 4))):
        position = data.draw(st.integers(0, len(content) - 1))
        content[position] = data.draw(st.integers(0, 255))
    source.write_bytes(bytes(content))
    try:
        image = read_raster(source)
    except UnreadableFileError as error:
        assert source.name in str(error) and error.reason
    else:
        assert image.pixels.ndim in (3, 4) and image.frame_count >= 1


def test_a_tiff_too_large_for_memory_is_refused_before_decoding(tmp_path, monkeypatch):
    import medviewer.io.volume_memory as volume_memory

    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.zeros((3, 64, 64), np.uint16), photometric="minisblack", compression="zlib")
    monkeypatch.setattr(volume_memory, "memory_budget_bytes", lambda: 10_000)
    with pytest.raises(UnreadableFileError, match="more than this machine can hold"):
        read_raster(path)
