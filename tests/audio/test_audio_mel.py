"""Log-mel front end: golden parity with the AudioLDM2 TacotronSTFT and the shape contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fluxmusic.audio import (
    HOP_LENGTH,
    N_MELS,
    frames_for,
    log_mel,
    mel_basis,
    samples_for,
    stft_magnitude,
)

GOLDEN = Path(__file__).parents[1] / "fixtures" / "golden" / "audioldm2_mel.safetensors"


@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    return load_file(str(GOLDEN))


def test_log_mel_matches_golden(golden: dict[str, torch.Tensor]) -> None:
    out = log_mel(golden["waveform"][None])
    assert out.shape == (1, 151, 64)
    expected = golden["log_mel"].T
    mask = expected > torch.log(torch.tensor(1e-4))
    assert mask.float().mean() > 0.5
    assert (out[0] - expected).abs()[mask].max() < 1e-4


def test_magnitude_and_basis_match_golden(golden: dict[str, torch.Tensor]) -> None:
    magnitude = stft_magnitude(golden["waveform"])
    torch.testing.assert_close(magnitude, golden["magnitude"], atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(mel_basis(), golden["mel_basis"], atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("num_samples", [513, 1000, 16000, 24001, 163840])
def test_shape_contract(num_samples: int) -> None:
    waveform = torch.randn(2, num_samples).clamp(-1, 1) * 0.3
    out = log_mel(waveform)
    assert out.shape == (2, 1 + num_samples // HOP_LENGTH, N_MELS)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert out.min() >= torch.log(torch.tensor(1e-5)) - 1e-6


def test_unbatched_and_batched_agree() -> None:
    waveform = torch.randn(3, 4000) * 0.2
    batched = log_mel(waveform)
    assert log_mel(waveform[1]).shape == (1 + 4000 // 160, 64)
    torch.testing.assert_close(log_mel(waveform[1]), batched[1])


def test_input_is_clipped_to_unit_range() -> None:
    waveform = torch.randn(1, 3200) * 3.0
    torch.testing.assert_close(log_mel(waveform), log_mel(waveform.clamp(-1, 1)))


def test_silence_gives_log_clamp() -> None:
    out = log_mel(torch.zeros(1, 1600))
    torch.testing.assert_close(out, torch.full_like(out, torch.log(torch.tensor(1e-5)).item()))


def test_float64_input_keeps_dtype(golden: dict[str, torch.Tensor]) -> None:
    out = log_mel(golden["waveform"][None].double())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), log_mel(golden["waveform"][None]), atol=1e-3, rtol=0)


def test_rejects_short_or_malformed_input() -> None:
    with pytest.raises(ValueError, match="at least 513"):
        log_mel(torch.zeros(1, 512))
    with pytest.raises(ValueError, match=r"\(B, S\)"):
        log_mel(torch.zeros(1, 1, 2000))
    with pytest.raises(ValueError, match="floating"):
        log_mel(torch.zeros(1, 2000, dtype=torch.int16))


def test_mel_basis_is_a_copy() -> None:
    basis = mel_basis()
    basis.zero_()
    assert mel_basis().abs().sum() > 0


def test_duration_helpers() -> None:
    assert frames_for(10.24) == 1024
    assert samples_for(10.24) == 163840
    assert samples_for(1.0, 44100) == 44100
    assert log_mel(torch.zeros(1, samples_for(10.24))).shape[1] == frames_for(10.24) + 1
    with pytest.raises(ValueError):
        frames_for(0.0)
