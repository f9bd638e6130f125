"""Lean audio stages: bf16 channels-last VAE decode and bf16 HiFi-GAN within the stated tolerances of fp32.

Stated tolerances (random weights; the exact-config numbers are in ``benchmarks/bench_generate.py``):
VAE decode in bf16 + channels-last: log-mel within 3% relative L2 of fp32; HiFi-GAN in bf16: waveform
within 3% relative L2 of fp32.
"""

from __future__ import annotations

import torch

from fluxmusic.audio import AudioVAE, HifiGanVocoder

VAE_REL_L2 = 0.03
VOCODER_REL_L2 = 0.03


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def test_bf16_channels_last_decode_is_within_tolerance(tiny_vae: AudioVAE) -> None:
    latent = torch.randn(2, 8, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = tiny_vae.decode(latent)
        tiny_vae.lean_decode_()
        lean = tiny_vae.decode(latent)
        encoded = tiny_vae.encode(ref).mean  # the encoder keeps its own precision
    assert tiny_vae.decode_dtype == torch.bfloat16
    assert lean.dtype == torch.float32 and lean.shape == ref.shape == (2, 1, 64, 64)
    assert lean.is_contiguous()
    assert _rel(lean, ref) < VAE_REL_L2
    assert encoded.dtype == torch.float32
    tiny_vae.lean_decode_(torch.float32, channels_last=False)  # fp32 again (the weights stay bf16-rounded)
    assert tiny_vae.decode_dtype is None


def test_bf16_vocoder_is_within_tolerance(tiny_vocoder: HifiGanVocoder) -> None:
    mel = torch.randn(2, 32, 64, generator=torch.Generator().manual_seed(2)) - 4.0
    with torch.inference_mode():
        ref = tiny_vocoder(mel)
        lean = tiny_vocoder.lean_()(mel, num_samples=5000)
    assert lean.dtype == torch.float32 and lean.shape == (2, 5000)
    assert next(tiny_vocoder.parameters()).dtype == torch.bfloat16
    assert _rel(lean, ref[:, :5000]) < VOCODER_REL_L2
