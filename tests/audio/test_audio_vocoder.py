"""Vocoders: exact HiFi-GAN config, output-length handling, save/load, Griffin-Lim fallback."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from fluxmusic.audio import (
    AUDIOLDM2_VOCODER_CONFIG,
    GriffinLimVocoder,
    HifiGanVocoder,
    Vocoder,
    log_mel,
    stft_magnitude,
)
from fluxmusic.hub import WeightsNotFoundError

VOCODER_PARAMETERS = 55_264_897


def test_exact_config_parameter_count(audioldm2_vocoder: HifiGanVocoder) -> None:
    count = sum(p.numel() for p in audioldm2_vocoder.parameters())
    assert count == VOCODER_PARAMETERS
    assert round(count / 1e6, 1) == 55.3
    config = audioldm2_vocoder.hifigan.config
    assert all(getattr(config, k) == v for k, v in AUDIOLDM2_VOCODER_CONFIG.items())
    assert (audioldm2_vocoder.sample_rate, audioldm2_vocoder.hop_length, audioldm2_vocoder.n_mels) == (
        16000,
        160,
        64,
    )


def test_exact_config_native_length_and_trimming(audioldm2_vocoder: HifiGanVocoder) -> None:
    mel = torch.randn(1, 4, 64) - 4.0
    with torch.inference_mode():
        native = audioldm2_vocoder.hifigan(mel)
        trimmed = audioldm2_vocoder(mel)
    assert native.shape == (1, 160 * 4 + 32)
    assert trimmed.shape == (1, 640)
    torch.testing.assert_close(trimmed, native[:, :640])


def test_requested_length(tiny_vocoder: HifiGanVocoder) -> None:
    mel = torch.randn(1, 1, 16, 64)
    with torch.inference_mode():
        native = tiny_vocoder.hifigan(mel[:, 0])
        assert native.shape == (1, 160 * 16 + 32)
        out = tiny_vocoder(mel, num_samples=2000)
        assert out.shape == (1, 2000)
        torch.testing.assert_close(out, native[:, :2000])
        assert tiny_vocoder(mel, num_samples=160 * 16 + 32).shape == (1, 2592)
        with pytest.raises(ValueError, match="exceeds"):
            tiny_vocoder(mel, num_samples=160 * 16 + 33)
    with pytest.raises(ValueError, match=r"\(B, T, 64\)"):
        tiny_vocoder(torch.randn(1, 16, 80))


def test_vocoders_satisfy_protocol(tiny_vocoder: HifiGanVocoder) -> None:
    assert isinstance(tiny_vocoder, Vocoder)
    assert isinstance(GriffinLimVocoder(), Vocoder)
    assert GriffinLimVocoder().sample_rate == 16000


def test_invalid_config_key() -> None:
    with pytest.raises(ValueError, match="not_a_key"):
        HifiGanVocoder.from_config(not_a_key=3)


def test_save_and_load_local_folder(tiny_vocoder: HifiGanVocoder, tmp_path: Path) -> None:
    tiny_vocoder.save_pretrained(tmp_path / "vocoder")
    for folder, subfolder in [(tmp_path, "vocoder"), (tmp_path / "vocoder", None)]:
        loaded = HifiGanVocoder.from_pretrained(folder, subfolder=subfolder)
        state, expected = loaded.state_dict(), tiny_vocoder.state_dict()
        assert state.keys() == expected.keys()
        assert all(torch.equal(state[k], expected[k]) for k in expected)
    mel = torch.randn(1, 8, 64)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(mel), tiny_vocoder(mel))


def test_missing_folder_and_offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "vocoder").mkdir()
    with pytest.raises(WeightsNotFoundError, match="missing config.json, model.safetensors"):
        HifiGanVocoder.from_pretrained(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match=r"cvssp/audioldm2/vocoder/config\.json.*offline") as err:
        HifiGanVocoder.from_pretrained("cvssp/audioldm2", cache_dir=tmp_path / "cache")
    assert "\n" not in str(err.value)


def test_griffin_lim_length_and_determinism(sine: Callable[..., torch.Tensor]) -> None:
    mel = log_mel(torch.stack([sine(440, 0.5), sine(1000, 0.5)]))
    vocoder = GriffinLimVocoder(n_iter=8)
    out = vocoder(mel)
    assert out.shape == (2, 160 * mel.shape[1]) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.abs().max() > 0.05
    assert torch.equal(out, vocoder(mel))
    assert vocoder(mel[:, None], num_samples=8000).shape == (2, 8000)
    assert vocoder(mel, num_samples=20000).shape == (2, 20000)


@pytest.mark.parametrize(("freq", "tolerance"), [(440.0, 30.0), (1000.0, 50.0)])
def test_griffin_lim_recovers_dominant_frequency(
    freq: float,
    tolerance: float,
    sine: Callable[..., torch.Tensor],
    dominant_hz: Callable[[torch.Tensor, int], float],
) -> None:
    out = GriffinLimVocoder()(log_mel(sine(freq, 1.0)[None]))
    assert abs(dominant_hz(out[0], 16000) - freq) < tolerance


def test_griffin_lim_iterations_improve_consistency() -> None:
    t = torch.arange(16000) / 16000
    chirp = 0.4 * torch.sin(2 * math.pi * (300 * t + 400 * t**2))
    mel = log_mel(chirp[None])
    target = GriffinLimVocoder().magnitude(mel)

    def error(n_iter: int) -> float:
        audio = GriffinLimVocoder(n_iter=n_iter, momentum=0.0)(mel)
        rebuilt = stft_magnitude(audio)[..., : target.shape[-1]]
        return ((rebuilt - target).norm() / target.norm()).item()

    assert error(16) < 0.8 * error(1)
