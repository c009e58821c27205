"""Writing frames out (NPY values, windowed PNG/TIFF) atomically, never over an input."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from medviewer.errors import OutputError
from medviewer.io.atomic import write_atomically
from medviewer.io.study import Series
from medviewer.io.window import Window, apply_window, to_display_integers

EXPORT_SUFFIXES = (".npy", ".png", ".tif", ".tiff")


def refuse_overwriting_inputs(destination: Path, inputs: Iterable[Path]) -> None:
    """Originals are never modified: an output path that is one of the inputs is an error."""
    target = Path(destination).resolve()
    for source in inputs:
        if Path(source).resolve() == target:
            raise OutputError(f"{destination}: refusing to overwrite an input file")


def export_frame(
    series: Series,
    index: int,
    destination: Path,
    *,
    chosen_window: Window | None = None,
    bits: int = 8,
    also_protected: Iterable[Path] = (),
) -> Path:
    """Write one frame: `.npy` keeps the values (float32 in real units, or uint8 RGB); PNG/TIFF hold what
    the viewer shows (`Series.display`: window or the file's VOI LUT) at 8 or 16 bits; colour is 8-bit RGB.

    The destination may be none of the series' files nor of `also_protected` (the other originals a
    caller opened beside it)."""
    destination = Path(destination)
    suffix = _checked_suffix(destination, bits, [frame.path for frame in series.frames] + list(also_protected))
    values = series.values(index)
    if suffix == ".npy":
        return _write_npy(values, destination)
    if series.is_colour:
        if bits != 8:
            raise OutputError(f"{destination}: colour images are exported as 8-bit RGB; drop --depth 16")
        display = values
    else:
        display = to_display_integers(series.display(index, chosen_window), bits)
    return _write_display(display, destination, suffix)


def write_image(
    values: np.ndarray,
    destination: Path,
    *,
    display_window: Window | None = None,
    invert: bool = False,
    bits: int = 8,
    protected: Iterable[Path] = (),
) -> Path:
    """Write an image that is not (yet) part of a series, e.g. an enhanced one.

    `.npy` keeps the values exactly (float32 in the image's units, or uint8 RGB). PNG/TIFF hold either
    what a viewer shows through `display_window` (images with units, such as HU), or, without a window,
    the values themselves rounded into `bits` (grey levels of a PNG/TIFF source, which has no units)."""
    destination = Path(destination)
    suffix = _checked_suffix(destination, bits, protected)
    values = np.asarray(values)
    if suffix == ".npy":
        return _write_npy(values, destination)
    if values.ndim == 3:
        display = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    elif display_window is not None:
        display = to_display_integers(apply_window(values, display_window, invert=invert), bits)
    else:
        display = np.clip(np.rint(values), 0, 2**bits - 1).astype(np.uint8 if bits == 8 else np.uint16)
    return _write_display(display, destination, suffix)


def _checked_suffix(destination: Path, bits: int, protected: Iterable[Path]) -> str:
    """The output type, after refusing unknown types, odd bit depths and any path that is an input."""
    suffix = destination.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise OutputError(
            f"{destination}: unsupported output type {suffix or '(none)'}; use one of {', '.join(EXPORT_SUFFIXES)}"
        )
    if bits not in (8, 16):
        raise OutputError(f"{destination}: bit depth must be 8 or 16")
    refuse_overwriting_inputs(destination, protected)
    return suffix


def _write_npy(values: np.ndarray, destination: Path) -> Path:
    # np.save appends ".npy" to names without it; the temporary name ends in ".partial", so use a handle.
    def write(path: Path) -> None:
        with open(path, "wb") as handle:
            np.save(handle, values, allow_pickle=False)

    return write_atomically(destination, write)


def _write_display(display: np.ndarray, destination: Path, suffix: str) -> Path:
    if suffix == ".png":
        return write_atomically(destination, lambda path: Image.fromarray(display).save(path, format="PNG"))
    return write_atomically(
        destination,
        lambda path: tifffile.imwrite(path, display, photometric="rgb" if display.ndim == 3 else "minisblack"),
    )
