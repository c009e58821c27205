"""Atomic file writes: a temporary file in the destination folder, then `os.replace`.

A crash, a full disk or a reader scanning the folder never sees half a file: there is either the old
file or the new one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from medviewer.errors import OutputError


def _read_umask() -> int:
    # os.umask can only be read by setting it; do that once, at import, before any worker threads exist.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


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
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, destination)
    except OSError as error:
        raise OutputError(f"{destination}: cannot write ({error.strerror or error})") from None
    finally:
        temporary.unlink(missing_ok=True)
    return destination
