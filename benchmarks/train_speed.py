"""Training throughput per shipped recipe: the trainer's own runs against a bare PyTorch loop on the same networks.

Run: .venv/bin/python benchmarks/train_speed.py [--recipes msdenoiser dncnn ...] [--device cpu|cuda]
     [--seconds 25] [--steps N] [--windows 6] [--repeats 3] [--malloc-fix]
     [--set data.workers=0 ...]

For each recipe, at its own patch size, batch and networks:
- bare loop: in this process, the networks built with `build_architecture` run forward + backward + optimiser
  step on ONE pre-built random batch, computing what a step of `trainer/loops/<paradigm>.py` computes (content
  losses, gradient clipping, EMA; the discriminator update and the generator's adversarial term; CycleGAN's
  two generators, identity terms and two discriminators) with no data loading, logging or checkpoints;
- trainer: a real short run, `python -m trainer run RECIPE` in a subprocess on a folder of generated phantoms,
  read from its JSON "step" events (`patches_per_second` of each log window; the first window, which holds
  the DataLoader workers' start-up, is skipped). Validation and checkpoints are pushed past the end of the run,
  where they come after the last step event;
- GFLOP of one training step, counted by `torch.utils.flop_counter.FlopCounterMode` (forward and backward of
  every network: convolutions and matrix products), divided by each one's step time for GFLOP/s;
- data: the CPU time `PatchDataset` takes to draw one batch in this process, single-threaded, which on a
  machine with few cores the DataLoader workers take from the training threads.
Both are timed in windows of the same number of steps (the trainer's log windows), alternately: bare
windows, a trainer run, bare windows, a trainer run, ... (`--repeats` 3). The table gives the best window of
each, the least disturbed one (as timeit's minimum): this machine's two cores are shared with other jobs, some
not even visible to `top`, which took one trainer run from 100 to 3 patches/s between two of its windows, so
means measure the neighbours more than the code.
Both processes tell glibc's malloc to keep the memory they free (`trainer.memory.keep_freed_memory`, which the
trainer calls at start on the CPU); by default it hands a large freed block back to the kernel and the next
step faults it in again, zeroed, which cost srcnn-x2 and vdsr-x2 about 45% of their speed in a fresh process
(this benchmark found it: the trainer ran at 0.53 and 0.62 of the bare loop before the fix).
`--malloc-fix` adds a column: the trainer run with the same setting through MALLOC_* environment variables.
Every run of both gets the same overrides: `run.pretrain_steps=0` (an adversarial recipe is timed in its GAN
phase, which the bare loop computes), `loss.perceptual_pretrain_steps=1` (the self-trained feature network's
pre-training comes before the first step and only delays the run) and `data.val_images=1`; plus `--set`'s.
The Markdown table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # for tests.trainer.phantoms

from medviewer.models.architectures import build_architecture  # noqa: E402
from medviewer.models.feature_networks import SmallFeatureEncoder, VGG19Features  # noqa: E402
from medviewer.models.srgan import FeatureLoss  # noqa: E402
from tests.trainer.phantoms import write_folder  # noqa: E402
from trainer import data  # noqa: E402
from trainer.losses import AdversarialLoss, frequency_loss, pixel_loss  # noqa: E402
from trainer.memory import keep_freed_memory  # noqa: E402
from trainer.recipe import Recipe, load_recipe, shipped_recipes  # noqa: E402

BENCHMARK_OVERRIDES = ["run.pretrain_steps=0", "loss.perceptual_pretrain_steps=1", "data.val_images=1"]
NEVER = 10**9  # validate_every / checkpoint_every past the end of any benchmark run
IMAGE_SIZE = 160  # phantom side: room for the largest patch (96, plus the SR margin)
IMAGE_COUNT = 8
# The same allocator setting as trainer.memory.keep_freed_memory, for a child process (--malloc-fix): since the
# trainer applies it itself, that column now only confirms it.
KEEP_FREED_MEMORY_ENVIRONMENT = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**36)}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the bare loop ---------------------------------------------------------------------------------------------


class _Pool:
    """CycleGAN's image pool as `trainer.state.ImagePool` draws it: half the fakes swapped for stored ones."""

    def __init__(self, size: int, seed: int):
        self.size, self.images = size, []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        chosen = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.cpu().clone())
                chosen.append(image)
            elif torch.rand((), generator=self.generator).item() < 0.5:
                slot = int(torch.randint(len(self.images), (), generator=self.generator))
                chosen.append(self.images[slot].to(images.device))
                self.images[slot] = image.cpu().clone()
            else:
                chosen.append(image)
        return torch.stack(chosen)


