"""Writing frames out (NPY values, windowed PNG/TIFF) atomically, never over an input."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from medviewer.errors import OutputError
from medviewer.io.study import Series
from medviewer.io.window import Window, apply_window, to_display_integers

EXPORT_SUFFIXES = (".npy", ".png", ".tif", ".tiff")


def write_atomically(destination: Path, write: Callable[[Path], None]) -> Path:
    """Write through a temporary file in the destination's folder, then `os.replace` it into place.

    A crash or a full disk leaves either the old file or the new one, never half of one.
    """
    destination = Path(destination)
    folder = destination.parent if str(destination.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{destination}: folder {folder} does not exist")
    handle, temporary_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".partial", dir=folder)
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        write(temporary)
        # mkstemp creates 0600 files; an export should get the permissions any new file would.
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, destination)
    except OSError as error:
        raise OutputError(f"{destination}: cannot write ({error.strerror or error})") from None
    finally:
        temporary.unlink(missing_ok=True)
    return destination


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def refuse_overwriting_inputs(destination: Path, inputs: Iterable[Path]) -> None:
    """Originals are never modified: an output path that is one of the inputs is an error."""
    target = Path(destination).resolve()
    for source in inputs:
        if Path(source).resolve() == target:
            raise OutputError(f"{destination}: refusing to overwrite an input file")


def export_frame(series: Series, index: int, destination: Path, *, chosen_window: Window | None = None,
                 bits: int = 8) -> Path:
    """Write one frame: `.npy` keeps the values (float32 in real units, or uint8 RGB); PNG/TIFF are
    windowed for display at 8 or 16 bits (colour images are written as 8-bit RGB)."""
    destination = Path(destination)
    suffix = destination.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise OutputError(f"{destination}: unsupported output type {suffix or '(none)'}; use one of {', '.join(EXPORT_SUFFIXES)}")
    if bits not in (8, 16):
        raise OutputError(f"{destination}: bit depth must be 8 or 16")
    refuse_overwriting_inputs(destination, {frame.path for frame in series.frames})
    values = series.values(index)
    if suffix == ".npy":
        # np.save appends ".npy" to names without it; the temporary name ends in ".partial", so use a handle.
        def write_npy(path: Path) -> None:
            with open(path, "wb") as handle:
                np.save(handle, values, allow_pickle=False)

        return write_atomically(destination, write_npy)
    if series.is_colour:
        if bits != 8:
            raise OutputError(f"{destination}: colour images are exported as 8-bit RGB; drop --depth 16")
        display = values
    else:
        chosen = chosen_window or series.default_window(index)
        display = to_display_integers(apply_window(values, chosen, invert=series.invert_display), bits)
    if suffix == ".png":
        return write_atomically(destination, lambda path: Image.fromarray(display).save(path, format="PNG"))
    return write_atomically(destination, lambda path: tifffile.imwrite(path, display, photometric="rgb" if display.ndim == 3 else "minisblack"))
