"""ONNX export: every generator family's graph computes what the engine computes, at sizes other than the
traced one; a graph that does not is refused and leaves nothing behind; missing packages give one clear line."""

from __future__ import annotations

import copy
import sys

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from medviewer.enhance.engine import NetworkEnhancer  # noqa: E402
from medviewer.errors import MedViewerError  # noqa: E402
from medviewer.models.architectures import architecture_names, build_architecture  # noqa: E402
from trainer.onnx_export import (  # noqa: E402
    INPUT_NAME,
    OUTPUT_NAME,
    OnnxExportError,
    OnnxVerificationError,
    export_onnx,
)

CPU = torch.device("cpu")
# Small versions of every generator family, so the whole file runs in seconds per network.
ARCHITECTURES = {
    "srcnn": {"scale": 2},
    "vdsr": {"scale": 2, "depth": 4, "width": 8},
    "srgan-cbam": {"scale": 4, "blocks": 2, "width": 8},
    "dncnn": {"depth": 5, "width": 8},
    "unet": {"depth": 3, "width": 8},
    "dagan": {"depth": 3, "width": 8},
    "cyclegan-resnet": {"width": 8, "blocks": 2},
    "msdenoiser": {"widths": [8, 16, 32], "blocks": [1, 1, 1]},
    "fastsr": {"scale": 2, "widths": [8, 16, 32], "blocks": [1, 1, 1]},
}


def trained_looking(name: str) -> torch.nn.Module:
    """Seeded random weights, with BatchNorm made non-trivial: random affine parameters and running statistics
    moved by train-mode passes, so that the engine's BatchNorm folding is really compared with the graph."""
    torch.manual_seed(0)
    network = build_architecture(name, ARCHITECTURES[name])
    norms = [module for module in network.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for norm in norms:
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.2, 0.2)
        side = 4 * network.size_multiple if network.size_multiple > 1 else 32
        network.train()
        for _ in range(3):
            network(0.5 * torch.rand(4, 1, side, side) + 0.3)
    for norm in norms:
        assert not torch.allclose(norm.running_var, torch.ones_like(norm.running_var))
    return network.eval()


def images_for(network: torch.nn.Module, count: int, rows: int, columns: int) -> np.ndarray:
    multiple = network.size_multiple
    rows, columns = -(-rows // multiple) * multiple, -(-columns // multiple) * multiple
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:rows, 0:columns] / max(rows, columns)
    smooth = 0.3 + 0.4 * np.sin(3 * y) * np.cos(2 * x)
    return (smooth + 0.05 * rng.standard_normal((count, rows, columns))).astype(np.float32)


def test_every_generator_family_is_covered():
    untested = {name for name in architecture_names() if name not in ARCHITECTURES}
    assert all(name.endswith("-discriminator") for name in untested), untested


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_graph_matches_the_engine_at_other_sizes(name, tmp_path):
    network = trained_looking(name)
    before = copy.deepcopy(network.state_dict())

    written = export_onnx(network, tmp_path / f"{name}.onnx")

    assert written == tmp_path / f"{name}.onnx"
    assert sorted(path.name for path in tmp_path.iterdir()) == [f"{name}.onnx"]  # no temporary left
    for key, value in network.state_dict().items():  # the caller's network is not folded or moved
        assert torch.equal(value, before[key]), key
    assert network.training is False
    model = onnx.load(str(written))
    onnx.checker.check_model(model, full_check=True)
    assert [node.name for node in model.graph.input] == [INPUT_NAME]

    # Images of a size neither the export (traced at 64x64) nor its own check (96x128) used, and smaller than
    # both; small enough that the engine runs them in one pass, so networks with global pooling or
    # InstanceNorm compare exactly too.
    images = images_for(network, 3, 48, 80)
    # float32 in the engine as in the graph (on a CPU with bfloat16, msdenoiser and fastsr would run in it).
    expected = NetworkEnhancer(copy.deepcopy(network), name, name, "test", CPU, False).run_normalised(images)
    session = onnxruntime.InferenceSession(str(written), providers=["CPUExecutionProvider"])
    produced = session.run([OUTPUT_NAME], {INPUT_NAME: images[:, None]})[0]

    scale = network.scale
    assert produced.shape == (3, 1, images.shape[1] * scale, images.shape[2] * scale)
    assert np.abs(produced[:, 0] - expected).max() <= 1e-4


def test_a_graph_that_differs_from_the_engine_is_refused_and_nothing_is_left(tmp_path, monkeypatch):
    network = trained_looking("dncnn")
    destination = tmp_path / "model.onnx"
    destination.write_bytes(b"an older export")
    original = NetworkEnhancer.run_normalised

    def off_by_a_little(self, images, *arguments, **keywords):
        return original(self, images, *arguments, **keywords) + 3e-4

    monkeypatch.setattr(NetworkEnhancer, "run_normalised", off_by_a_little)

    with pytest.raises(OnnxVerificationError) as raised:
        export_onnx(network, destination)

    message = str(raised.value)
    assert "\n" not in message and "0.0003" in message and "model.onnx" in message
    assert isinstance(raised.value, MedViewerError)
    assert destination.read_bytes() == b"an older export"  # the graph never replaced it
    assert [path.name for path in tmp_path.iterdir()] == ["model.onnx"]  # and its temporary file is gone


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_missing_packages_name_the_extra_to_install(missing, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, missing, None)  # `import missing` now raises ImportError

    with pytest.raises(OnnxExportError) as raised:
        export_onnx(build_architecture("srcnn", {"scale": 2}), tmp_path / "model.onnx")

    message = str(raised.value)
    assert "pip install medviewer[onnx]" in message and missing in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


class FrozenSize(torch.nn.Module):
    """Reshapes with Python ints taken from the input's shape: a trace freezes them at the example's size."""

    scale, in_channels, size_multiple, receptive_radius, half_precision_safe = 1, 1, 1, 0, True

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, images):
        rows, columns = int(images.shape[2]), int(images.shape[3])
        return (images * self.weight).reshape(-1, 1, rows, columns)


def test_a_graph_frozen_at_the_traced_size_is_refused(tmp_path):
    with pytest.raises(OnnxVerificationError, match=r"model.onnx: the ONNX graph gave shape \(6, 1, 64, 64\)"):
        export_onnx(FrozenSize(), tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []
