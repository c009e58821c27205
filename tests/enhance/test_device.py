"""Device choice: CUDA, then MPS, then CPU; an unavailable device asked for by name is one clear error."""

from __future__ import annotations

import pytest
import torch

from medviewer.enhance.device import DEVICE_ENVIRONMENT, DeviceUnavailableError, choose_device, describe_device


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv(DEVICE_ENVIRONMENT, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert choose_device(None).type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert choose_device().type == "cpu"


def test_environment_overrides_the_default(monkeypatch):
    monkeypatch.setenv(DEVICE_ENVIRONMENT, "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_device().type == "cpu"
    assert choose_device("cuda").type == "cuda"  # an explicit choice beats the environment


@pytest.mark.parametrize(
    "name, message", [("cuda", "no CUDA"), ("mps", "MPS"), ("tpu", "unknown device"), ("x!", "unknown")]
)
def test_unavailable_devices_are_one_line_errors(monkeypatch, name, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(DeviceUnavailableError, match=message):
        choose_device(name)


def test_cpu_description_names_the_threads():
    assert describe_device(torch.device("cpu")) == f"cpu ({torch.get_num_threads()} threads)"
