"""ONNX export of a trained generator: a graph for any batch and image size the network accepts, checked
against the inference engine before it is put in place.

Exporter: the TorchScript one (`torch.onnx.export(..., dynamo=False)` with `dynamic_axes`), not the
torch.export one (`dynamo=True`, which needs onnxscript). On torch 2.13 both give graphs within 3e-6 of the
engine for every registered architecture (tests/trainer/test_onnx_export.py). We take the TorchScript one:
- it is 5-10x faster: 0.1-1 s a network against 1.5-4 s on two CPU cores (the test file's eight networks, with
  their checks, take about 16 CPU seconds instead of 40);
- it needs neither onnxscript nor torch >= 2.5 (where `dynamo=True` and `dynamic_shapes` appeared), so it
  works across the torch versions pyproject.toml allows.
Its weakness is that it traces: Python arithmetic on a shape is frozen at the example's size with only a
TracerWarning (`ImageNetwork.check_input` is dropped that way, harmlessly), where torch.export proves the graph
for every size. Neither is trusted here: every graph is run at a size and batch other than the traced ones
and must match the engine, or it is not written. torch deprecated this exporter in 2.9; when it is removed, the
tests here fail and `_export` becomes `dynamo=True` with `dynamic_shapes` giving height and width as
`size_multiple * torch.export.Dim(...)`; that variant passed these same tests on torch 2.13.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from medviewer.enhance.engine import NetworkEnhancer, TileSettings
from medviewer.errors import MedViewerError, one_line
from medviewer.io.atomic import write_atomically

log = logging.getLogger(__name__)

TOLERANCE = 1e-4  # largest |ONNX - engine| accepted, in normalised units ([0, 1] image range)
INPUT_NAME = "images"
OUTPUT_NAME = "enhanced"
_EXAMPLE_SIDE = 64  # the size the graph is traced at (rounded up to size_multiple)
# 17 (2022): every operator our networks use, readable by onnxruntime >= 1.14, OpenVINO, TensorRT 8.6.
_OPSET = 17
_CHECK_SIZE = (96, 128)  # the size it is checked at: another size and shape, so the dynamic axes are exercised


class OnnxExportError(MedViewerError):
    """ONNX export is not possible here (its packages are missing) or failed."""


class OnnxVerificationError(OnnxExportError):
    """The exported graph does not compute what the engine computes; nothing was written."""


def export_onnx(network: torch.nn.Module, path: Path) -> Path:
    """Write `network` (an ImageNetwork) to `path` as an ONNX graph with input "images" (N, C, H, W) float32
    and output "enhanced" (N, C, H*scale, W*scale), N, H and W dynamic (H and W multiples of `size_multiple`).

    The graph is exported to a temporary file beside `path`, checked by onnx's checker and run with
    onnxruntime on a test image whose result must be within `TOLERANCE` of the engine's for the same image;
    only then does it replace `path`. On any failure `path` is left as it was (absent, or the older file).
    The caller's network is not modified."""
    onnx, onnxruntime = _require_onnx()
    path = Path(path)
    exported = copy.deepcopy(network).to(device="cpu", dtype=torch.float32).eval()

    def write_and_verify(temporary: Path) -> None:
        _export(exported, temporary)
        onnx.checker.check_model(str(temporary), full_check=True)
        difference = _largest_difference(onnxruntime, exported, temporary, path.name)
        if not difference <= TOLERANCE:  # NaN fails too
            raise OnnxVerificationError(
                one_line(
                    f"{path.name}: the ONNX graph differs from the engine by {difference:.3g} "
                    f"(tolerance {TOLERANCE:g}); not written"
                )
            )
        log.info("ONNX graph %s matches the engine within %.3g", path.name, difference)

    return write_atomically(path, write_and_verify)


def _require_onnx() -> tuple[ModuleType, ModuleType]:
    """onnx (the checker) and onnxruntime (the check): an optional extra, not a dependency."""
    try:
        import onnx
        import onnxruntime
    except ImportError as error:
        raise OnnxExportError(
            one_line(
                f"ONNX export needs the onnx extra ({error.name or error} is missing): pip install medviewer[onnx]"
            )
        ) from None
    return onnx, onnxruntime


