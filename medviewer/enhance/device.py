"""Which device runs the networks: CUDA, then Apple MPS, then the CPU, unless the user says otherwise."""

from __future__ import annotations

import os

import torch

from medviewer.errors import MedViewerError

DEVICE_ENVIRONMENT = "MEDVIEWER_DEVICE"
CPU_BFLOAT16_ENVIRONMENT = "MEDVIEWER_CPU_BFLOAT16"  # "0" keeps half-precision-safe networks in float32
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


class DeviceUnavailableError(MedViewerError):
    """The device the user asked for does not exist on this machine."""


def choose_device(preference: str | None = None) -> torch.device:
    """`preference` ('auto', 'cpu', 'cuda', 'cuda:1', 'mps'; default `$MEDVIEWER_DEVICE`, else 'auto')."""
    preference = (preference or os.environ.get(DEVICE_ENVIRONMENT) or "auto").strip().lower()
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(preference)
    except RuntimeError:
        raise DeviceUnavailableError(f"unknown device {preference!r}; choose {', '.join(DEVICE_CHOICES)}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailableError("device cuda asked for, but this PyTorch build sees no CUDA GPU")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"device {preference} asked for, but there are {torch.cuda.device_count()} GPUs"
            )
    elif device.type == "mps":
        if not _mps_available():
            raise DeviceUnavailableError("device mps asked for, but Apple MPS is not available here")
    elif device.type != "cpu":
        raise DeviceUnavailableError(f"unknown device {preference!r}; choose {', '.join(DEVICE_CHOICES)}")
    return device


def describe_device(device: torch.device) -> str:
    """Human name for reports and the About box, e.g. 'cuda (NVIDIA H100)' or 'cpu (2 threads)'."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (Intel AMX or AVX512-BF16: Sapphire Rapids, Cooper
    Lake, AMD Zen 4 and later). There a bfloat16 convolution runs 2-3x faster than a float32 one (measured:
    msdenoiser on a 512x512 slice, 2 threads, 0.149 -> 0.056 s); elsewhere oneDNN emulates it, slower than
    float32. torch.cpu's probes are private, so any failure reads as "no"."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    for probe in probes:
        try:
            if getattr(torch.cpu, probe)():
                return True
        except Exception:  # noqa: BLE001 - a probe missing or failing on another build means no native bf16
            continue
    return False


def cpu_bfloat16_allowed() -> bool:
    """False when `$MEDVIEWER_CPU_BFLOAT16` is 0 (or off/false/no): float32 everywhere, for results that are
    bit-identical across CPUs with and without native bfloat16."""
    value = os.environ.get(CPU_BFLOAT16_ENVIRONMENT, "").strip().lower()
    return value not in ("0", "off", "false", "no")
