"""The exception family that carries user-facing messages (CLI: one line and exit 2; GUI: a message box)."""

from __future__ import annotations

from pathlib import Path

_MAX_REASON = 200


def one_line(text: str) -> str:
    """A message fit for one line: damaged files put raw bytes and newlines into the values we quote."""
    printable = "".join(character if character.isprintable() else "?" for character in str(text))
    return printable if len(printable) <= _MAX_REASON else printable[: _MAX_REASON - 3] + "..."


class MedViewerError(Exception):
    """A problem the user can act on; its message is shown as is, without a traceback."""


class UnreadableFileError(MedViewerError):
    """A file that cannot be read as an image: missing, truncated, corrupt, not an image, or too large."""

    def __init__(self, path: Path | str, reason: str):
        self.path = Path(path)
        self.reason = one_line(reason)
        super().__init__(f"{self.path}: {self.reason}")


class InvalidHeaderError(UnreadableFileError):
    """A header field whose value cannot describe an image: Rows 0, BitsStored 40 of 16, a slope of NaN ...

    One type and one message form ("invalid <Keyword> <value>: <why>") for every numeric field the
    loader reads, so a user (or a test) can tell which field of which file is at fault."""

    def __init__(self, path: Path | str, keyword: str, value: object, why: str):
        self.keyword = keyword
        super().__init__(path, f"invalid {keyword} {describe_value(value)}: {why}")


def describe_value(value: object) -> str:
    """A header value as a user would recognise it, short: 0, -3, 'abc', b'\\x00\\x01', [1, 2]."""
    if value is None:
        return "(missing)"
    if isinstance(value, (bytes, bytearray)):
        return repr(bytes(value[:16])) + ("..." if len(value) > 16 else "")
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        parts = [describe_value(part) for part in list(value)[:6]]
        return "[" + ", ".join(parts) + (", ..." if len(value) > 6 else "") + "]"
    if isinstance(value, float):
        return f"{value:g}"  # 0, not 0.0: as the header's Decimal String most likely said
    return str(value)


class NoFinitePixelsError(MedViewerError):
    """An image (or a pair of images) in which no pixel is finite: nothing to enhance or measure."""


class FrameOutOfRangeError(MedViewerError):
    """A frame number outside the series."""


class OutputError(MedViewerError):
    """An output that cannot be written, or that would overwrite an input."""


class ShapeMismatchError(MedViewerError):
    """Two images that should be compared pixel for pixel but differ in shape."""


class UnknownModelError(MedViewerError):
    """A model or method id that no registry knows."""


class OperationCancelled(MedViewerError):
    """The user cancelled long work (loading, enhancing); nothing partial is returned.

    Here, not in the engine, so that the GUI's job runner can catch it without importing torch."""
