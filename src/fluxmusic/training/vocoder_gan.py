"""Train the bundled vocoder: a small HiFi-GAN generator (transformers ``SpeechT5HifiGan``), CPU-sized.

The generator keeps AudioLDM2's interface (64 mel bins in, 16 kHz out, upsampling x160) with fewer
channels. Its ``normalize_before`` buffers hold the per-bin mean and std of the training log-mels, so
the saved :class:`HifiGanVocoder` takes raw log-mel. Losses on random aligned (log-mel, audio) crops:

- log-mel L1 (AudioLDM2 front end), weight ``loss.mel``;
- multi-resolution STFT loss (spectral convergence + log-magnitude L1; n_fft 512/1024/2048), ``loss.stft``;
- optionally (``loss.adv > 0``) a light multi-period discriminator (least squares) with feature
  matching, switched on at ``loss.adv_start``.

Run (resumable; ``--resume`` continues from the newest checkpoint in ``--out``)::

    OMP_NUM_THREADS=1 python -m fluxmusic.training.vocoder_gan --config configs/bundled/vocoder.toml \
        --data /work/data/demo --out /work/runs/bundled_vocoder [--resume]
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fluxmusic.audio import HifiGanVocoder, log_mel
from fluxmusic.training import component_run as runs
from fluxmusic.data.clip_bank import ClipBank
from fluxmusic.training.component_run import OptimSection, RunSection

logger = logging.getLogger(__name__)

STFT_RESOLUTIONS: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (2048, 512))


@dataclass(frozen=True)
class VocoderModelSection:
    """``SpeechT5HifiGan`` size; 64 mel bins and 16 kHz are fixed, the upsample rates must multiply to 160."""

    upsample_initial_channel: int = 128
    upsample_rates: tuple[int, ...] = (5, 4, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (10, 8, 4, 4, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))

    def __post_init__(self) -> None:
        if math.prod(self.upsample_rates) != 160 or len(self.upsample_rates) != len(
            self.upsample_kernel_sizes
        ):
            raise ValueError(
                f"[model] upsample_rates {self.upsample_rates} must multiply to 160 and match "
                f"upsample_kernel_sizes {self.upsample_kernel_sizes}"
            )
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError("[model] resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        if self.upsample_initial_channel < 2 ** len(self.upsample_rates):
            raise ValueError(f"[model] upsample_initial_channel {self.upsample_initial_channel} is too small")

    def vocoder_config(self) -> dict[str, Any]:
        """Keys for :meth:`HifiGanVocoder.from_config` (mel normalisation on)."""
        return {
            "upsample_initial_channel": self.upsample_initial_channel,
            "upsample_rates": list(self.upsample_rates),
            "upsample_kernel_sizes": list(self.upsample_kernel_sizes),
            "resblock_kernel_sizes": list(self.resblock_kernel_sizes),
            "resblock_dilation_sizes": [list(d) for d in self.resblock_dilation_sizes],
            "normalize_before": True,
        }


@dataclass(frozen=True)
class VocoderDataSection:
    """Crops of ``crop_frames`` frames (x160 samples); ``eval_clips`` held-out clips for periodic checks."""

    clip_seconds: float = 5.12
    crop_frames: int = 48
    batch_size: int = 8
    max_clips: int = 0
    eval_clips: int = 16

    def __post_init__(self) -> None:
        if self.clip_seconds <= 0 or self.crop_frames < 16 or self.batch_size < 1:
            raise ValueError(f"[data] needs clip_seconds > 0, crop_frames >= 16, batch_size >= 1: {self}")
        if self.max_clips < 0 or self.eval_clips < 0:
            raise ValueError(f"[data] max_clips and eval_clips must be >= 0: {self}")


@dataclass(frozen=True)
class VocoderLossSection:
    """Loss weights; ``adv > 0`` turns on the discriminator from step ``adv_start``."""

    mel: float = 1.0
    stft: float = 1.0
    adv: float = 0.0
    feature_matching: float = 2.0
    adv_start: int = 0
    disc_channels: int = 16
    disc_periods: tuple[int, ...] = (2, 3, 5, 7, 11)

    def __post_init__(self) -> None:
        if min(self.mel, self.stft, self.adv, self.feature_matching) < 0 or self.mel + self.stft <= 0:
            raise ValueError(f"[loss] weights must be >= 0 with mel + stft > 0, got {self}")
        if self.adv_start < 0 or self.disc_channels < 1 or not self.disc_periods:
            raise ValueError(f"[loss] adv_start >= 0, disc_channels >= 1, disc_periods non-empty: {self}")


@dataclass(frozen=True)
class VocoderTrainConfig:
    """Everything a vocoder run needs; sections map to TOML tables."""

    run: RunSection = field(default_factory=RunSection)
    model: VocoderModelSection = field(default_factory=VocoderModelSection)
    data: VocoderDataSection = field(default_factory=VocoderDataSection)
    optim: OptimSection = field(default_factory=lambda: OptimSection(lr=1e-3, betas=(0.8, 0.99)))
    loss: VocoderLossSection = field(default_factory=VocoderLossSection)


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN's period sub-discriminator, narrow: the waveform folded to (S / p, p), 2-D convs over time.

    Shapes:
        waveform: (B, S)
        output: scores (B, N) and the feature maps
    """

    def __init__(self, period: int, channels: int) -> None:
        super().__init__()
        self.period = period
        widths = [1, channels, 2 * channels, 4 * channels, 4 * channels]
        self.convs = nn.ModuleList(
            nn.utils.parametrizations.weight_norm(nn.Conv2d(a, b, (5, 1), (3, 1), padding=(2, 0)))
            for a, b in zip(widths[:-1], widths[1:])
        )
        self.post = nn.utils.parametrizations.weight_norm(nn.Conv2d(widths[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, waveform: Tensor) -> tuple[Tensor, list[Tensor]]:
        b, s = waveform.shape
        pad = (-s) % self.period
        x = F.pad(waveform, (0, pad), mode="reflect").view(b, 1, (s + pad) // self.period, self.period)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            features.append(x)
        x = self.post(x)
        features.append(x)
        return x.flatten(1), features


class MultiPeriodDiscriminator(nn.Module):
    """A set of :class:`PeriodDiscriminator` (periods 2, 3, 5, 7, 11 by default)."""

    def __init__(self, periods: Sequence[int], channels: int) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels) for p in periods)

    def forward(self, waveform: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        """Scores and features of every period."""
        return [d(waveform) for d in self.discriminators]


def stft_loss(estimate: Tensor, target: Tensor) -> Tensor:
    """Multi-resolution STFT loss: spectral convergence + log-magnitude L1, averaged over resolutions.

    Shapes:
        estimate, target: (B, S)
    """
    total = estimate.new_zeros(())
    for n_fft, hop in STFT_RESOLUTIONS:
        window = torch.hann_window(n_fft, periodic=True, device=estimate.device)
        mags = [
            torch.stft(w, n_fft, hop, window=window, center=True, return_complex=True).abs().clamp(min=1e-7)
            for w in (estimate, target)
        ]
        sc = (mags[1] - mags[0]).norm() / mags[1].norm().clamp(min=1e-7)
        total = total + sc + (mags[1].log() - mags[0].log()).abs().mean()
    return total / len(STFT_RESOLUTIONS)


def generator_losses(
    estimate: Tensor, target: Tensor, loss: VocoderLossSection, disc: MultiPeriodDiscriminator | None
) -> tuple[Tensor, dict[str, Tensor]]:
    """Reconstruction (+ adversarial and feature-matching when ``disc`` is given) losses of the generator."""
    mel = (log_mel(estimate) - log_mel(target)).abs().mean()
    stft = stft_loss(estimate, target)
    total = loss.mel * mel + loss.stft * stft
    parts = {"mel": mel.detach(), "stft": stft.detach()}
    if disc is not None:
        fake, real = disc(estimate), disc(target)
        adv = sum(((1 - score) ** 2).mean() for score, _ in fake)
        fm = sum(
            (f - r.detach()).abs().mean() for (_, ff), (_, rf) in zip(fake, real) for f, r in zip(ff, rf)
        )
        total = total + loss.adv * adv + loss.feature_matching * fm
        parts.update(adv=adv.detach(), fm=fm.detach())
    parts["loss"] = total.detach()
    return total, parts


def discriminator_loss(disc: MultiPeriodDiscriminator, estimate: Tensor, target: Tensor) -> Tensor:
    """Least-squares GAN loss of the discriminator (real -> 1, generated -> 0)."""
    real, fake = disc(target), disc(estimate.detach())
    return sum(((1 - r) ** 2).mean() + (f**2).mean() for (r, _), (f, _) in zip(real, fake))


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
    """
    with torch.random.fork_rng():
        torch.manual_seed(config.run.seed)
        vocoder = HifiGanVocoder.from_config(config.model.vocoder_config())
        for module in vocoder.modules():
            if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
                module.reset_parameters()
    mean, std = mel_norm_stats(train_mels[:256])
    vocoder.hifigan.mean.copy_(mean)
    vocoder.hifigan.scale.copy_(std)
    o = config.optim
    opt = torch.optim.AdamW(vocoder.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    return vocoder, opt


def build_discriminator(config: VocoderTrainConfig) -> tuple[MultiPeriodDiscriminator, torch.optim.AdamW]:
    """Fresh seeded discriminator and its optimizer (same hyper-parameters as the generator's)."""
    with torch.random.fork_rng():
        torch.manual_seed(config.run.seed + 7)
        disc = MultiPeriodDiscriminator(config.loss.disc_periods, config.loss.disc_channels)
    o = config.optim
    return disc, torch.optim.AdamW(disc.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)


@torch.no_grad()
def held_out_mel_l1(vocoder: HifiGanVocoder, bank: ClipBank, batch_size: int = 4) -> float:
    """Log-mel L1 of vocoder(mel) against the real clips (whole clips)."""
    assert bank.waveforms is not None
    total = 0.0
    for mel, wave in zip(bank.mels.split(batch_size), bank.waveforms.split(batch_size)):
        out = vocoder(mel, num_samples=wave.shape[1])
        total += float((log_mel(out) - log_mel(wave)).abs().mean()) * mel.shape[0]
    return total / len(bank)


def train(
    config: VocoderTrainConfig,
    train_bank: ClipBank,
    run_dir: str | Path,
    eval_bank: ClipBank | None = None,
    resume: bool = False,
    max_minutes: float = 0.0,
    stop_at: int = 0,
) -> tuple[HifiGanVocoder, int]:
    """Train (or continue) a vocoder run; checkpoints go to ``RUN/checkpoints``.

    A checkpoint without discriminator state (e.g. a reconstruction-only run continued with
    ``loss.adv > 0``) starts a fresh discriminator.

    Args:
        config: The run's config.
        train_bank: Training clips (log-mels and waveforms).
        run_dir: Run folder.
        eval_bank: Held-out clips for the periodic whole-clip log-mel L1 (optional).
        resume: Continue from the newest checkpoint (a fresh start when there is none).
        max_minutes: Stop (after a checkpoint) once this much wall time has passed (0: no limit).
        stop_at: Stop (after a checkpoint) at this step, keeping the schedule of ``max_steps`` (0: off).

    Returns:
        (the generator, steps done).
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    if config.run.threads:
        torch.set_num_threads(config.run.threads)
    vocoder, opt = build(config, train_bank.mels)
    disc, disc_opt = build_discriminator(config) if config.loss.adv > 0 else (None, None)
    data_gen = torch.Generator().manual_seed(config.run.seed)
    step = 0
    latest = runs.latest_checkpoint(run_dir) if resume else None
    if latest is not None:
        weights, optimizers, state = runs.load_checkpoint(latest)
        vocoder.load_state_dict({k: v for k, v in weights.items() if k.startswith("hifigan.")})
        opt.load_state_dict(optimizers["generator"])
        if disc is not None and "disc" in optimizers:
            disc.load_state_dict({k[5:]: v for k, v in weights.items() if k.startswith("disc.")})
            disc_opt.load_state_dict(optimizers["disc"])
        runs.restore_generators({"data": data_gen}, state)
        step = int(state["step"])
        logger.info("resumed from %s (step %d)", latest, step)
    cfg_dict = runs.config_to_dict(config)

    def checkpoint() -> None:
        weights = dict(vocoder.state_dict())
        optimizers = {"generator": opt.state_dict()}
        if disc is not None:
            weights.update({f"disc.{k}": v for k, v in disc.state_dict().items()})
            optimizers["disc"] = disc_opt.state_dict()
        runs.save_checkpoint(
            run_dir,
            step,
            weights,
            optimizers,
            runs.generator_states({"data": data_gen}),
            {"trainer": "vocoder_gan", **cfg_dict},
            config.run.keep_last,
        )

    vocoder.train()
    started, cpu_started = time.perf_counter(), time.process_time()
    first = step
    bar = tqdm(total=config.optim.max_steps, initial=step, disable=not config.run.progress, mininterval=10)
    sums: dict[str, Tensor] = {}
    count = 0
    o = config.optim
    end = min(o.max_steps, stop_at) if stop_at else o.max_steps
    while step < end:
        lr = runs.lr_at(step, o.lr, o.warmup_steps, o.max_steps, o.min_lr_ratio)
        for optimizer in (opt, disc_opt):
            for group in optimizer.param_groups if optimizer is not None else ():
                group["lr"] = lr
        mel, target = train_bank.pair_crops(data_gen, config.data.batch_size, config.data.crop_frames)
        estimate = vocoder(mel, num_samples=target.shape[1])
        use_disc = disc if disc is not None and step >= config.loss.adv_start else None
        if use_disc is not None:
            d_loss = discriminator_loss(use_disc, estimate, target)
            disc_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            disc_opt.step()
            use_disc.requires_grad_(False)
        total, parts = generator_losses(estimate, target, config.loss, use_disc)
        opt.zero_grad(set_to_none=True)
        total.backward()
        if use_disc is not None:
            use_disc.requires_grad_(True)
            parts["disc"] = d_loss.detach()
        if o.grad_clip > 0:
            parts["grad_norm"] = torch.nn.utils.clip_grad_norm_(vocoder.parameters(), o.grad_clip)
        opt.step()
        step += 1
        bar.update(1)
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v
        count += 1
        if step % config.run.log_every == 0 or step == end:
            means = {k: float(v) / count for k, v in sums.items()}
            logger.info(
                "step %d lr %.2e %s | %.2f s/step wall, %.2f s/step cpu",
                step,
                lr,
                " ".join(f"{k} {v:.4f}" for k, v in means.items()),
                (time.perf_counter() - started) / max(1, step - first),
                (time.process_time() - cpu_started) / max(1, step - first),
            )
            bar.set_postfix(mel=f"{means['mel']:.3f}")
            sums, count = {}, 0
        if eval_bank is not None and config.run.eval_every and step % config.run.eval_every == 0:
            vocoder.eval()
            logger.info("step %d held-out log-mel L1 %.4f", step, held_out_mel_l1(vocoder, eval_bank))
            vocoder.train()
        out_of_time = max_minutes > 0 and time.perf_counter() - started > 60 * max_minutes
        if step % config.run.checkpoint_every == 0 or step == end or out_of_time:
            checkpoint()
        if out_of_time:
            logger.info("stopping after %.1f minutes at step %d (resume with --resume)", max_minutes, step)
            break
    bar.close()
    vocoder.eval()
    return vocoder, step


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    args, out, config = runs.start_run(VocoderTrainConfig, "Train the bundled HiFi-GAN vocoder.", argv)
    bank, eval_bank = runs.load_clip_banks(out, args.data, config.data)
    vocoder, step = train(
        config, bank, out, eval_bank, resume=args.resume, max_minutes=args.max_minutes, stop_at=args.stop_at
    )
    if step >= config.optim.max_steps and not args.no_export:
        vocoder.save_pretrained(out / "final")
        summary: dict[str, Any] = {"step": step}
        if eval_bank is not None:
            exported = HifiGanVocoder.from_pretrained(out / "final", subfolder=None).eval()
            summary["held_out_log_mel_l1"] = held_out_mel_l1(exported, eval_bank)
        (out / "final_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        logger.info("final: %s", summary)


if __name__ == "__main__":
    main()
