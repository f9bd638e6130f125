"""The vocoder trainer's losses: multi-resolution STFT, log-mel L1, and a light multi-period discriminator.

The discriminator is HiFi-GAN's period discriminator with fewer channels, trained with the least-squares
GAN loss; the generator adds the adversarial and feature-matching terms when it is on (``loss.adv > 0``,
from step ``loss.adv_start``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fluxmusic.audio import log_mel
from fluxmusic.errors import InputError

__all__ = [
    "STFT_RESOLUTIONS",
    "MultiPeriodDiscriminator",
    "PeriodDiscriminator",
    "VocoderLossConfig",
    "discriminator_loss",
    "generator_losses",
    "stft_loss",
]

STFT_RESOLUTIONS: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (2048, 512))


@dataclass(frozen=True)
class VocoderLossConfig:
    """``[loss]`` of a vocoder run: loss weights; ``adv > 0`` turns on the discriminator from ``adv_start``.

    Attributes:
        mel: Log-mel L1 (AudioLDM2 front end).
        stft: Multi-resolution STFT loss (spectral convergence + log-magnitude L1).
        adv: Least-squares adversarial loss of the generator (0: no discriminator).
        feature_matching: L1 between the discriminator's features of real and generated audio.
        adv_start: Step from which the discriminator trains and the generator sees it.
        disc_channels: Width of the discriminator's first convolution.
        disc_periods: Periods of the sub-discriminators.
    """

    mel: float = 1.0
    stft: float = 1.0
    adv: float = 0.0
    feature_matching: float = 2.0
    adv_start: int = 0
    disc_channels: int = 16
    disc_periods: tuple[int, ...] = (2, 3, 5, 7, 11)

    def __post_init__(self) -> None:
        if min(self.mel, self.stft, self.adv, self.feature_matching) < 0 or self.mel + self.stft <= 0:
            raise InputError(
                f"loss weights must be >= 0 with loss.mel + stft > 0, got mel={self.mel}, stft={self.stft}, "
                f"adv={self.adv}, feature_matching={self.feature_matching}"
            )
        if self.adv_start < 0 or self.disc_channels < 1 or not self.disc_periods:
            raise InputError(
                f"loss.adv_start must be >= 0 (got {self.adv_start}), loss.disc_channels >= 1 (got "
                f"{self.disc_channels}) and loss.disc_periods non-empty (got {list(self.disc_periods)})"
            )


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
    """A set of :class:`PeriodDiscriminator` (periods 2, 3, 5, 7, 11 by default).

    Shapes:
        waveform: (B, S)
        output: one (scores (B, N), features) pair per period
    """

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
    estimate: Tensor,
    target: Tensor,
    loss: VocoderLossConfig,
    disc: MultiPeriodDiscriminator | None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Reconstruction (+ adversarial and feature-matching when ``disc`` is given) losses of the generator.

    Args:
        estimate: Generated waveforms.
        target: Real waveforms.
        loss: The weights.
        disc: The discriminator, or None (reconstruction only).

    Shapes:
        estimate, target: (B, S)
    """
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
    """Least-squares GAN loss of the discriminator (real -> 1, generated -> 0).

    Shapes:
        estimate, target: (B, S)
    """
    real, fake = disc(target), disc(estimate.detach())
    return sum(((1 - r) ** 2).mean() + (f**2).mean() for (r, _), (f, _) in zip(real, fake))
