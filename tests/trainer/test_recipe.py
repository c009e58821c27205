"""Recipes read strictly: every key known and typed, overrides by key=value, a resolved copy that reads back
equal; a perceptual loss only with a stated feature network, never random weights."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from medviewer.models.feature_networks import VGG19Features
from trainer.losses import PerceptualNetworkError, load_vgg19
from trainer.recipe import RecipeError, load_recipe, recipe_from_table, shipped_recipes
from trainer.schedule import learning_rate_factor


@pytest.mark.parametrize("name", sorted(shipped_recipes()))
def test_every_shipped_recipe_loads_and_round_trips(name, tmp_path):
    recipe = load_recipe(shipped_recipes()[name])
    assert recipe.recipe.name and recipe.recipe.description
    copy = tmp_path / "copy.toml"
    copy.write_text(recipe.to_toml())
    assert load_recipe(copy) == recipe


@pytest.mark.parametrize("name", ["pix2pix-denoiser", "dagan-denoiser"])
def test_gan_denoisers_pretrain_and_judge_with_instance_norm(name):
    """A BatchNorm discriminator over a joint real + generated batch separates them by batch statistics, and
    the generator it trained was worse than its noisy input in eval mode; the pixel loss comes first."""
    recipe = load_recipe(shipped_recipes()[name])
    assert recipe.discriminator.arguments.get("norm") == "instance"
    assert 0 < recipe.run.pretrain_steps < recipe.run.steps


def test_overrides_take_bare_or_dotted_keys_and_typed_values():
    recipe = load_recipe(
        shipped_recipes()["msdenoiser"],
        [
            "steps=200",
            "batch=8",
            "optimiser.lr=1e-4",
            "betas=[0.5, 0.9]",
            "degradation=noise:10-20",
            "model.arguments={widths=[8,16],blocks=[1,1]}",
            "validate_every=5",
        ],
    )
    assert recipe.run.steps == 200 and recipe.data.batch == 8 and recipe.optimiser.lr == 1e-4
    assert recipe.optimiser.betas == [0.5, 0.9] and recipe.data.degradation == "noise:10-20"
    assert recipe.model.arguments == {"widths": [8, 16], "blocks": [1, 1]}
    assert isinstance(load_recipe(shipped_recipes()["msdenoiser"], ["lr=1"]).optimiser.lr, float)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["arguments={}"], "ambiguous; use one of model.arguments, discriminator.arguments"),
        (["run.stepz=3"], "unknown recipe key"),
        (["batch=8.5"], "data.batch must be an integer"),
        (["steps=true"], "run.steps must be an integer"),
        (["pixel=l3"], "loss.pixel 'l3'"),
        (["schedule=exp"], "optimiser.schedule"),
        (["ema_decay=1"], "ema_decay"),
        (["val_fraction=0.6", "test_fraction=0.5"], "leave series for training"),
        (["degradation=sr:2", 'val_degradations=["sr:4"]'], "training scale x2"),
        (["degradation=sr:2", 'val_degradations=["sr:2"]', "patch=63"], "multiple of the sr scale"),
        (["perceptual_weight=0.1"], "never used"),
        (["perceptual_weight=0.1", "perceptual_network=vgg19"], "local VGG19 safetensors"),
        (
            ["perceptual_weight=0.1", "perceptual_network=vgg19", "perceptual_weights=/no/such.safetensors"],
            "is not a file",
        ),
        (["pairing=unpaired"], "paradigm = 'cycle'"),
        (["amount_exponent=0"], "data.amount_exponent must be >= 0.1"),
        (["noise_maps=1.5"], "data.noise_maps is a fraction"),
        (["precision=float16"], "run.precision 'float16' must be one of auto, float32, bfloat16"),
    ],
)
def test_bad_overrides_name_the_key(overrides, message):
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_recipe(shipped_recipes()["msdenoiser"], overrides)


def test_unknown_keys_and_sections_in_a_file_are_refused():
    with pytest.raises(RecipeError, match="unknown key data.patches; did you mean patch"):
        recipe_from_table({"data": {"patches": 3}}, [])
    with pytest.raises(RecipeError, match=r"unknown section \[dta\]"):
        recipe_from_table({"dta": {}}, [])


def test_schedules():
    recipe = load_recipe(shipped_recipes()["msdenoiser"], ["warmup_steps=10", "min_lr_ratio=0.01"])
    factors = [learning_rate_factor(recipe.optimiser, step, 110) for step in range(110)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0) and factors[60] == pytest.approx(0.505) and factors[-1] < 0.02
    stepped = load_recipe(shipped_recipes()["dncnn"], ["warmup_steps=0", "milestones=[0.5, 0.8]"]).optimiser
    assert [learning_rate_factor(stepped, step, 100) for step in (0, 49, 50, 79, 80)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01]
    )
    linear = load_recipe(shipped_recipes()["cyclegan-xray-ct"]).optimiser
    assert [learning_rate_factor(linear, step, 100) for step in (0, 50, 75, 100)] == pytest.approx([1, 1, 0.5, 0])


def test_vgg19_weights_load_from_a_local_file_in_torchvision_names(tmp_path):
    reference = VGG19Features()
    for parameter in reference.parameters():
        torch.nn.init.normal_(parameter, std=0.01)
    tensors = {name: tensor.contiguous() for name, tensor in reference.state_dict().items()}
    tensors["classifier.0.weight"] = torch.zeros(2, 2)  # a full torchvision VGG19 file has more than we use
    save_file(tensors, tmp_path / "vgg19.safetensors")
    loaded = load_vgg19(tmp_path / "vgg19.safetensors")
    image = torch.rand(1, 1, 32, 32)
    assert torch.equal(loaded(image), reference.eval()(image))
    assert not any(parameter.requires_grad for parameter in loaded.parameters())
    del tensors["features.34.weight"]
    save_file(tensors, tmp_path / "broken.safetensors")
    with pytest.raises(PerceptualNetworkError, match="features.34.weight is missing"):
        load_vgg19(tmp_path / "broken.safetensors")


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_bf16_autocast_is_chosen_on_a_gpu_only():
    """No GPU here or in CI: check the choice itself (by default bf16 autocast on CUDA, nothing on the CPU)."""
    import contextlib

    from trainer.losses import pixel_loss
    from trainer.state import TrainingState

    network = torch.nn.Conv2d(1, 1, 3)
    recipe = load_recipe(shipped_recipes()["msdenoiser"])

    def state(device: str) -> TrainingState:
        return TrainingState(
            recipe=recipe,
            device=torch.device(device),
            networks={"generator": network},
            forward={"generator": network},
            optimisers={},
            parameters_of={},
            generators=("generator",),
            pixel=pixel_loss("l1"),
        )

    assert isinstance(state("cpu").autocast(), contextlib.nullcontext)
    gpu = state("cuda").autocast()
    assert isinstance(gpu, torch.autocast) and gpu.fast_dtype == torch.bfloat16 and gpu.device == "cuda"


def test_run_precision_bfloat16_autocasts_on_the_cpu_and_float32_never():
    """CPU bf16 is opt-in (`run.precision = "bfloat16"`): 3.4x faster where the CPU has AMX, slower elsewhere."""
    from trainer.state import autocast_bfloat16

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert not autocast_bfloat16("auto", cpu) and autocast_bfloat16("auto", gpu)
    assert autocast_bfloat16("bfloat16", cpu) and autocast_bfloat16("bfloat16", gpu)
    assert not autocast_bfloat16("float32", cpu) and not autocast_bfloat16("float32", gpu)
    assert load_recipe(shipped_recipes()["msdenoiser"], ["precision=bfloat16"]).run.precision == "bfloat16"


@pytest.mark.parametrize("native", [True, False])
def test_run_precision_native_follows_the_hardware(native, monkeypatch):
    """ "native": bfloat16 on a GPU and on a CPU that computes it (AMX / AVX512-BF16), float32 on any other CPU,
    so the two-hour recipe is fast where it can be and never slowed by emulated bfloat16."""
    import trainer.state
    from trainer.state import autocast_bfloat16

    monkeypatch.setattr(trainer.state, "cpu_has_native_bfloat16", lambda: native)
    assert autocast_bfloat16("native", torch.device("cpu")) is native
    assert autocast_bfloat16("native", torch.device("cuda"))
    assert load_recipe(shipped_recipes()["msdenoiser-two-hours"]).run.precision == "native"
