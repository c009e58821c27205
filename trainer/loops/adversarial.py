"""GAN training with a paired target (SRGAN, pix2pix, DAGAN): a generator and a discriminator.

The first `run.pretrain_steps` train the generator on the pixel loss alone (SRGAN starts from SRResNet
this way); then each step updates the discriminator on real and generated images, and the generator on its
content losses plus the adversarial term. pix2pix's discriminator is conditional: it judges the generator's
input and output together (for super-resolution, the input upsampled to the output's size).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainer.state import TrainingState, frozen

GENERATORS = ("generator",)
OPTIMISERS = {"generator": ("generator",), "discriminator": ("discriminator",)}


def networks(recipe, build_generator, build_discriminator) -> dict:
    generator = build_generator(recipe.model.architecture, recipe.model.arguments)
    arguments = dict(recipe.discriminator.arguments)
    channels = generator.out_channels + (generator.in_channels if recipe.discriminator.conditional else 0)
    arguments.setdefault("in_channels", channels)
    return {"generator": generator, "discriminator": build_discriminator(recipe.discriminator.architecture, arguments)}


def _judged(state: TrainingState, degraded: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    if not state.recipe.discriminator.conditional:
        return images
    if degraded.shape[-2:] != images.shape[-2:]:
        degraded = F.interpolate(degraded, size=images.shape[-2:], mode="bicubic", align_corners=False)
    return torch.cat([degraded, images], dim=1)


def step(state: TrainingState, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    degraded, target = batch["input"], batch["target"]
    with state.autocast():
        output = state.forward["generator"](degraded)
    output = output.float()
    if state.step < state.recipe.run.pretrain_steps:  # SRResNet: the pixel loss alone, as SRGAN pre-trains
        terms = {"pixel": state.recipe.loss.pixel_weight * state.pixel(output, target)}
        total = sum(terms.values())
        state.update("generator", total)
        return {"loss": float(total.detach()), **{name: float(value.detach()) for name, value in terms.items()}}

    terms = state.content_losses(output, target)
    adversarial = state.adversarial
    # The discriminator sees real and generated images in one batch (one forward per update, which
    # DistributedDataParallel needs; its BatchNorm statistics are those of the joint batch).
    real, fake = _judged(state, degraded, target), _judged(state, degraded, output.detach())
    with state.autocast():
        logits = state.forward["discriminator"](torch.cat([real, fake])).float()
    real_logits, fake_logits = logits.chunk(2)
    discriminator_loss = 0.5 * (adversarial(real_logits, True) + adversarial(fake_logits, False))
    state.update("discriminator", discriminator_loss)

    with frozen(state.networks["discriminator"]) as discriminator, state.autocast():
        fooled = adversarial(discriminator(_judged(state, degraded, output)).float(), True)
    terms["adversarial"] = state.recipe.loss.adversarial_weight * fooled
    total = sum(terms.values())
    state.update("generator", total)
    losses = {"loss": float(total.detach()), "discriminator": float(discriminator_loss.detach())}
    losses.update({name: float(value.detach()) for name, value in terms.items()})
    return losses
