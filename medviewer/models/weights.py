"""Network weights in safetensors files: checked against the architecture before a single value is loaded.

Weights are never unpickled (a pickle can run code); safetensors holds only named arrays and a JSON header,
so the names, shapes and dtypes can be compared with the architecture from the header alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from medviewer.errors import MedViewerError, one_line
from medviewer.io.atomic import write_atomically

_FLOAT_DTYPES = {"F32", "F16", "BF16", "F64"}
_INTEGER_DTYPES = {"I64", "I32"}


class InvalidWeightsError(MedViewerError):
    """A weights file that is unreadable or does not fit the architecture its card names."""

    def __init__(self, path: Path | str, reason: str):
        self.path = Path(path)
        self.reason = one_line(reason)
        super().__init__(f"{self.path}: {self.reason}")


def check_weights(path: Path, expected: Mapping[str, torch.Tensor]) -> None:
    """Compare the file's header (names, shapes, dtypes) with a state dict; reads no tensor data.

    `expected` may live on the meta device, so a registry can check every model without building one.
    """
    header = _read_header(path)
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
        raise InvalidWeightsError(path, "does not match the architecture: " + ", ".join(parts))
    for name, tensor in expected.items():
        shape, dtype = header[name]
        if tuple(shape) != tuple(tensor.shape):
            raise InvalidWeightsError(
                path, f"{name} has shape {tuple(shape)}, the architecture needs {tuple(tensor.shape)}"
            )
        allowed = _FLOAT_DTYPES if tensor.dtype.is_floating_point else _INTEGER_DTYPES
        if dtype not in allowed:
            raise InvalidWeightsError(path, f"{name} is {dtype}, the architecture needs {tensor.dtype}")


def load_weights(module: torch.nn.Module, path: Path) -> None:
    """Fill `module` from a safetensors file after `check_weights`; refuses NaN or infinite values."""
    path = Path(path)
    state = module.state_dict()
    check_weights(path, state)
    loaded: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt") as weights:
            for name, target in state.items():
                tensor = weights.get_tensor(name)
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    raise InvalidWeightsError(path, f"{name} holds NaN or infinite values")
                loaded[name] = tensor.to(target.dtype)
    except (SafetensorError, OSError, RuntimeError) as error:
        raise InvalidWeightsError(path, f"cannot read weights ({error})") from None
    module.load_state_dict(loaded, strict=True)


def save_weights(module: torch.nn.Module, path: Path, metadata: Mapping[str, str] | None = None) -> Path:
    """Write a module's state dict as safetensors, atomically (a crash never leaves half a weights file)."""
    tensors = {name: tensor.detach().to("cpu").contiguous() for name, tensor in module.state_dict().items()}
    return write_atomically(
        Path(path), lambda temporary: save_file(tensors, str(temporary), metadata=dict(metadata or {}))
    )


def _read_header(path: Path) -> dict[str, tuple[list[int], str]]:
    try:
        with safe_open(str(path), framework="pt") as weights:
            header = {}
            for name in weights.keys():
                view = weights.get_slice(name)
                header[name] = (list(view.get_shape()), str(view.get_dtype()))
            return header
    except FileNotFoundError:
        raise InvalidWeightsError(path, "weights file not found") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise InvalidWeightsError(path, f"not a readable safetensors file ({error})") from None
