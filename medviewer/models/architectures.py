"""The architecture registry: networks found by the name a model card's `architecture` field gives, and their contract.

BasicSR's pattern: each family module registers its classes with `@register_architecture(name)` when it is
imported, and `build_architecture(name, arguments)` builds one from a card's `arguments`. Importing this
module imports every family module, so the registry is complete as soon as anything asks it.

The contract every registered generator keeps is `ImageNetwork`; discriminators for the trainer derive from
`Discriminator`. The `span_through_*` helpers do the receptive-field bookkeeping that each family uses to state
its `receptive_radius` exactly (the tests check it against the networks themselves).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import nn

from medviewer.errors import MedViewerError, one_line

# Family modules, imported at the end of this module so that their decorators fill the registry.
FAMILY_MODULES = (
    "srcnn",
    "vdsr",
    "srgan",
    "dncnn",
    "unet",
    "dagan",
    "cyclegan",
    "multiscale_denoiser",
    "fast_super_resolution",
)

Span = tuple[int, int]  # first and last pixel index (inclusive) along one axis

ModuleClass = TypeVar("ModuleClass", bound=type[nn.Module])

_ARCHITECTURES: dict[str, type[nn.Module]] = {}


class ArchitectureError(MedViewerError):
    """An architecture name nobody registered, or arguments its constructor does not accept."""


def float32_layer(layer: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """`layer(features)` in float32 even under autocast. Rounding the image itself to bfloat16's 8-bit
    mantissa (a step of 1/256 near white) costs a denoiser at 44 dB; rounding only hidden features does not:
    msdenoiser on the held-out six at sigma 15, float32 35.151 dB, all bfloat16 35.137, bfloat16 with its
    head and tail in float32 35.150. The two layers are under 2 % of its arithmetic."""
    try:
        autocast = torch.is_autocast_enabled(features.device.type)
    except RuntimeError:  # a device with no autocast at all ("meta", as the FLOP counter uses)
        autocast = False
    if not autocast:
        return layer(features)
    with torch.autocast(features.device.type, enabled=False):
        return layer(features.float())


class ImageNetwork(nn.Module):
    """The contract of every registered generator, which the inference engine relies on.

    - `forward` takes (N, in_channels, H, W) float tensors holding images normalised to about [0, 1] (the
      degradation protocol's units; noisy inputs go slightly outside) and returns
      (N, out_channels, H * scale, W * scale) in the same units. Networks whose paper works in [-1, 1] map to
      and from it inside `forward`.
    - `size_multiple`: H and W must be multiples of it (the engine pads).
    - `receptive_radius`: in eval mode, the outputs of input pixel (y, x) - output pixels
      [y*scale, (y+1)*scale) x [x*scale, (x+1)*scale) - depend only on input pixels within this many pixels
      of (y, x) on each side. None when some output depends on the whole image (global pooling, instance
      norm). The engine reads this much context around each tile, so tiled inference equals untiled.
      It describes eval mode: in train mode BatchNorm's batch statistics make every network global.
    - `half_precision_safe`: False where float16 overflows or is inaccurate (normalisation statistics).
    - `cpu_bfloat16_safe`: True where bfloat16 autocast was measured to cost nothing on the held-out images
      (the engine then uses it on CPUs that compute bfloat16 natively); such a network runs the layers
      that read or write pixels in float32 (`float32_layer`).
    """

    def __init__(
        self,
        *,
        scale: int,
        in_channels: int,
        out_channels: int,
        size_multiple: int,
        receptive_radius: int | None,
        half_precision_safe: bool,
        cpu_bfloat16_safe: bool = False,
    ):
        super().__init__()
        self.scale = scale
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_multiple = size_multiple
        self.receptive_radius = receptive_radius
        self.half_precision_safe = half_precision_safe
        self.cpu_bfloat16_safe = cpu_bfloat16_safe

    def parameter_count(self) -> int:
        """Number of trainable values (what a model card's `parameters` field states)."""
        return sum(parameter.numel() for parameter in self.parameters())

    def check_input(self, images: torch.Tensor) -> None:
        """Raise ValueError for a batch this network cannot take; the engine pads, so this means a caller bug."""
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(f"expected (N, {self.in_channels}, H, W) images, got shape {tuple(images.shape)}")
        height, width = images.shape[-2:]
        if height % self.size_multiple or width % self.size_multiple:
            raise ValueError(f"image size {height}x{width} is not a multiple of {self.size_multiple}")


class Discriminator(nn.Module):
    """A GAN discriminator for the trainer: (N, in_channels, H, W) images in [0, 1] to real/fake logits."""

    def __init__(self, *, in_channels: int):
        super().__init__()
        self.in_channels = in_channels

    def parameter_count(self) -> int:
        return sum(parameter.numel() for parameter in self.parameters())


def register_architecture(name: str) -> Callable[[ModuleClass], ModuleClass]:
    """Class decorator: make `build_architecture(name, ...)` build this class."""

    def register(architecture: ModuleClass) -> ModuleClass:
        previous = _ARCHITECTURES.get(name)
        # The same class again (a module reloaded) may re-register; another class may not take the name.
        if previous is not None and _full_name(previous) != _full_name(architecture):
            raise ValueError(f"architecture name {name!r} is taken by {_full_name(previous)}")
        _ARCHITECTURES[name] = architecture
        return architecture

    return register


def _full_name(architecture: type) -> str:
    return f"{architecture.__module__}.{architecture.__qualname__}"


def build_architecture(name: str, arguments: Mapping[str, Any]) -> nn.Module:
    """A freshly initialised network of the named architecture, built with a card's `arguments`."""
    architecture = _ARCHITECTURES.get(name) if isinstance(name, str) else None
    if architecture is None:
        known = ", ".join(architecture_names())
        raise ArchitectureError(one_line(f"unknown architecture {name!r}; known: {known}"))
    if not isinstance(arguments, Mapping):
        raise ArchitectureError(one_line(f"architecture {name!r}: arguments must be a mapping, got {arguments!r}"))
    try:
        return architecture(**arguments)
    except (TypeError, ValueError) as error:  # the reason first: one_line may cut a long message short
        raise ArchitectureError(one_line(f"architecture {name!r}: {error} (arguments {dict(arguments)!r})")) from None


def architecture_names() -> list[str]:
    """Every registered name, sorted."""
    return sorted(_ARCHITECTURES)


# --- argument checks shared by the families (TypeError / ValueError become ArchitectureError) ---


def positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def positive_ints(name: str, values: object) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a list of integers, got {values!r}")
    return tuple(positive_int(f"{name}[{index}]", value) for index, value in enumerate(values))


def flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be true or false, got {value!r}")
    return value


# --- receptive-field bookkeeping: which input pixels (along one axis) a span of output pixels reads ---


def span_through_conv(span: Span, kernel_size: int, stride: int = 1, padding: int | None = None) -> Span:
    """Input span read by a convolution's output span; padding defaults to 'same' for stride 1."""
    if padding is None:
        padding = (kernel_size - 1) // 2
    first, last = span
    return stride * first - padding, stride * last - padding + kernel_size - 1


def span_through_transposed_conv(span: Span, kernel_size: int, stride: int, padding: int) -> Span:
    """Input span feeding a transposed convolution's output span (output o = stride * i - padding + tap)."""
    first, last = span
    return -((kernel_size - 1 - first - padding) // stride), (last + padding) // stride


def span_through_pixel_shuffle(span: Span, factor: int) -> Span:
    """Low-resolution span that a pixel shuffle's (depth-to-space) output span comes from."""
    first, last = span
    return first // factor, last // factor


def span_through_pixel_unshuffle(span: Span, factor: int) -> Span:
    """High-resolution span that a pixel unshuffle's (space-to-depth) output span comes from."""
    first, last = span
    return first * factor, last * factor + factor - 1


def span_through_bicubic_upsampling(span: Span, scale: int) -> Span:
    """Input span of F.interpolate(mode='bicubic', align_corners=False, scale_factor=scale) output pixels.

    Output pixel o samples x = (o + 0.5) / scale - 0.5 with taps floor(x) - 1 .. floor(x) + 2. Where x is an
    integer (odd scales) the outer taps weigh exactly 0, but the float arithmetic may land just below it, so
    we count one more tap on the low side: one pixel too many never breaks tiling, one too few would.
    """
    first, last = span
    numerator = 2 * first + 1 - scale  # x = numerator / (2 * scale)
    low = numerator // (2 * scale) - (2 if numerator % (2 * scale) == 0 else 1)
    high = (2 * last + 1 - scale) // (2 * scale) + 2
    return low, high


def span_union(*spans: Span) -> Span:
    return min(first for first, _ in spans), max(last for _, last in spans)


def radius_of(input_span_of: Callable[[Span], Span], *, scale: int, period: int) -> int:
    """Receptive radius (see ImageNetwork) from a function giving the input span an output span reads.

    The pattern repeats every `period` input pixels (the network's total downsampling), so checking one
    period of output positions covers them all.
    """
    radius = 0
    for position in range(scale * period):
        first, last = input_span_of((position, position))
        cell = position // scale
        radius = max(radius, cell - first, last - cell)
    return radius


for _family in FAMILY_MODULES:
    importlib.import_module(f"{__package__}.{_family}")