def _export(network: torch.nn.Module, destination: Path) -> None:
    multiple = int(getattr(network, "size_multiple", 1))
    channels = int(getattr(network, "in_channels", 1))
    side = _example_side(multiple)
    example = torch.rand(2, channels, side, side, generator=torch.Generator().manual_seed(0))
    # torch < 2.5 has no `dynamo` argument; from 2.9 on it defaults to True.
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    try:
        with _quiet_exporter(), torch.no_grad():
            torch.onnx.export(
                network,
                (example,),
                str(destination),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                # Height and width must be multiples of size_multiple; ONNX cannot say so, the model card's
                # architecture does (and the engine pads to it).
                dynamic_axes={
                    INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                    OUTPUT_NAME: {0: "batch", 2: "output_height", 3: "output_width"},
                },
                opset_version=_OPSET,
                verbose=False,  # stdout carries the trainer's JSON events
                **legacy,
            )
    except torch.onnx.OnnxExporterError as error:  # an operator ONNX has no equivalent for, say
        raise OnnxExportError(
            one_line(f"cannot export {type(network).__name__} to ONNX: {str(error).splitlines()[0]}")
        ) from error


def _largest_difference(onnxruntime: ModuleType, network: torch.nn.Module, graph: Path, name: str) -> float:
    """max |ONNX - engine| on two test images (a batch of two exercises the batch axis)."""
    multiple = int(getattr(network, "size_multiple", 1))
    example_side = _example_side(multiple)
    rows = _round_up(_CHECK_SIZE[0], multiple)
    columns = max(_round_up(_CHECK_SIZE[1], multiple), example_side + multiple)  # never the traced size
    images = np.stack([check_image(rows, columns, seed) for seed in (0, 1)])
    scale = int(getattr(network, "scale", 1))
    # The graph runs whole images; the engine is asked for one pass too (tiles of at least the whole image),
    # so networks with an unbounded receptive field (CBAM, InstanceNorm) compare exactly. Its tiling is
    # exact for the others and tested on its own (tests/enhance/test_tiling.py, test_engine.py).
    whole = TileSettings(output_pixels=((max(rows, columns) + 2 * multiple + 2) * scale) ** 2)
    engine = NetworkEnhancer(
        copy.deepcopy(network), "onnx-check", "onnx-check", "check", torch.device("cpu"), False, whole
    )
    expected = engine.run_normalised(images)
    inputs = images[:, None]  # the engine runs grey images, so the networks it runs have one channel
    try:
        session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
        produced = session.run([OUTPUT_NAME], {INPUT_NAME: inputs})[0]
    except _runtime_errors(onnxruntime) as error:  # a size frozen into the graph fails here
        raise OnnxVerificationError(
            one_line(f"{name}: the ONNX graph does not run on {inputs.shape} images: {str(error).splitlines()[0]}")
        ) from error
    if produced.shape[0] != len(images) or produced.shape[2:] != expected.shape[1:]:
        raise OnnxVerificationError(
            one_line(
                f"{name}: the ONNX graph gave shape {produced.shape} for input {inputs.shape}, "
                f"the engine {expected.shape}"
            )
        )
    difference = np.abs(produced[:, 0] - expected)
    return float(difference.max()) if np.isfinite(difference).all() else math.inf


def _runtime_errors(onnxruntime: ModuleType) -> tuple[type[BaseException], ...]:
    """onnxruntime's own exception types (they derive from Exception directly)."""
    state = onnxruntime.capi.onnxruntime_pybind11_state
    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NotImplemented", "RuntimeException")
    return tuple(getattr(state, name) for name in names if hasattr(state, name))


def check_image(rows: int, columns: int, seed: int) -> np.ndarray:
    """A deterministic smooth phantom (gradient, two ellipses) plus Gaussian noise, float32, about [0, 1]."""
    y, x = np.mgrid[0:rows, 0:columns] / np.array([rows, columns])[:, None, None]
    image = 0.2 + 0.3 * y + 0.2 * x
    image = np.where(((y - 0.45) / 0.3) ** 2 + ((x - 0.5) / 0.35) ** 2 <= 1, 0.7, image)
    image = np.where(((y - 0.6) / 0.1) ** 2 + ((x - 0.35) / 0.08) ** 2 <= 1, 0.95, image)
    noise = np.random.default_rng(seed).normal(0.0, 0.05, (rows, columns))
    return (image + noise).astype(np.float32)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter warns of its own deprecation, of traced Python conditions (`check_input`'s, which the
    check covers) and that InstanceNorm uses the input's statistics (which it must): not the user's concern."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _example_side(multiple: int) -> int:
    # At least two multiples, so a network that downsamples by `multiple` is traced with 2x2 features at its
    # coarsest level, not the degenerate 1x1 (torch.export specialises a graph to sizes 0 and 1).
    return max(_round_up(_EXAMPLE_SIDE, multiple), 2 * multiple)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