class BareLoop:
    """The networks, optimisers and losses of one recipe, and a `step` that computes what the trainer's loop
    computes for a batch, without the trainer: one fixed batch, no DataLoader, no events."""

    def __init__(self, recipe: Recipe, device: torch.device):
        torch.manual_seed(recipe.run.seed)
        self.recipe, self.device = recipe, device
        self.paradigm = recipe.recipe.paradigm
        self.cuda = device.type == "cuda"
        model, loss = recipe.model, recipe.loss
        generators = ["generator"] if self.paradigm != "cycle" else ["generator_ab", "generator_ba"]
        self.networks: dict[str, nn.Module] = {
            name: build_architecture(model.architecture, model.arguments) for name in generators
        }
        first = self.networks[generators[0]]
        if self.paradigm == "adversarial":
            arguments = dict(recipe.discriminator.arguments)
            conditional = recipe.discriminator.conditional
            arguments.setdefault("in_channels", first.out_channels + (first.in_channels if conditional else 0))
            self.networks["discriminator"] = build_architecture(recipe.discriminator.architecture, arguments)
        elif self.paradigm == "cycle":
            arguments = dict(recipe.discriminator.arguments)
            arguments.setdefault("in_channels", 1)
            for name in ("discriminator_a", "discriminator_b"):
                self.networks[name] = build_architecture(recipe.discriminator.architecture, arguments)
        for network in self.networks.values():
            network.to(device).train()
            if self.cuda:
                network.to(memory_format=torch.channels_last)
        groups = {
            "supervised": {"generator": ["generator"]},
            "adversarial": {"generator": ["generator"], "discriminator": ["discriminator"]},
            "cycle": {
                "generators": ["generator_ab", "generator_ba"],
                "discriminators": ["discriminator_a", "discriminator_b"],
            },
        }[self.paradigm]
        self.parameters = {
            group: [p for member in members for p in self.networks[member].parameters()]
            for group, members in groups.items()
        }
        settings = recipe.optimiser
        kind = torch.optim.AdamW if settings.name == "adamw" else torch.optim.Adam
        self.optimisers = {}
        for group, parameters in self.parameters.items():
            discriminator = "discriminator" in group
            lr = (
                recipe.discriminator.learning_rate
                if discriminator and recipe.discriminator.learning_rate > 0
                else settings.lr
            )
            self.optimisers[group] = kind(
                parameters, lr=lr, betas=tuple(settings.betas), weight_decay=settings.weight_decay
            )
        self.ema = {
            name: copy.deepcopy(self.networks[name]).eval().requires_grad_(False)
            for name in generators
            if settings.ema_decay > 0
        }
        self.pixel = pixel_loss(loss.pixel)
        self.adversarial = AdversarialLoss(loss.adversarial) if loss.adversarial != "none" else None
        self.perceptual = None
        if loss.perceptual_weight > 0:
            # The trainer pre-trains its feature network first; weights do not change the cost of a step.
            extractor = VGG19Features() if loss.perceptual_network == "vgg19" else SmallFeatureEncoder()
            self.perceptual = FeatureLoss(extractor.to(device)).to(device)
        self.pools = {"a": _Pool(loss.image_pool, 1), "b": _Pool(loss.image_pool, 2)}
        self.batch = random_batch(recipe, device)
        self.steps_done = 0

    @property
    def patches_per_step(self) -> int:
        return self.recipe.data.batch

    def _autocast(self):
        if self.cuda:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _update(self, group: str, loss: torch.Tensor) -> None:
        optimiser = self.optimisers[group]
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if self.recipe.optimiser.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.parameters[group], self.recipe.optimiser.grad_clip)
        optimiser.step()

    def _update_ema(self) -> None:
        if not self.ema:
            return
        decay = min(self.recipe.optimiser.ema_decay, (1 + self.steps_done) / (10 + self.steps_done))
        with torch.no_grad():
            for name, average in self.ema.items():
                live = self.networks[name]
                for mine, theirs in zip(average.parameters(), live.parameters(), strict=True):
                    mine.lerp_(theirs.detach(), 1 - decay)
                for mine, theirs in zip(average.buffers(), live.buffers(), strict=True):
                    mine.copy_(theirs)

    def _content(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = self.recipe.loss
        terms = {"pixel": loss.pixel_weight * self.pixel(output, target)}
        if self.perceptual is not None:
            terms["perceptual"] = loss.perceptual_weight * self.perceptual(output, target)
        if loss.frequency_weight > 0:
            terms["frequency"] = loss.frequency_weight * frequency_loss(output, target)
        return terms

    def step(self) -> None:
        if self.paradigm == "supervised":
            terms = self._supervised()
        elif self.paradigm == "adversarial":
            terms = self._adversarial()
        else:
            terms = self._cycle()
        self.steps_done += 1
        self._update_ema()
        for value in terms.values():  # the loops report every term as a float: one device sync each
            float(value.detach())

    def _supervised(self) -> dict[str, torch.Tensor]:
        degraded, target = self.batch["input"], self.batch["target"]
        with self._autocast():
            output = self.networks["generator"](degraded)
        terms = self._content(output.float(), target)
        total = sum(terms.values())
        self._update("generator", total)
        return {"loss": total, **terms}

    def _judged(self, degraded: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        if not self.recipe.discriminator.conditional:
            return images
        if degraded.shape[-2:] != images.shape[-2:]:
            degraded = F.interpolate(degraded, size=images.shape[-2:], mode="bicubic", align_corners=False)
        return torch.cat([degraded, images], dim=1)

    def _adversarial(self) -> dict[str, torch.Tensor]:
        degraded, target = self.batch["input"], self.batch["target"]
        generator, discriminator = self.networks["generator"], self.networks["discriminator"]
        with self._autocast():
            output = generator(degraded)
        output = output.float()
        terms = self._content(output, target)
        real, fake = self._judged(degraded, target), self._judged(degraded, output.detach())
        with self._autocast():
            logits = discriminator(torch.cat([real, fake])).float()
        real_logits, fake_logits = logits.chunk(2)
        judged = 0.5 * (self.adversarial(real_logits, True) + self.adversarial(fake_logits, False))
        self._update("discriminator", judged)
        discriminator.requires_grad_(False)
        try:
            with self._autocast():
                fooled = self.adversarial(discriminator(self._judged(degraded, output)).float(), True)
        finally:
            discriminator.requires_grad_(True)
        terms["adversarial"] = self.recipe.loss.adversarial_weight * fooled
        total = sum(terms.values())
        self._update("generator", total)
        return {"loss": total, "discriminator": judged, **terms}

    def _cycle(self) -> dict[str, torch.Tensor]:
        a, b = self.batch["a"], self.batch["b"]
        loss, networks = self.recipe.loss, self.networks
        with self._autocast():
            fake_b = networks["generator_ab"](a).float()
            fake_a = networks["generator_ba"](b).float()
            rebuilt_a = networks["generator_ba"](fake_b).float()
            rebuilt_b = networks["generator_ab"](fake_a).float()
        terms = {"cycle": loss.cycle_weight * (F.l1_loss(rebuilt_a, a) + F.l1_loss(rebuilt_b, b))}
        if loss.identity_weight > 0:
            with self._autocast():
                same_b = networks["generator_ab"](b).float()
                same_a = networks["generator_ba"](a).float()
            terms["identity"] = loss.identity_weight * (F.l1_loss(same_b, b) + F.l1_loss(same_a, a))
        judges = (networks["discriminator_a"], networks["discriminator_b"])
        for judge in judges:
            judge.requires_grad_(False)
        try:
            with self._autocast():
                terms["adversarial"] = loss.adversarial_weight * (
                    self.adversarial(judges[1](fake_b).float(), True)
                    + self.adversarial(judges[0](fake_a).float(), True)
                )
        finally:
            for judge in judges:
                judge.requires_grad_(True)
        total = sum(terms.values())
        self._update("generators", total)
        shown_a, shown_b = self.pools["a"].query(fake_a), self.pools["b"].query(fake_b)
        with self._autocast():
            logits_a = judges[0](torch.cat([a, shown_a])).float()
            logits_b = judges[1](torch.cat([b, shown_b])).float()
        judged = 0.0
        for logits in (logits_a, logits_b):
            real, fake = logits.chunk(2)
            judged = judged + 0.5 * (self.adversarial(real, True) + self.adversarial(fake, False))
        self._update("discriminators", judged)
        return {"loss": total, "discriminator": judged, **terms}

    def gflop_per_step(self) -> float:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            self.step()
        return counter.get_total_flops() / 1e9

    def measure(self, steps_per_window: int, windows: int, warmup_steps: int = 1) -> list[float]:
        """Patches per second of each of `windows` windows of `steps_per_window` steps, as the trainer logs
        them, after `warmup_steps` untimed ones."""
        for _ in range(warmup_steps):
            self.step()
        self._synchronise()
        rates = []
        for _ in range(windows):
            started = time.perf_counter()
            for _ in range(steps_per_window):
                self.step()
            self._synchronise()
            rates.append(steps_per_window * self.patches_per_step / (time.perf_counter() - started))
        return rates

    def _synchronise(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)


def random_batch(recipe: Recipe, device: torch.device) -> dict[str, torch.Tensor]:
    """One batch of the shapes the recipe's DataLoader yields, random values (speed does not depend on them)."""
    generator = torch.Generator().manual_seed(0)
    batch, side = recipe.data.batch, recipe.data.patch

    def images(size: int) -> torch.Tensor:
        tensor = torch.rand(batch, 1, size, size, generator=generator).to(device)
        return tensor.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else tensor

    if recipe.data.pairing == "unpaired":
        return {"a": images(side), "b": images(side)}
    degradation = recipe.degradation
    scale = degradation.scale if degradation is not None and recipe.data.pairing == "synthetic" else 1
    return {"input": images(side // scale), "target": images(side)}


# --- data and the trainer ----------------------------------------------------------------------------------------


def data_milliseconds_per_batch(recipe: Recipe, folders: list[Path], cache: Path, seconds: float = 1.0) -> float:
    """CPU time of `PatchDataset` drawing and collating one batch here, in one thread (what a worker spends)."""
    from torch.utils.data import default_collate

    records = data.scan_data(recipe, folders)
    train = data.split_series(records, recipe)["train"]
    patch = recipe.data.patch
    if recipe.data.pairing == "unpaired":
        pools = [
            data.build_pools(
                [r for r in train if r.domain == domain], cache, f"{domain}", paired=False, min_side=patch
            )[0]
            for domain in (0, 1)
        ]
    else:
        pool, reference, _ = data.build_pools(
            train, cache, "train", paired=recipe.data.pairing == "paired", min_side=patch
        )
        pools = [pool] + ([reference] if reference is not None else [])
    mode = recipe.data.pairing
    settings = data.PatchSettings(
        patch,
        recipe.degradation if mode == "synthetic" else None,
        recipe.data.gamma,
        recipe.data.contrast,
        recipe.data.min_patch_std,
        recipe.run.seed,
    )
    dataset = data.PatchDataset(pools, settings, mode)
    batch = recipe.data.batch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker
    try:
        default_collate([dataset[index] for index in range(batch)])  # opens the pools
        started, batches = time.process_time(), 0
        while batches < 3 or time.process_time() - started < seconds:
            first = (batches + 1) * batch
            default_collate([dataset[index] for index in range(first, first + batch)])
            batches += 1
        return (time.process_time() - started) / batches * 1000
    finally:
        torch.set_num_threads(threads)


@dataclass
class TrainerResult:
    windows: list[float]  # patches/s of each log window, the first (warm-up) included
    wall_seconds: float


def run_trainer(
    recipe_path: Path,
    folders: list[Path],
    runs: Path,
    name: str,
    device: str,
    steps: int,
    log_every: int,
    overrides: list[str],
    environment: dict[str, str] | None = None,
) -> TrainerResult:
    """A real run through the CLI (with `environment` added to this process's); the patches/s of its log
    windows."""
    command = [sys.executable, "-m", "trainer", "run", str(recipe_path), "--data", *map(str, folders)]
    command += ["--out", str(runs), "--name", name, "--device", device, "--set", *overrides]
    command += [
        f"run.steps={steps}",
        f"run.log_every={log_every}",
        f"run.validate_every={NEVER}",
        f"run.checkpoint_every={NEVER}",
        "run.checkpoint_minutes=100000",
    ]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, **(environment or {})},
    )
    try:
        stdout, stderr = process.communicate()
    finally:
        if process.poll() is None:  # interrupted: the run must not go on training in the background
            process.terminate()
            process.wait()
    wall = time.monotonic() - started
    if process.returncode != 0:
        raise RuntimeError(f"trainer exited {process.returncode}: {stderr.strip()[-2000:]}")
    windows = []
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("event") == "step":
            windows.append(float(event["patches_per_second"]))
    if len(windows) < 2:
        raise RuntimeError(f"trainer logged {len(windows)} windows; need at least 2 (steps {steps}, log {log_every})")
    return TrainerResult(windows, wall)


def plan_windows(step_seconds: float, seconds: float, fixed_steps: int | None, windows: int) -> int:
    """Steps per log window: `windows` of them take about `seconds` (or `fixed_steps` in all, warm-up included)."""
    if fixed_steps is not None:
        return max(1, fixed_steps // (windows + 1))
    return max(1, math.ceil(seconds / windows / step_seconds))


# --- the benchmark ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    recipe: str
    patch: int
    batch: int
    steps_per_window: int
    gflop: float
    data_ms: float
    bare_windows: list[float]
    trainer_windows: list[float]  # warm-up windows left out
    fixed_windows: list[float]  # the trainer with KEEP_FREED_MEMORY_ENVIRONMENT (--malloc-fix), warm-up left out

    @property
    def bare(self) -> float:
        return max(self.bare_windows)

    @property
    def trainer(self) -> float:
        return max(self.trainer_windows)

    @property
    def fixed(self) -> float | None:
        return max(self.fixed_windows) if self.fixed_windows else None


def benchmark(name: str, path: Path, arguments, folders: dict[str, list[Path]], scratch: Path) -> Row:
    overrides = BENCHMARK_OVERRIDES + list(arguments.overrides)
    recipe = load_recipe(path, overrides)
    device = torch.device(arguments.device)
    chosen = folders["unpaired"] if recipe.data.pairing == "unpaired" else folders["single"]
    log(
        f"{name}: {recipe.recipe.paradigm} {recipe.model.architecture}, patch {recipe.data.patch}, batch "
        f"{recipe.data.batch}, workers {recipe.data.workers}"
    )
    data_ms = data_milliseconds_per_batch(recipe, chosen, scratch / f"{name}-pools")
    loop = BareLoop(recipe, device)
    loop.step()  # warm-up before counting: lazy initialisation must not be counted
    started = time.perf_counter()
    gflop = loop.gflop_per_step()
    step_seconds = time.perf_counter() - started
    per_window = plan_windows(step_seconds, arguments.seconds, arguments.steps, arguments.windows)
    steps = per_window * (arguments.windows + 1)
    log(f"  {gflop:.1f} GFLOP/step, data {data_ms:.1f} ms/batch; windows of {per_window} steps")
    bare_windows, trainer_windows, fixed_windows = [], [], []
    variants = [("trainer", {}, trainer_windows)]
    if arguments.malloc_fix:
        variants.append(("trainer, malloc fix", KEEP_FREED_MEMORY_ENVIRONMENT, fixed_windows))
    for repeat in range(arguments.repeats):
        bare_windows += loop.measure(per_window, arguments.windows)
        log(f"  bare loop: {_rates(bare_windows[-arguments.windows :])} patches/s")
        for index, (label, environment, windows) in enumerate(variants):
            run_name = f"{name}-{repeat}-{index}"
            result = run_trainer(
                path, chosen, scratch / "runs", run_name, arguments.device, steps, per_window, overrides, environment
            )
            windows += result.windows[1:]
            log(f"  {label}: {_rates(result.windows)} patches/s (first is warm-up; {result.wall_seconds:.0f} s)")
    return Row(
        name,
        recipe.data.patch,
        recipe.data.batch,
        per_window,
        gflop,
        data_ms,
        bare_windows,
        trainer_windows,
        fixed_windows,
    )


def _rates(values: list[float]) -> str:
    return ", ".join(f"{value:.1f}" for value in values)


def markdown(rows: list[Row], arguments) -> str:
    fix = arguments.malloc_fix
    header = (
        "| recipe | patch | batch | GFLOP/step | data ms/batch | bare patches/s | bare GFLOP/s | trainer patches/s "
        "| trainer GFLOP/s | trainer/bare |"
    )
    rule = "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    if fix:
        header += " trainer + malloc fix, patches/s | fixed/bare |"
        rule += " ---: | ---: |"
    lines = [header, rule]
    for row in rows:
        line = (
            f"| {row.recipe} | {row.patch} | {row.batch} | {row.gflop:.1f} | {row.data_ms:.1f} | {row.bare:.1f} | "
            f"{row.gflop * row.bare / row.batch:.1f} | {row.trainer:.1f} | {row.gflop * row.trainer / row.batch:.1f} "
            f"| {row.trainer / row.bare:.2f} |"
        )
        if fix:
            line += f" {row.fixed:.1f} | {row.fixed / row.bare:.2f} |"
        lines.append(line)
    lines.append("")
    lines.append(
        "Rates are the best log window of each (windows of equal step counts, per recipe: "
        + ", ".join(f"{row.recipe} {row.steps_per_window}" for row in rows)
        + "), the fastest the machine allowed; data ms/batch is one thread's CPU time to draw a batch."
    )
    if arguments.kept_memory:
        lines.append("The bare loop's glibc malloc keeps freed memory (mallopt M_MMAP_MAX=0, M_TRIM_THRESHOLD=2 GiB).")
    if fix:
        environment = " ".join(f"{key}={value}" for key, value in KEEP_FREED_MEMORY_ENVIRONMENT.items())
        lines.append(f"'malloc fix' is the same trainer run with {environment} in its environment.")
    overrides = " ".join(BENCHMARK_OVERRIDES + arguments.overrides)
    lines.append(
        f"Device {arguments.device}, {torch.get_num_threads()} torch threads, torch {torch.__version__}; best of "
        f"{arguments.repeats} alternating measurements each; overrides {overrides}."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=None, help="shipped recipe names (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--seconds", type=float, default=25.0, help="measured time per run of each (sets steps)")
    parser.add_argument("--steps", type=int, default=None, help="trainer steps per run instead of --seconds")
    parser.add_argument("--windows", type=int, default=6, help="measured log windows per trainer run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--malloc-fix",
        action="store_true",
        help="also time the trainer with glibc malloc keeping freed memory (one more run per repeat)",
    )
    parser.add_argument(
        "--set", nargs="+", default=[], dest="overrides", metavar="KEY=VALUE", help="recipe overrides for both"
    )
    arguments = parser.parse_args()
    shipped = shipped_recipes()
    names = arguments.recipes or list(shipped)
    unknown = [name for name in names if name not in shipped]
    if unknown:
        parser.error(f"unknown recipes {unknown}; shipped: {', '.join(shipped)}")
    if arguments.device == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)  # as the trainer does on the CPU
    arguments.kept_memory = keep_freed_memory()
    rows = []
    with tempfile.TemporaryDirectory(prefix="train-speed-") as temporary:
        scratch = Path(temporary)
        folders = {
            "single": [write_folder(scratch / "images", IMAGE_COUNT, IMAGE_SIZE, seed=0)],
            "unpaired": [
                write_folder(scratch / "a", IMAGE_COUNT, IMAGE_SIZE, seed=1),
                write_folder(scratch / "b", IMAGE_COUNT, IMAGE_SIZE, seed=2),
            ],
        }
        for name in names:
            rows.append(benchmark(name, shipped[name], arguments, folders, scratch))
    print(markdown(rows, arguments))


if __name__ == "__main__":
    main()
