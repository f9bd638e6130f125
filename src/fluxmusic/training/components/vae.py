"""The bundled mel VAE's trainer: AudioLDM2's architecture (diffusers ``AutoencoderKL``), fewer channels.

Loss: L1 (and optionally L2) between the log-mel and its reconstruction from a posterior sample, plus a
small KL weight (both per-element means). The network sees a normalised log-mel ``x / in_scale`` and
predicts ``(x - out_shift) / out_scale``; both maps are folded exactly into ``conv_in`` / ``conv_out`` at
export (a pure scale at the input keeps zero padding exact), so the exported :class:`AudioVAE` takes and
returns raw log-mel like AudioLDM2's. After training, ``scaling_factor`` is set to ``1 / std`` of
posterior samples of training clips. The bundled VAE's recipe is ``configs/bundled/vae.toml``
(``run.trainer = "vae"``; see :mod:`fluxmusic.training.components` for the command).
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from fluxmusic.audio import AudioVAE
from fluxmusic.data.clip_bank import ClipBank
from fluxmusic.errors import InputError
from fluxmusic.training.components.sections import (
    ClipDataConfig,
    ComponentOptimConfig,
    ComponentTrainConfig,
    run_section,
)
from fluxmusic.training.components.tenant import Tenant, load_clip_banks, run_component
from fluxmusic.training.config import plain
from fluxmusic.training.guard import guard_loss
from fluxmusic.training.optim import adamw, clip_and_step
from fluxmusic.training.runs import TrainResult
from fluxmusic.training.sections import require_at_least

__all__ = [
    "VAEDataConfig",
    "VAELossConfig",
    "VAEModelConfig",
    "VAERunConfig",
    "VAETrainConfig",
    "build",
    "export",
    "fold_normalization",
    "forward_loss",
    "held_out_l1",
    "latent_std",
    "mel_statistics",
    "train",
]

logger = logging.getLogger(__name__)

VAERunConfig = run_section("vae", "VAERunConfig")


@dataclass(frozen=True)
class VAEModelConfig:
    """``AutoencoderKL`` size. Three levels give the AudioLDM2 downsample of 4 in time and mel."""

    block_out_channels: tuple[int, ...] = (32, 64, 128)
    layers_per_block: int = 1
    latent_channels: int = 8
    norm_num_groups: int = 32
    mid_block_add_attention: bool = True

    def __post_init__(self) -> None:
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if len(self.block_out_channels) < 1 or bad:
            raise InputError(
                f"model.block_out_channels {list(self.block_out_channels)} must be non-empty multiples of "
                f"model.norm_num_groups={self.norm_num_groups}"
            )
        require_at_least("model", "layers_per_block", self.layers_per_block, 1)
        require_at_least("model", "latent_channels", self.latent_channels, 1)

    def vae_config(self) -> dict[str, Any]:
        """Keys for :meth:`AudioVAE.from_config`."""
        return {**plain(self), "scaling_factor": 1.0}


@dataclass(frozen=True)
class VAEDataConfig(ClipDataConfig):
    """``[data]`` of a VAE run (see :class:`ClipDataConfig`).

    Attributes:
        stats_clips: Training clips for the normalisation statistics and the scaling factor.
    """

    stats_clips: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least("data", "stats_clips", self.stats_clips, 1)


@dataclass(frozen=True)
class VAELossConfig:
    """Weights of the per-element-mean losses (reconstruction in raw log-mel units)."""

    l1: float = 1.0
    l2: float = 0.0
    kl: float = 1e-4

    def __post_init__(self) -> None:
        if min(self.l1, self.l2, self.kl) < 0 or self.l1 + self.l2 <= 0:
            raise InputError(
                f"loss weights must be >= 0 with loss.l1 + loss.l2 > 0, got l1={self.l1}, l2={self.l2}, "
                f"kl={self.kl}"
            )


@dataclass(frozen=True)
class VAETrainConfig(ComponentTrainConfig):
    """Everything a VAE run needs; sections map to TOML tables."""

    run: VAERunConfig
    model: VAEModelConfig
    data: VAEDataConfig
    optim: ComponentOptimConfig
    loss: VAELossConfig

    def __post_init__(self) -> None:
        super().__post_init__()
        down = 2 ** (len(self.model.block_out_channels) - 1)
        if self.data.crop_frames % down:
            raise InputError(
                f"data.crop_frames={self.data.crop_frames} must be a multiple of the downsample {down}"
            )


def mel_statistics(mels: Tensor) -> dict[str, Tensor]:
    """Normalisation of the network's input and output: ``in_scale`` = RMS, ``out_shift``/``out_scale``.

    Shapes:
        mels: (N, T, F)
    """
    x = mels.double()
    return {
        "in_scale": x.pow(2).mean().sqrt().float(),
        "out_shift": x.mean().float(),
        "out_scale": x.std().float(),
    }


def forward_loss(
    vae: AudioVAE, mel: Tensor, stats: dict[str, Tensor], loss: VAELossConfig, generator: torch.Generator
) -> tuple[Tensor, dict[str, Tensor]]:
    """One training forward pass in normalised space; returns the total loss and its parts (tensors).

    Shapes:
        mel: (B, 1, T, F) raw log-mel
    """
    ae = vae.autoencoder
    posterior = ae.encode(mel / stats["in_scale"]).latent_dist
    eps = torch.randn(posterior.mean.shape, generator=generator, dtype=posterior.mean.dtype)
    z = posterior.mean + posterior.std * eps.to(posterior.mean.device)
    recon = ae.decode(z).sample * stats["out_scale"] + stats["out_shift"]
    diff = recon - mel
    l1 = diff.abs().mean()
    l2 = diff.pow(2).mean()
    kl = 0.5 * (posterior.mean.pow(2) + posterior.var - 1.0 - posterior.logvar).mean()
    total = loss.l1 * l1 + loss.l2 * l2 + loss.kl * kl
    return total, {"loss": total.detach(), "l1": l1.detach(), "l2": l2.detach(), "kl": kl.detach()}


def fold_normalization(vae: AudioVAE, stats: dict[str, Tensor]) -> AudioVAE:
    """Fold ``x / in_scale`` into ``conv_in`` and ``y * out_scale + out_shift`` into ``conv_out`` in place."""
    enc_in, dec_out = vae.autoencoder.encoder.conv_in, vae.autoencoder.decoder.conv_out
    with torch.no_grad():
        enc_in.weight.div_(stats["in_scale"])
        dec_out.weight.mul_(stats["out_scale"])
        dec_out.bias.mul_(stats["out_scale"]).add_(stats["out_shift"])
    return vae


@torch.no_grad()
def latent_std(
    vae: AudioVAE, mels: Tensor, generator: torch.Generator, batch_size: int = 8
) -> tuple[float, float]:
    """(std, mean) of posterior samples of the *unscaled* latent over ``mels`` (scaling factor = 1 / std).

    Shapes:
        mels: (N, T, F) raw log-mel
    """
    samples = []
    for chunk in mels.split(batch_size):
        posterior = vae.autoencoder.encode(chunk[:, None]).latent_dist
        eps = torch.randn(posterior.mean.shape, generator=generator)
        samples.append(posterior.mean + posterior.std * eps)
    z = torch.cat(samples).double()
    return float(z.std()), float(z.mean())


@torch.no_grad()
def held_out_l1(vae: AudioVAE, mels: Tensor, stats: dict[str, Tensor], batch_size: int = 8) -> float:
    """Mean |mel - decode(mode(encode(mel)))| on whole clips (raw log-mel units) of the training network.

    Shapes:
        mels: (N, T, F) raw log-mel
    """
    total = 0.0
    for chunk in mels.split(batch_size):
        x = chunk[:, None]
        z = vae.autoencoder.encode(x / stats["in_scale"]).latent_dist.mode()
        recon = vae.autoencoder.decode(z).sample * stats["out_scale"] + stats["out_shift"]
        total += float((recon - x).abs().sum())
    return total / mels.numel()


def build(config: VAETrainConfig) -> tuple[AudioVAE, torch.optim.AdamW]:
    """Fresh seeded VAE and its optimizer."""
    with torch.random.fork_rng():
        torch.manual_seed(config.run.seed)
        vae = AudioVAE.from_config(config.model.vae_config())
    return vae, adamw(vae.autoencoder.parameters(), config.optim)


def export(
    vae: AudioVAE,
    stats: dict[str, Tensor],
    train_bank: ClipBank,
    out_dir: str | os.PathLike[str],
    seed: int = 0,
) -> tuple[AudioVAE, dict[str, float]]:
    """Save a copy of ``vae`` with the normalisation folded in and ``scaling_factor = 1 / std(z)``.

    Returns:
        (the exported VAE, {"latent_std", "latent_mean", "scaling_factor"}).
    """
    vae = fold_normalization(copy.deepcopy(vae), stats)
    std, mean = latent_std(vae, train_bank.mels, torch.Generator().manual_seed(seed))
    vae.autoencoder.register_to_config(scaling_factor=1.0 / std)
    vae.save_pretrained(out_dir)
    info = {"latent_std": std, "latent_mean": mean, "scaling_factor": 1.0 / std}
    logger.info("exported %s: %s", out_dir, info)
    return vae, info


def train(config: VAETrainConfig, resume: str | os.PathLike[str] | None = None) -> TrainResult:
    """Train (or resume) a VAE run; at ``run.max_steps`` export ``RUN_DIR/final`` and ``final_summary.json``.

    Args:
        config: The run (``run.dir``, ``data.dir``, ...).
        resume: None (a new run), ``run.dir`` (continue from its newest checkpoint) or ``"auto"``.

    Returns:
        The result; ``model`` is the trained :class:`AudioVAE` (normalisation not folded in).
    """
    return run_component(config, resume, _tenant)


def _tenant(config: VAETrainConfig) -> Tenant:
    bank, eval_bank = load_clip_banks(config.run.dir, config.data, keep_waveforms=False)
    vae, opt = build(config)
    stats = mel_statistics(bank.mels[: config.data.stats_clips])
    data_gen = torch.Generator().manual_seed(config.run.seed)
    noise_gen = torch.Generator().manual_seed(config.run.seed + 1)
    params = list(vae.autoencoder.parameters())

    def step(_: int) -> dict[str, Tensor]:
        mel = bank.mel_crops(data_gen, config.data.batch_size, config.data.crop_frames)
        total, parts = forward_loss(vae, mel, stats, config.loss, noise_gen)
        guard_loss(total).backward()
        parts["grad_norm"], parts["skipped"] = clip_and_step(params, opt, config.optim.grad_clip)
        return parts

    def write(out: Path) -> dict[str, float]:
        n = min(len(bank), config.data.stats_clips)
        _, info = export(vae, stats, ClipBank(None, bank.mels[:n]), out, config.run.seed)
        if eval_bank is not None:
            exported = AudioVAE.from_pretrained(out, subfolder=None).eval()
            with torch.no_grad():
                recon = [
                    exported.decode(exported.encode(m[:, None]).mode())[:, 0] for m in eval_bank.mels.split(8)
                ]
            info["held_out_mel_l1"] = float((torch.cat(recon) - eval_bank.mels).abs().mean())
        return info

    return Tenant(
        model=vae,
        modules={"model": vae.autoencoder},
        optimizers={"model": opt},
        generators={"data": data_gen, "noise": noise_gen},
        step=step,
        parts=("loss", "l1", "l2", "kl"),
        model_type="vae",
        model_config=config.model.vae_config(),
        tensors=stats,
        evaluate=None
        if eval_bank is None
        else lambda: {"whole_clip_l1": held_out_l1(vae, eval_bank.mels, stats)},
        export=write,
    )
