"""The architecture registry and the contract of every registered network (shapes, radius, cost, gradients)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from medviewer.errors import MedViewerError
from medviewer.models.architectures import (
    ArchitectureError,
    Discriminator,
    ImageNetwork,
    architecture_names,
    build_architecture,
)
from medviewer.models.srgan import FeatureLoss

# Small arguments for every registered name; a new architecture must add itself here.
SMALL_ARGUMENTS: dict[str, dict] = {
    "srcnn": {"scale": 2},
    "vdsr": {"scale": 2, "depth": 4, "width": 8},
    "srgan-cbam": {"scale": 4, "blocks": 2, "width": 16},
    "srgan-discriminator": {"width": 4},
    "dncnn": {"depth": 5, "width": 8},
    "unet": {"depth": 3, "width": 4},
    "patchgan-discriminator": {"width": 4},
    "dagan": {"depth": 3, "width": 4},
    "cyclegan-resnet": {"width": 4, "blocks": 2},
    "msdenoiser": {"widths": [4, 8, 16], "blocks": [1, 1, 1]},
    "fastsr": {"scale": 2, "widths": [4, 8, 16], "blocks": [1, 1, 1]},
}
GENERATORS = [name for name in SMALL_ARGUMENTS if "discriminator" not in name]
DISCRIMINATORS = [name for name in SMALL_ARGUMENTS if "discriminator" in name]

# Generators with a finite receptive radius, small enough to check it pixel by pixel.
FINITE_RADIUS = [
    ("srcnn", {"scale": 2}),
    ("srcnn", {"scale": 3}),
    ("vdsr", {"scale": 2, "depth": 4, "width": 4}),
    ("vdsr", {"scale": 3, "depth": 3, "width": 4}),
    ("srgan-cbam", {"scale": 2, "blocks": 1, "width": 4, "attention": False}),
    ("srgan-cbam", {"scale": 3, "blocks": 1, "width": 4, "attention": False}),
    ("srgan-cbam", {"scale": 4, "blocks": 1, "width": 4, "attention": False}),
    ("dncnn", {"depth": 5, "width": 4}),
    ("unet", {"depth": 3, "width": 2}),
    ("dagan", {"depth": 3, "width": 2}),
    ("msdenoiser", {"widths": [2, 4, 8]}),  # the default blocks, so the shipped radius itself is checked
    ("fastsr", {"scale": 2, "widths": [2, 4, 8]}),
    ("fastsr", {"scale": 3, "widths": [2, 4], "blocks": [1, 1]}),
    ("fastsr", {"scale": 4, "widths": [2, 4, 8]}),
]
# Generators whose receptive_radius is None, with the same network minus its global part (None if none).
GLOBAL = [
    ("srgan-cbam", {"scale": 2, "blocks": 1, "width": 16}, {"attention": False}),
    ("unet", {"depth": 3, "width": 2, "norm": "instance"}, {"norm": "batch"}),
    # c7 (3) + two stride-2 convs (1 + 2) + 2 blocks of two 3x3 convs at 1/4 (16) + two transposed convs
    # (1 + 2) + c7 (3): a local radius of about 28 pixels, far below the 95 between the two corners.
    ("cyclegan-resnet", {"width": 2, "blocks": 2}, None),
]


def _build(name: str, arguments: dict, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_architecture(name, arguments)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def test_every_registered_name_has_test_arguments():
    assert set(architecture_names()) == set(SMALL_ARGUMENTS)
    assert architecture_names() == sorted(architecture_names())


@pytest.mark.parametrize("name", GENERATORS)
def test_generators_keep_the_contract(name):
    network = _build(name, SMALL_ARGUMENTS[name])
    assert isinstance(network, ImageNetwork)
    assert isinstance(network.scale, int) and network.scale >= 1
    assert isinstance(network.size_multiple, int) and network.size_multiple >= 1
    assert network.receptive_radius is None or (
        isinstance(network.receptive_radius, int) and network.receptive_radius >= 0
    )
    assert isinstance(network.half_precision_safe, bool)
    assert network.parameter_count() == sum(parameter.numel() for parameter in network.parameters())


@pytest.mark.parametrize(
    ("name", "arguments"),
    [(name, SMALL_ARGUMENTS[name]) for name in GENERATORS]
    + [
        ("srcnn", {"scale": 3, "channels": 3}),
        ("vdsr", {"scale": 3, "depth": 3, "width": 4}),
        ("srgan-cbam", {"scale": 2, "blocks": 1, "width": 4}),
        ("srgan-cbam", {"scale": 3, "blocks": 1, "width": 4}),
        ("cyclegan-resnet", {"in_channels": 1, "out_channels": 3, "width": 2, "blocks": 1}),
    ],
)
def test_output_is_exactly_scale_times_the_input(name, arguments):
    network = _build(name, arguments).eval()
    height, width = 2 * max(16, network.size_multiple), 3 * max(16, network.size_multiple)  # not square
    images = torch.rand(2, network.in_channels, height, width)
    with torch.no_grad():
        output = network(images)
    assert output.shape == (2, network.out_channels, height * network.scale, width * network.scale)
    assert output.dtype == torch.float32
    assert torch.isfinite(output).all()


def test_input_not_a_size_multiple_is_refused():
    network = _build("msdenoiser", SMALL_ARGUMENTS["msdenoiser"])
    with pytest.raises(ValueError, match="multiple of 8"):
        network(torch.rand(1, 1, 36, 40))


@pytest.mark.parametrize("name", DISCRIMINATORS)
def test_discriminators_give_finite_logits(name):
    network = _build(name, SMALL_ARGUMENTS[name]).eval()
    assert isinstance(network, Discriminator)
    with torch.no_grad():
        logits = network(torch.rand(2, 1, 64, 64))
    assert logits.shape[:2] == (2, 1)
    assert torch.isfinite(logits).all()


def test_patchgan_gives_pix2pix_patch_map():
    # pix2pix's 70x70 PatchGAN maps a 256x256 image to 30x30 logits.
    network = _build("patchgan-discriminator", {"width": 2}).eval()
    with torch.no_grad():
        assert network(torch.rand(1, 1, 256, 256)).shape == (1, 1, 30, 30)


def test_unknown_name_raises_architecture_error():
    with pytest.raises(ArchitectureError, match="unknown architecture 'esrgan'.*srcnn"):
        build_architecture("esrgan", {"scale": 4})
    assert issubclass(ArchitectureError, MedViewerError)


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("srcnn", {}),  # scale is required
        ("srcnn", {"scale": 2, "colour": 3}),
        ("vdsr", {"scale": "2"}),
        ("vdsr", {"scale": 0}),
        ("srgan-cbam", {"scale": 5}),
        ("srgan-cbam", {"scale": 2, "attention": "yes"}),
        ("unet", {"norm": "group"}),
        ("msdenoiser", {"widths": [8, 16], "blocks": [1]}),
        ("dncnn", [17, 64]),
    ],
)
def test_bad_arguments_raise_one_line_architecture_error(name, arguments):
    with pytest.raises(ArchitectureError) as raised:
        build_architecture(name, arguments)
    message = str(raised.value)
    assert name in message and "\n" not in message


def test_parameter_counts_match_hand_counts():
    # SRCNN 9-1-5: 9*9*C*64 + 64, 1*1*64*32 + 32, 5*5*32*C + C.
    assert (
        _build("srcnn", {"scale": 2}).parameter_count() == 9 * 9 * 1 * 64 + 64 + 64 * 32 + 32 + 5 * 5 * 32 + 1 == 8129
    )
    assert _build("srcnn", {"scale": 2, "channels": 3}).parameter_count() == 15552 + 64 + 2048 + 32 + 2400 + 3
    # VDSR: 3x3 1->64, 18 x 3x3 64->64, 3x3 64->1, all with biases.
    vdsr = 3 * 3 * 64 + 64 + 18 * (3 * 3 * 64 * 64 + 64) + 3 * 3 * 64 + 1
    assert _build("vdsr", {"scale": 2}).parameter_count() == vdsr == 665921
    # DnCNN: 3x3 1->64 + bias, 15 x (3x3 64->64 + BN scale and shift), 3x3 64->1.
    dncnn = 3 * 3 * 64 + 64 + 15 * (3 * 3 * 64 * 64 + 2 * 64) + 3 * 3 * 64
    assert _build("dncnn", {}).parameter_count() == dncnn == 556096


def test_parameter_counts_match_the_authors_pytorch_release():
    # pytorch-CycleGAN-and-pix2pix prints these (in millions, 3 decimals) for RGB: unet_256 54.414 M,
    # resnet_9blocks 11.378 M, the pix2pix basic (70x70) discriminator on 6 channels 2.769 M.
    with torch.device("meta"):
        counts = [
            build_architecture("unet", {"depth": 8, "channels": 3}).parameter_count(),
            build_architecture("cyclegan-resnet", {"in_channels": 3, "out_channels": 3}).parameter_count(),
            build_architecture("patchgan-discriminator", {"in_channels": 6}).parameter_count(),
        ]
    assert [round(count / 1e3) for count in counts] == [54414, 11378, 2769]


def _changed_extents(network: ImageNetwork) -> list[int]:
    """For each input phase modulo size_multiple: perturb one pixel, return how many input cells away (the
    Chebyshev distance from the pixel to an output pixel's cell) the farthest changed output lies."""
    radius, multiple, scale = network.receptive_radius, network.size_multiple, network.scale
    assert radius is not None
    center = _round_up(radius + 2, multiple)  # perturbed pixels: center .. center + multiple - 1, with margin
    side = _round_up(center + multiple + radius + 2, multiple)
    generator = torch.Generator().manual_seed(1)
    base = torch.rand(1, network.in_channels, side, side, dtype=torch.float64, generator=generator)
    network = network.double().eval()
    with torch.no_grad():  # as if trained: a layer that starts at zero (VDSR's last) would hide every path
        for parameter in network.parameters():
            if not parameter.any():
                parameter.normal_(0.0, 0.1, generator=generator)
    # One image per pass, all of one shape: the same kernels run the same arithmetic on every pass, so outputs
    # the perturbation cannot reach are bit-identical (images batched together may be summed in another order).
    with torch.no_grad():
        reference = network(base)
    extents = []
    for phase in range(multiple):
        perturbed = base.clone()
        perturbed[:, :, center + phase, center + phase] += 1.0
        with torch.no_grad():
            changed = (network(perturbed) != reference)[0].any(dim=0)
        rows, columns = torch.nonzero(changed, as_tuple=True)
        pixel = center + phase
        distances = torch.maximum((rows // scale - pixel).abs(), (columns // scale - pixel).abs())
        extents.append(int(distances.max()))
    return extents


@pytest.mark.parametrize(("name", "arguments"), FINITE_RADIUS)
def test_receptive_radius_is_never_underestimated_and_tight(name, arguments):
    network = _build(name, arguments)
    extents = _changed_extents(network)
    assert max(extents) <= network.receptive_radius  # underestimating would break exact tiling
    assert max(extents) >= network.receptive_radius - 1  # only the bicubic rule counts one spare pixel


@pytest.mark.parametrize(("name", "arguments", "local_change"), GLOBAL)
def test_unbounded_networks_depend_on_far_pixels(name, arguments, local_change):
    network = _build(name, arguments).eval()
    assert network.receptive_radius is None
    side = 96
    if local_change is not None:  # the same network without its global part is local, and its radius is short
        local_radius = _build(name, {**arguments, **local_change}).receptive_radius
        assert local_radius is not None and local_radius < side - 1
    images = torch.rand(1, network.in_channels, side, side, dtype=torch.float64).repeat(2, 1, 1, 1)
    images[1, :, 0, 0] += 1.0
    with torch.no_grad():
        output = network.double()(images)
    corner = network.scale  # the output pixels of the input pixel in the far corner
    assert (output[1, :, -corner:, -corner:] != output[0, :, -corner:, -corner:]).any()


def test_default_radii_and_multiples():
    # The numbers the engine will use for the shipped configurations; the small configurations above check
    # the arithmetic that produced them against the networks themselves.
    with torch.device("meta"):
        found = {
            name: (network.receptive_radius, network.size_multiple, network.half_precision_safe)
            for name, network in (
                ("srcnn", build_architecture("srcnn", {"scale": 2})),
                ("vdsr", build_architecture("vdsr", {"scale": 2})),
                ("srgan-cbam", build_architecture("srgan-cbam", {"scale": 4})),
                ("dncnn", build_architecture("dncnn", {})),
                ("unet", build_architecture("unet", {})),
                ("dagan", build_architecture("dagan", {})),
                ("cyclegan-resnet", build_architecture("cyclegan-resnet", {})),
                ("msdenoiser", build_architecture("msdenoiser", {})),
                ("fastsr", build_architecture("fastsr", {"scale": 2})),
            )
        }
    assert found == {
        "srcnn": (5, 1, True),
        "vdsr": (12, 1, True),
        "srgan-cbam": (None, 1, True),
        "dncnn": (17, 1, True),
        "unet": (189, 64, True),
        "dagan": (189, 64, True),
        "cyclegan-resnet": (None, 4, False),
        "msdenoiser": (123, 8, True),
        "fastsr": (61, 4, True),
    }


@pytest.mark.parametrize("name", list(SMALL_ARGUMENTS))
def test_gradients_reach_every_parameter_in_train_mode(name):
    network = _build(name, SMALL_ARGUMENTS[name]).train()
    side = max(32, getattr(network, "size_multiple", 1) * 4)
    images = torch.rand(2, network.in_channels, side, side)
    network(images).square().mean().backward()
    for parameter_name, parameter in network.named_parameters():
        assert parameter.grad is not None, parameter_name
        assert torch.isfinite(parameter.grad).all(), parameter_name
    assert any(parameter.grad.abs().sum() > 0 for parameter in network.parameters())


@pytest.mark.parametrize("name", [name for name in GENERATORS if name != "cyclegan-resnet"])
def test_float16_eval_is_finite_where_declared_safe(name):
    network = _build(name, SMALL_ARGUMENTS[name]).eval()
    assert network.half_precision_safe
    images = torch.rand(1, network.in_channels, 32, 32)
    try:
        with torch.no_grad():
            output = network.half()(images.half())
    except (RuntimeError, NotImplementedError) as error:  # some CPU builds lack float16 kernels
        pytest.skip(f"float16 not supported here: {error}")
    assert torch.isfinite(output).all()


def test_msdenoiser_costs_at_most_40_gflop_per_512_slice():
    # Shapes alone decide the count, so the meta device counts a 512x512 pass without computing it.
    with torch.device("meta"):
        network = build_architecture("msdenoiser", {})
        with FlopCounterMode(display=False) as counter:
            network(torch.zeros(1, 1, 512, 512))
    gigaflops = counter.get_total_flops() / 1e9
    assert 20 < gigaflops <= 40


@pytest.mark.parametrize("scale", [2, 4])
def test_fastsr_costs_at_most_a_tenth_of_vdsr(scale):
    # The budget: the default super-resolution network at 1/10 of VDSR's FLOPs or less, per input.
    def gigaflops(name: str) -> float:
        with torch.device("meta"):
            network = build_architecture(name, {"scale": scale})
            with FlopCounterMode(display=False) as counter:
                network(torch.zeros(1, 1, 512, 512))
        return counter.get_total_flops() / 1e9

    assert gigaflops("fastsr") <= gigaflops("vdsr") / 10


@pytest.mark.parametrize("name", list(SMALL_ARGUMENTS))
def test_same_seed_same_network_same_output(name):
    first, second = (
        _build(name, SMALL_ARGUMENTS[name], seed=7).eval(),
        _build(name, SMALL_ARGUMENTS[name], seed=7).eval(),
    )
    images = torch.rand(1, first.in_channels, 32, 32)
    with torch.no_grad():
        assert torch.equal(first(images), second(images))
    other = _build(name, SMALL_ARGUMENTS[name], seed=8)
    assert any(
        not torch.equal(mine, theirs) for mine, theirs in zip(first.parameters(), other.parameters(), strict=True)
    )


def test_feature_loss_freezes_the_extractor_and_trains_the_output():
    extractor = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    loss = FeatureLoss(extractor).train()
    assert not extractor.training and not any(parameter.requires_grad for parameter in extractor.parameters())
    target = torch.rand(1, 1, 16, 16)
    output = target.clone().requires_grad_(True)
    assert loss(output, target).item() == 0.0
    moved = (target + 0.1 * torch.rand(1, 1, 16, 16)).requires_grad_(True)
    value = loss(moved, target)
    value.backward()
    assert value.item() > 0 and moved.grad is not None and moved.grad.abs().sum() > 0
    assert all(parameter.grad is None for parameter in extractor.parameters())


def test_vdsr_starts_at_bicubic_and_keeps_its_signal_through_twenty_layers():
    """He initialisation: PyTorch's default shrinks the variance ~6x per ReLU layer, so a 20-layer VDSR's last
    hidden features vanish, its gradients with them, and it never leaves bicubic (seen: flat loss for 800 steps)."""
    torch.manual_seed(0)
    network = build_architecture("vdsr", {"scale": 2})
    image = torch.rand(1, 1, 32, 32)
    upsampled = torch.nn.functional.interpolate(image, scale_factor=2, mode="bicubic", align_corners=False)
    with torch.no_grad():
        assert torch.equal(network(image), upsampled)
        hidden = network.residual[:-1](upsampled)
    assert 0.3 < float(hidden.std() / upsampled.std()) < 3.0
