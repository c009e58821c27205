"""The inference engine: runs any registered method on images of any size, in the images' own units.

Models see what they were trained on, images min-max normalised to [0, 1] (ARCHITECTURE.md's protocol);
the engine maps their output back, so HU in gives HU out. Networks run tile by tile (see `tiling`) in
batches, on the chosen device, in half precision on a GPU where the model allows it, channels-last under
`torch.inference_mode`; progress is reported and cancellation honoured between batches.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from medviewer.enhance.colour import enhance_luminance
from medviewer.enhance.degrade import normalise
from medviewer.enhance.device import choose_device, cpu_bfloat16_allowed, cpu_has_native_bfloat16
from medviewer.enhance.finite import NonFinitePixels, fill_non_finite, find_non_finite, put_back
from medviewer.enhance.fusion import fuse_batch_norms
from medviewer.enhance.self_ensemble import check_ensemble_size, run_self_ensemble
from medviewer.enhance.tiling import AxisTile, plan_axis
from medviewer.errors import MedViewerError, OperationCancelled
from medviewer.models.architectures import build_architecture
from medviewer.models.classical import ClassicalMethod, bicubic_upscale
from medviewer.models.registry import ModelEntry
from medviewer.models.weights import load_weights

log = logging.getLogger(__name__)

Progress = Callable[[float], None]
CancelCheck = Callable[[], bool]


class EnhancementCancelled(OperationCancelled):
    """The user cancelled an enhancement; nothing partial is returned."""

    def __init__(self) -> None:
        super().__init__("enhancement cancelled")


class OutOfDeviceMemoryError(MedViewerError):
    """The device ran out of memory even with the smallest tiles."""


@dataclass(frozen=True)
class TileSettings:
    """How big one network pass may be. Activation memory grows with a pass's area, so each network's
    tiles are sized from `memory_bytes` and what it was measured to hold per output pixel (see
    `_activation_elements_per_output_pixel`); `output_pixels` overrides that with a fixed area."""

    memory_bytes: int = 2**30
    output_pixels: int | None = None
    overlap: int = 16
    # Context read around each tile for networks whose receptive field has no bound (global pooling or
    # instance norm); blending across the overlap hides what is left.
    unbounded_halo: int = 48
    smallest_output_pixels: int = 128 * 128

    def smaller(self) -> TileSettings:
        """A quarter of the area, after running out of device memory."""
        return replace(
            self,
            memory_bytes=self.memory_bytes // 4,
            output_pixels=None if self.output_pixels is None else self.output_pixels // 4,
        )


# Memory a forward pass holds at once, as a multiple of its largest tensor: input and output of a
# layer, residual and skip branches of several levels, the allocator's slack (measured on msdenoiser
# and DnCNN on the CPU: 2-12x; the larger for multi-scale networks, which keep skips alive).
_LIVE_TENSORS = 12


class Enhancer(ABC):
    """A method ready to run. Subclasses implement `run_normalised`; callers use `enhance` and friends."""

    def __init__(self, model_id: str, name: str, task: str, scale: int, device: torch.device):
        self.id = model_id
        self.name = name
        self.task = task
        self.scale = scale
        self.device = device

    @abstractmethod
    def run_normalised(
        self, images: np.ndarray, progress: Progress | None = None, should_cancel: CancelCheck | None = None
    ) -> np.ndarray:
        """(N, H, W) float32 images in normalised units -> (N, H*scale, W*scale) float32."""

    def enhance(
        self, values: np.ndarray, progress: Progress | None = None, should_cancel: CancelCheck | None = None
    ) -> np.ndarray:
        """One image in its own units: (H, W) grey or (H, W, 3) colour; the result is in the same units
        (float32 for grey, the input's dtype for colour) and exactly `scale` times the size."""
        values = np.asarray(values)
        if values.ndim == 3 and values.shape[-1] in (3, 4):
            rgb = values[..., :3]
            found = find_non_finite(rgb)
            if found is None:
                return self._enhance_colour(rgb, progress, should_cancel)
            enhanced = self._enhance_colour(fill_non_finite(rgb, found), progress, should_cancel)
            return put_back(enhanced, found, self.scale)
        if values.ndim != 2:
            raise MedViewerError(f"cannot enhance an image of shape {values.shape}: expected (rows, columns)")
        return self.enhance_volume(values[None], progress, should_cancel)[0]

    def enhance_volume(
        self, volume: np.ndarray, progress: Progress | None = None, should_cancel: CancelCheck | None = None
    ) -> np.ndarray:
        """A stack of grey slices (N, H, W), each normalised on its own as the protocol says.

        NaN and infinite pixels are filled for the method and put back in the result (`finite`)."""
        volume = np.asarray(volume)
        if volume.ndim != 3:
            raise MedViewerError(f"cannot enhance a volume of shape {volume.shape}: expected (slices, rows, columns)")
        images = np.empty(volume.shape, np.float32)
        frames = []
        non_finite: dict[int, NonFinitePixels] = {}
        for index, plane in enumerate(volume):
            found = find_non_finite(plane)
            if found is not None:
                non_finite[index] = found
                plane = fill_non_finite(plane, found)
            frame = normalise(plane)
            images[index] = frame.image
            frames.append(replace(frame, image=images[index]))  # one normalised copy of the volume, not two
        output = self.run_normalised(images, progress, should_cancel)
        for index, frame in enumerate(frames):  # in place: a 4096x4096 image must not need another copy
            output[index] = frame.restore(output[index])
            if index in non_finite:
                put_back(output[index], non_finite[index], self.scale)
        return output

    def enhance_normalised_image(
        self, image: np.ndarray, progress: Progress | None = None, should_cancel: CancelCheck | None = None
    ) -> np.ndarray:
        """An image already in normalised units, (H, W) or (H, W, 3): how simulate mode feeds a degraded copy
        in the clean image's own scale, exactly as the trainer does."""
        if image.ndim == 3:
            return enhance_luminance(
                image,
                lambda luma: self.run_normalised(luma[None], progress, should_cancel)[0],
                bicubic_upscale,
                self.scale,
            )
        return self.run_normalised(np.asarray(image, np.float32)[None], progress, should_cancel)[0]

    def _enhance_colour(self, rgb: np.ndarray, progress: Progress | None, should_cancel: CancelCheck | None):
        integer = np.issubdtype(rgb.dtype, np.integer)
        top = float(np.iinfo(rgb.dtype).max) if integer else max(1.0, float(rgb.max()))
        enhanced = self.enhance_normalised_image(rgb.astype(np.float32) / top, progress, should_cancel) * top
        if integer:
            return np.clip(np.rint(enhanced), 0, top).astype(rgb.dtype)
        return enhanced.astype(np.float32)


class ClassicalEnhancer(Enhancer):
    """A classical method (numpy, CPU) behind the same interface as the networks."""

    def __init__(self, method: ClassicalMethod):
        super().__init__(method.id, method.name, method.task, method.scale, torch.device("cpu"))
        self.method = method

    def run_normalised(self, images, progress=None, should_cancel=None):
        height, width = images.shape[1:]
        output = np.empty((len(images), height * self.scale, width * self.scale), np.float32)
        for index, image in enumerate(images):
            _check_cancel(should_cancel)
            output[index] = self.method.function(image)
            if progress is not None:
                progress((index + 1) / len(images))
        return output


class NetworkEnhancer(Enhancer):
    """A network on a device, run in tiles that batch across slices."""

    def __init__(
        self,
        network: torch.nn.Module,
        model_id: str,
        name: str,
        task: str,
        device: torch.device,
        half_precision: bool | None = None,
        tiles: TileSettings = TileSettings(),
        ensemble: int = 1,
    ):
        self.ensemble = check_ensemble_size(ensemble)
        if self.ensemble > 1:  # the label says how the image was made: x8 is not what one pass gives
            name = f"{name} (self-ensemble x{self.ensemble})"
        super().__init__(model_id, name, task, int(getattr(network, "scale", 1)), device)
        if half_precision is None:
            half_precision = bool(getattr(network, "half_precision_safe", False))
        # float16 only pays on a GPU; CPU float16 convolutions are slow or missing. On a CPU that computes
        # bfloat16 natively, the same networks run under bfloat16 autocast instead (weights and the input
        # skip stay float32), 2-3x faster; `cpu_bfloat16_allowed` lets a user insist on float32.
        self.dtype = torch.float16 if half_precision and device.type in ("cuda", "mps") else torch.float32
        self.cpu_bfloat16 = bool(
            half_precision
            and getattr(network, "cpu_bfloat16_safe", False)
            and device.type == "cpu"
            and cpu_bfloat16_allowed()
            and cpu_has_native_bfloat16()
        )
        if device.type == "cuda":  # same input, same output: deterministic kernels over the fastest ones
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        network = network.eval().requires_grad_(False)
        fuse_batch_norms(network)  # same outputs, one pass over memory per layer instead of two
        self.network = network.to(device=device, dtype=self.dtype)
        self.network = self.network.to(memory_format=torch.channels_last)
        self.size_multiple = int(getattr(network, "size_multiple", 1))
        radius = getattr(network, "receptive_radius", None)
        self.exact_tiling = radius is not None
        self.halo = int(radius) if radius is not None else tiles.unbounded_halo
        self.tiles = tiles
        self.activations_per_pixel = _activation_elements_per_output_pixel(self.network, device, self.dtype)

    def output_pixels_per_pass(self, settings: TileSettings) -> int:
        if settings.output_pixels is not None:
            return settings.output_pixels
        element = torch.finfo(self.dtype).bits // 8
        budget = settings.memory_bytes // (self.activations_per_pixel * element * _LIVE_TENSORS)
        return max(settings.smallest_output_pixels, int(budget))

    def run_normalised(self, images, progress=None, should_cancel=None):
        if self.ensemble == 1:
            return self._run_with_memory_fallback(images, progress, should_cancel)

        def run_copy(copy: np.ndarray, index: int, size: int) -> np.ndarray:
            def copy_progress(fraction: float) -> None:
                progress((index + fraction) / size)

            return self._run_with_memory_fallback(copy, copy_progress if progress else None, should_cancel)

        return run_self_ensemble(run_copy, np.asarray(images, np.float32), self.ensemble)

    def _run_with_memory_fallback(self, images, progress, should_cancel) -> np.ndarray:
        settings = self.tiles
        while True:
            try:
                return self._run_tiled(images, settings, progress, should_cancel)
            except torch.OutOfMemoryError:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if self.output_pixels_per_pass(settings) <= settings.smallest_output_pixels:
                    raise OutOfDeviceMemoryError(
                        f"out of memory on {self.device.type} even with the smallest tiles; try --device cpu"
                    ) from None
                settings = settings.smaller()
                log.warning(
                    "out of %s memory; retrying with tiles of %d output pixels",
                    self.device,
                    self.output_pixels_per_pass(settings),
                )

    def _run_tiled(self, images: np.ndarray, settings: TileSettings, progress, should_cancel) -> np.ndarray:
        count, height, width = images.shape
        multiple, scale = self.size_multiple, self.scale
        padded_height, padded_width = _round_up(height, multiple), _round_up(width, multiple)
        if (padded_height, padded_width) != (height, width):
            # Symmetric padding continues the anatomy instead of adding an edge the network never saw.
            images = np.pad(images, ((0, 0), (0, padded_height - height), (0, padded_width - width)), mode="symmetric")
        pass_pixels = self.output_pixels_per_pass(settings)
        side = max(64, math.isqrt(pass_pixels) // scale)
        # A core narrower than a few halos spends most of a pass on context (SRGAN at x4 under the memory
        # budget would read 9 pixels per pixel kept); the budget is conservative enough to exceed here.
        core = max(2 * settings.overlap + multiple, 4 * self.halo, side - 2 * self.halo - multiple - 1)
        rows = plan_axis(padded_height, core, self.halo, settings.overlap, multiple)
        columns = plan_axis(padded_width, core, self.halo, settings.overlap, multiple)
        output = np.zeros((count, padded_height * scale, padded_width * scale), np.float32)
        jobs = [(index, row, column) for index in range(count) for row in rows.tiles for column in columns.tiles]
        per_batch = max(1, pass_pixels // (rows.read_length * columns.read_length * scale * scale))
        for first in range(0, len(jobs), per_batch):
            _check_cancel(should_cancel)
            batch = jobs[first : first + per_batch]
            windows = np.stack(
                [
                    images[index, row.read_start : row.read_start + rows.read_length][
                        :, column.read_start : column.read_start + columns.read_length
                    ]
                    for index, row, column in batch
                ]
            )
            results = self._forward(windows)
            for (index, row, column), result in zip(batch, results, strict=True):
                _blend_core(output[index], result, row, column, scale)
            if progress is not None:
                progress(min(len(jobs), first + per_batch) / len(jobs))
        return output[:, : height * scale, : width * scale]  # drops the padding; a view when there was none

    def _forward(self, windows: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(windows[:, None]).to(device=self.device, dtype=self.dtype)
        tensor = tensor.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cpu_bfloat16):
            result = self.network(tensor)
        return result[:, 0].float().cpu().numpy()

    @property
    def precision(self) -> str:
        """The arithmetic the network runs in, for reports: float32, float16 or bfloat16 (autocast)."""
        return "bfloat16" if self.cpu_bfloat16 else str(self.dtype).removeprefix("torch.")


def _activation_elements_per_output_pixel(network: torch.nn.Module, device: torch.device, dtype) -> int:
    """The largest tensor any layer produces, in elements per output pixel, from one tiny probe pass.

    Widths and resolutions differ per architecture (VDSR keeps 64 channels at the output's size,
    msdenoiser's widest layer is at a quarter of the pixels), so a fixed tile size would be too small
    for one and exhaust memory for the other."""
    multiple = int(getattr(network, "size_multiple", 1))
    side = max(64, -(-64 // multiple) * multiple)
    scale = int(getattr(network, "scale", 1))
    channels = int(getattr(network, "in_channels", 1))
    largest = 0

    def record(_module, _inputs, output) -> None:
        nonlocal largest
        for tensor in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(tensor, torch.Tensor):
                largest = max(largest, tensor.numel())

    hooks = [module.register_forward_hook(record) for module in network.modules()]
    try:
        with torch.inference_mode():
            network(torch.zeros(1, channels, side, side, device=device, dtype=dtype))
    except torch.OutOfMemoryError:
        raise OutOfDeviceMemoryError(
            f"out of memory on {device.type} before the first tile; try --device cpu"
        ) from None
    finally:
        for hook in hooks:
            hook.remove()
    return max(1, -(-largest // (side * side * scale * scale)))


def _blend_core(output: np.ndarray, result: np.ndarray, row: AxisTile, column: AxisTile, scale: int) -> None:
    """Add a tile's core, weighted, into the output (the weights of all tiles sum to one at each pixel)."""
    top, bottom = (row.core_start - row.read_start) * scale, (row.core_stop - row.read_start) * scale
    left, right = (column.core_start - column.read_start) * scale, (column.core_stop - column.read_start) * scale
    core = result[top:bottom, left:right]
    target = output[
        row.core_start * scale : row.core_stop * scale, column.core_start * scale : column.core_stop * scale
    ]
    row_weights, column_weights = np.repeat(row.weights, scale), np.repeat(column.weights, scale)
    if row_weights.min() == 1.0 and column_weights.min() == 1.0:
        target += core
    else:
        target += core * row_weights[:, None] * column_weights[None, :]


def load_enhancer(
    entry: ModelEntry,
    device: str | torch.device | None = None,
    tiles: TileSettings = TileSettings(),
    ensemble: int | None = None,
):
    """Ready a registry entry to run: classical methods run on the CPU; networks are built, filled from
    their checked safetensors weights and moved to `device` (default: the best available), and run as a
    geometric self-ensemble of `ensemble` copies (`self_ensemble`; 1: one pass; None: as many as the
    card's `self_ensemble`, the way its figures were measured). Classical methods ignore `ensemble`: it
    averages away a learned filter's orientation-dependent errors, and they have no weights."""
    if ensemble is not None:
        ensemble = check_ensemble_size(ensemble)
    if entry.classical is not None:
        return ClassicalEnhancer(entry.classical)
    card, weights_path = entry.card, entry.weights_path
    if card is None or weights_path is None:
        raise MedViewerError(f"model {entry.id} has no card")
    if ensemble is None:
        ensemble = card.self_ensemble
    chosen = device if isinstance(device, torch.device) else choose_device(device)
    network = build_architecture(card.architecture, card.arguments)
    load_weights(network, weights_path)
    return NetworkEnhancer(network, card.id, card.name, card.task, chosen, card.half_precision, tiles, ensemble)


def _check_cancel(should_cancel: CancelCheck | None) -> None:
    if should_cancel is not None and should_cancel():
        raise EnhancementCancelled()


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
