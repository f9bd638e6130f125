"""Reconstruction metrics: zero for identical audio, growing with corruption; vocoder and VAE evaluation."""

from __future__ import annotations

import math

import pytest
import torch

from fluxmusic.audio import AudioVAE, GriffinLimVocoder, clip_log_mel
from fluxmusic.evaluation.reconstruction import (
    evaluate_vae,
    evaluate_vocoder,
    log_mel_l1,
    log_stft_l1,
    spectral_convergence,
)

METRICS = (log_mel_l1, spectral_convergence, log_stft_l1)


def music(batch: int = 2, seconds: float = 0.64) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    t = torch.arange(int(seconds * 16000)) / 16000
    rows = []
    for _ in range(batch):
        f0 = 200 + 400 * float(torch.rand((), generator=g))
        rows.append(sum(torch.sin(2 * math.pi * f0 * k * t) / k for k in (1, 2, 3)) * 0.2)
    return torch.stack(rows)


@pytest.mark.parametrize("metric", METRICS)
def test_zero_for_identical_audio(metric) -> None:
    x = music()
    assert torch.equal(metric(x, x.clone()), torch.zeros(2, dtype=torch.float64))


@pytest.mark.parametrize("metric", METRICS)
def test_grows_with_corruption(metric) -> None:
    x = music()
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    values = [float(metric(x, x + level * noise).mean()) for level in (0.001, 0.01, 0.1)]
    assert 0 < values[0] < values[1] < values[2], values


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="must both be"):
        log_mel_l1(music(), music()[:, :-1])


def test_evaluate_vocoder() -> None:
    x = music()
    mels = clip_log_mel(x, 0.64)
    perfect = evaluate_vocoder(lambda m, num_samples: x[: m.shape[0]], x, mels, batch_size=2)
    assert perfect.log_mel_l1 == 0 and perfect.spectral_convergence == 0 and perfect.clips == 2
    few, more = (evaluate_vocoder(GriffinLimVocoder(n_iter=n), x, mels) for n in (2, 32))
    assert more.spectral_convergence < few.spectral_convergence
    assert 0 < more.log_mel_l1 < 5 and more.seconds_per_audio_second > 0
    with pytest.raises(ValueError, match="do not match"):
        evaluate_vocoder(GriffinLimVocoder(n_iter=1), x[:, :-160], mels)


def test_evaluate_vae() -> None:
    torch.manual_seed(0)
    vae = AudioVAE.from_config(block_out_channels=[8, 16, 16], norm_num_groups=8, layers_per_block=1).eval()
    x = music()
    mels = clip_log_mel(x, 0.64)
    result = evaluate_vae(vae, x, mels, GriffinLimVocoder(n_iter=2))
    assert set(result) == {"mel_l1", "log_mel_l1", "spectral_convergence", "log_stft_l1"}
    assert all(v > 0 and math.isfinite(v) for v in result.values())
    assert set(evaluate_vae(vae, x, mels)) == {"mel_l1"}
