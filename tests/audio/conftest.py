"""Fixtures for the audio tests: tiny and exact-config random-weight VAE / vocoder, test tones."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from fluxmusic.audio import AudioVAE, HifiGanVocoder

TINY_VAE = {"block_out_channels": [16, 32, 32], "norm_num_groups": 8, "layers_per_block": 1}
"""Same depth (downsample 4) and latent channels (8) as AudioLDM2, a few hundred thousand parameters."""
TINY_VOCODER = {"upsample_initial_channel": 32}
"""Same upsample rates and kernels (hop 160) as AudioLDM2, tens of thousands of parameters."""


def _sine(freq: float, seconds: float, sample_rate: int = 16000, amplitude: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(round(seconds * sample_rate)), dtype=torch.float64) / sample_rate
    return (amplitude * torch.sin(2 * math.pi * freq * t)).float()


@pytest.fixture()
def sine() -> Callable[..., torch.Tensor]:
    """``sine(freq, seconds, sample_rate=16000, amplitude=0.5)`` -> float32 tone of shape (S,)."""
    return _sine


@pytest.fixture()
def dominant_hz() -> Callable[[torch.Tensor, int], float]:
    """Frequency (Hz) of the largest rFFT bin of a waveform (S,)."""

    def measure(waveform: torch.Tensor, sample_rate: int) -> float:
        spectrum = torch.fft.rfft(waveform.double()).abs()
        return spectrum.argmax().item() * sample_rate / waveform.shape[-1]

    return measure


@pytest.fixture()
def tiny_vae() -> AudioVAE:
    torch.manual_seed(0)
    return AudioVAE.from_config(TINY_VAE).eval()


@pytest.fixture()
def tiny_vocoder() -> HifiGanVocoder:
    torch.manual_seed(0)
    return HifiGanVocoder.from_config(TINY_VOCODER).eval()


@pytest.fixture(scope="session")
def audioldm2_vae() -> AudioVAE:
    """Random weights, exact AudioLDM2 config (do not modify in tests)."""
    torch.manual_seed(0)
    return AudioVAE.from_config().eval()


@pytest.fixture(scope="session")
def audioldm2_vocoder() -> HifiGanVocoder:
    """Random weights, exact AudioLDM2 config (do not modify in tests)."""
    torch.manual_seed(0)
    return HifiGanVocoder.from_config().eval()
