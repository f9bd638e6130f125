"""The bundled vocoder's trainer: a small HiFi-GAN generator (transformers ``SpeechT5HifiGan``), CPU-sized.

The generator keeps AudioLDM2's interface (64 mel bins in, 16 kHz out, upsampling x160) with fewer
channels. Its ``normalize_before`` buffers hold the per-bin mean and std of the training log-mels, so
the saved :class:`HifiGanVocoder` takes raw log-mel. Losses on random aligned (log-mel, audio) crops
(:mod:`fluxmusic.training.components.gan`): log-mel L1 (``loss.mel``), multi-resolution STFT
(``loss.stft``) and, with ``loss.adv > 0``, a light multi-period discriminator from ``loss.adv_start``.
The bundled vocoder's recipe is ``configs/bundled/vocoder.toml`` (``run.trainer = "vocoder"``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from fluxmusic.audio import HifiGanVocoder, log_mel
from fluxmusic.data.clip_bank import ClipBank
from fluxmusic.errors import InputError
from fluxmusic.training.components.gan import (
    MultiPeriodDiscriminator,
    VocoderLossConfig,
    discriminator_loss,
    generator_losses,
)
from fluxmusic.training.components.sections import (
    ClipDataConfig,
    ComponentOptimConfig,
    ComponentTrainConfig,
    run_section,
)
from fluxmusic.training.components.tenant import Tenant, load_clip_banks, run_component
from fluxmusic.training.config import plain
from fluxmusic.training.guard import any_skipped, guard_loss
from fluxmusic.training.optim import adamw, clip_and_step
from fluxmusic.training.runs import TrainResult

__all__ = [
    "VocoderDataConfig",
    "VocoderModelConfig",
    "VocoderOptimConfig",
    "VocoderRunConfig",
    "VocoderTrainConfig",
    "build",
    "build_discriminator",
    "held_out_mel_l1",
    "mel_norm_stats",
    "train",
]

VocoderRunConfig = run_section("vocoder", "VocoderRunConfig")


@dataclass(frozen=True)
class VocoderModelConfig:
    """``SpeechT5HifiGan`` size; 64 mel bins and 16 kHz are fixed, the upsample rates must multiply to 160."""

    upsample_initial_channel: int = 128
    upsample_rates: tuple[int, ...] = (5, 4, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (10, 8, 4, 4, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))

    def __post_init__(self) -> None:
        rates, kernels = list(self.upsample_rates), list(self.upsample_kernel_sizes)
        if math.prod(rates) != 160 or len(rates) != len(kernels):
            raise InputError(
                f"model.upsample_rates {rates} must multiply to 160 and match model.upsample_kernel_sizes "
                f"{kernels} in length"
            )
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise InputError(
                f"model.resblock_kernel_sizes {list(self.resblock_kernel_sizes)} and model."
                f"resblock_dilation_sizes ({len(self.resblock_dilation_sizes)} entries) differ in length"
            )
        if self.upsample_initial_channel < 2 ** len(rates):
            raise InputError(
                f"model.upsample_initial_channel {self.upsample_initial_channel} is too small for "
                f"{len(rates)} upsampling stages (needs >= {2 ** len(rates)})"
            )

    def vocoder_config(self) -> dict[str, Any]:
        """Keys for :meth:`HifiGanVocoder.from_config` (mel normalisation on)."""
        return {**plain(self), "normalize_before": True}


@dataclass(frozen=True)
class VocoderDataConfig(ClipDataConfig):
    """``[data]`` of a vocoder run: crops of ``crop_frames`` frames, x160 samples (see ClipDataConfig)."""

    MIN_CROP: ClassVar[int] = 16

    crop_frames: int = 48
    eval_clips: int = 16


@dataclass(frozen=True)
class VocoderOptimConfig(ComponentOptimConfig):
    """``[optim]`` of a vocoder run (:class:`ComponentOptimConfig` with lr 1e-3, betas (0.8, 0.99))."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.8, 0.99)


@dataclass(frozen=True)
class VocoderTrainConfig(ComponentTrainConfig):
    """Everything a vocoder run needs; sections map to TOML tables."""

    run: VocoderRunConfig
    model: VocoderModelConfig
    data: VocoderDataConfig
    optim: VocoderOptimConfig
    loss: VocoderLossConfig


def mel_norm_stats(mels: Tensor) -> tuple[Tensor, Tensor]:
    """Per-bin mean and std of log-mels (the generator's ``normalize_before`` buffers).

    Shapes:
        mels: (N, T, 64)
        output: (64,), (64,)
    """
    flat = mels.reshape(-1, mels.shape[-1]).double()
    return flat.mean(0).float(), flat.std(0).clamp(min=1e-3).float()


