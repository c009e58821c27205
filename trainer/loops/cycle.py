"""CycleGAN (Zhu et al. 2017): unpaired translation A -> B and back, two generators, two discriminators.

Generator loss: LSGAN terms for both directions + `cycle_weight` x (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|)
+ `identity_weight` x (|G_AB(b) - b| + |G_BA(a) - a|); one Adam over both generators and one over both
discriminators, which see generated images through image pools, as the authors' release does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trainer.state import TrainingState, frozen

GENERATORS = ("generator_ab", "generator_ba")
OPTIMISERS = {"generators": ("generator_ab", "generator_ba"), "discriminators": ("discriminator_a", "discriminator_b")}


def networks(recipe, build_generator, build_discriminator) -> dict:
    arguments = dict(recipe.discriminator.arguments)
    arguments.setdefault("in_channels", 1)
    return {
        "generator_ab": build_generator(recipe.model.architecture, recipe.model.arguments),
        "generator_ba": build_generator(recipe.model.architecture, recipe.model.arguments),
        "discriminator_a": build_discriminator(recipe.discriminator.architecture, arguments),
        "discriminator_b": build_discriminator(recipe.discriminator.architecture, arguments),
    }


def step(state: TrainingState, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    a, b = batch["a"], batch["b"]
    loss = state.recipe.loss
    forward = state.forward
    with state.autocast():
        fake_b = forward["generator_ab"](a).float()
        fake_a = forward["generator_ba"](b).float()
        rebuilt_a = forward["generator_ba"](fake_b).float()
        rebuilt_b = forward["generator_ab"](fake_a).float()
    terms = {"cycle": loss.cycle_weight * (F.l1_loss(rebuilt_a, a) + F.l1_loss(rebuilt_b, b))}
    if loss.identity_weight > 0:
        with state.autocast():
            same_b = forward["generator_ab"](b).float()
            same_a = forward["generator_ba"](a).float()
        terms["identity"] = loss.identity_weight * (F.l1_loss(same_b, b) + F.l1_loss(same_a, a))
    with (
        frozen(state.networks["discriminator_a"]) as judge_a,
        frozen(state.networks["discriminator_b"]) as judge_b,
        state.autocast(),
    ):
        terms["adversarial"] = loss.adversarial_weight * (
            state.adversarial(judge_b(fake_b).float(), True) + state.adversarial(judge_a(fake_a).float(), True)
        )
    total = sum(terms.values())
    state.update("generators", total)

    shown_a, shown_b = state.pools["a"].query(fake_a), state.pools["b"].query(fake_b)
    with state.autocast():
        logits_a = forward["discriminator_a"](torch.cat([a, shown_a])).float()
        logits_b = forward["discriminator_b"](torch.cat([b, shown_b])).float()
    discriminator_loss = 0.0
    for logits in (logits_a, logits_b):
        real, fake = logits.chunk(2)
        discriminator_loss = discriminator_loss + 0.5 * (state.adversarial(real, True) + state.adversarial(fake, False))
    state.update("discriminators", discriminator_loss)
    losses = {"loss": float(total.detach()), "discriminator": float(discriminator_loss.detach())}
    losses.update({name: float(value.detach()) for name, value in terms.items()})
    return losses