def build(config: VocoderTrainConfig, train_mels: Tensor) -> tuple[HifiGanVocoder, torch.optim.AdamW]:
    """Fresh seeded generator (mel normalisation set from ``train_mels``) and its optimizer.

    Convolutions get PyTorch's default initialisation: ``SpeechT5HifiGan``'s normal(0, 0.01), meant for
    weight-normalised layers, makes a small generator's first output ~1e-9, below the log floors of the
    losses, so nothing would train.

    Shapes:
        train_mels: (N, T, 64)
    """
    with torch.random.fork_rng():
        torch.manual_seed(config.run.seed)
        vocoder = HifiGanVocoder.from_config(config.model.vocoder_config())
        for module in vocoder.modules():
            if isinstance(module, nn.Conv1d | nn.ConvTranspose1d):
                module.reset_parameters()
    mean, std = mel_norm_stats(train_mels[:256])
    vocoder.hifigan.mean.copy_(mean)
    vocoder.hifigan.scale.copy_(std)
    return vocoder, adamw(vocoder.parameters(), config.optim)


def build_discriminator(config: VocoderTrainConfig) -> tuple[MultiPeriodDiscriminator, torch.optim.AdamW]:
    """Fresh seeded discriminator and its optimizer (same hyper-parameters as the generator's)."""
    with torch.random.fork_rng():
        torch.manual_seed(config.run.seed + 7)
        disc = MultiPeriodDiscriminator(config.loss.disc_periods, config.loss.disc_channels)
    return disc, adamw(disc.parameters(), config.optim)


@torch.no_grad()
def held_out_mel_l1(vocoder: HifiGanVocoder, bank: ClipBank, batch_size: int = 4) -> float:
    """Log-mel L1 of vocoder(mel) against the real clips (whole clips)."""
    if bank.waveforms is None:
        raise RuntimeError("held_out_mel_l1 needs a ClipBank loaded with its waveforms")
    total = 0.0
    for mel, wave in zip(bank.mels.split(batch_size), bank.waveforms.split(batch_size)):
        out = vocoder(mel, num_samples=wave.shape[1])
        total += float((log_mel(out) - log_mel(wave)).abs().mean()) * mel.shape[0]
    return total / len(bank)


def train(config: VocoderTrainConfig, resume: str | os.PathLike[str] | None = None) -> TrainResult:
    """Train (or resume) a vocoder run; at ``run.max_steps`` save ``RUN_DIR/final``, ``final_summary.json``.

    A checkpoint without a discriminator (a reconstruction-only run continued with ``loss.adv > 0``)
    starts a fresh one.

    Args:
        config: The run (``run.dir``, ``data.dir``, ...).
        resume: None (a new run), ``run.dir`` (continue from its newest checkpoint) or ``"auto"``.

    Returns:
        The result; ``model`` is the trained :class:`HifiGanVocoder`.
    """
    return run_component(config, resume, _tenant)


def _tenant(config: VocoderTrainConfig) -> Tenant:
    bank, eval_bank = load_clip_banks(config.run.dir, config.data)
    vocoder, opt = build(config, bank.mels)
    modules: dict[str, nn.Module] = {"model": vocoder}
    optimizers: dict[str, torch.optim.Optimizer] = {"model": opt}
    disc = disc_opt = None
    if config.loss.adv > 0:
        disc, disc_opt = build_discriminator(config)
        modules["discriminator"], optimizers["discriminator"] = disc, disc_opt
    data_gen = torch.Generator().manual_seed(config.run.seed)
    params = list(vocoder.parameters())

    def step(done: int) -> dict[str, Tensor]:
        mel, target = bank.pair_crops(data_gen, config.data.batch_size, config.data.crop_frames)
        estimate = vocoder(mel, num_samples=target.shape[1])
        use_disc = disc if disc is not None and done >= config.loss.adv_start else None
        disc_skipped: bool | Tensor = False
        if use_disc is not None and disc_opt is not None:
            d_loss = discriminator_loss(use_disc, estimate, target)
            guard_loss(d_loss).backward()
            _, disc_skipped = clip_and_step(list(use_disc.parameters()), disc_opt, 0.0)
            use_disc.requires_grad_(False)
        total, parts = generator_losses(estimate, target, config.loss, use_disc)
        guard_loss(total).backward()
        if use_disc is not None:
            use_disc.requires_grad_(True)
            parts["disc"] = d_loss.detach()
        parts["grad_norm"], skipped = clip_and_step(params, opt, config.optim.grad_clip)
        parts["skipped"] = any_skipped(skipped, disc_skipped)
        return parts

    def write(out: Path) -> dict[str, float]:
        vocoder.save_pretrained(out)
        if eval_bank is None:
            return {}
        exported = HifiGanVocoder.from_pretrained(out, subfolder=None).eval()
        return {"held_out_log_mel_l1": held_out_mel_l1(exported, eval_bank)}

    return Tenant(
        model=vocoder,
        modules=modules,
        optimizers=optimizers,
        generators={"data": data_gen},
        step=step,
        parts=("loss", "mel", "stft", "adv", "fm", "disc"),
        model_type="hifigan",
        model_config=config.model.vocoder_config(),
        evaluate=None if eval_bank is None else lambda: {"log_mel_l1": held_out_mel_l1(vocoder, eval_bank)},
        export=write,
        optional=frozenset({"discriminator"}),
    )
