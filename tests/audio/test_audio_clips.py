"""Training-clip rules: crop at the native rate, channel 0, zero mean, peak 0.5, zero padding, frames."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from fluxmusic.audio import (
    SilentAudioError,
    clip_log_mel,
    fit_frames,
    load_clip,
    normalize_peak,
    prepare_clip,
    write_audio,
)


def noise(seconds: float, sample_rate: int = 16000, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(int(seconds * sample_rate), generator=generator) * 0.6 - 0.2


def test_peak_mean_and_padding() -> None:
    clip = prepare_clip(noise(0.6), 16000, duration=1.0, offset=0.0)
    assert clip.waveform.shape == (16000,)
    assert not clip.silent and clip.num_valid == 9600
    valid = clip.waveform[: clip.num_valid]
    assert valid.abs().max().item() == pytest.approx(0.5, abs=1e-6)
    assert valid.mean().abs().item() < 1e-6
    assert torch.count_nonzero(clip.waveform[clip.num_valid :]) == 0


def test_given_offset_crops_exactly() -> None:
    source = noise(3.0)
    clip = prepare_clip(source, 16000, duration=1.0, offset=0.5)
    assert clip.offset_s == 0.5 and clip.num_valid == 16000
    torch.testing.assert_close(clip.waveform, normalize_peak(source[8000:24000]))
    with pytest.raises(ValueError, match="outside"):
        prepare_clip(source, 16000, duration=1.0, offset=3.5)


def test_seeded_crop_is_deterministic_and_in_range() -> None:
    source = noise(5.0)
    first = prepare_clip(source, 16000, duration=1.0, generator=torch.Generator().manual_seed(7))
    again = prepare_clip(source, 16000, duration=1.0, generator=torch.Generator().manual_seed(7))
    assert first.offset_s == again.offset_s
    torch.testing.assert_close(first.waveform, again.waveform)
    offsets = {
        prepare_clip(source, 16000, duration=1.0, generator=torch.Generator().manual_seed(s)).offset_s
        for s in range(8)
    }
    assert len(offsets) > 4
    assert all(0.0 <= o <= 4.0 for o in offsets)


def test_crop_happens_at_native_rate_then_resamples(sine: Callable[..., torch.Tensor]) -> None:
    source = sine(440, 2.0, sample_rate=44100)
    clip = prepare_clip(source, 44100, duration=1.0, offset=0.5)
    assert clip.waveform.shape == (16000,)
    assert clip.num_valid >= 15999
    assert clip.waveform.abs().max().item() == pytest.approx(0.5, abs=1e-6)


def test_keeps_channel_zero() -> None:
    stereo = torch.stack([noise(1.0, seed=1), torch.zeros(16000)])
    clip = prepare_clip(stereo, 16000, duration=1.0, offset=0.0)
    assert not clip.silent
    torch.testing.assert_close(clip.waveform, normalize_peak(stereo[0]))


@pytest.mark.parametrize("value", [0.0, 0.3])
def test_silent_input_is_flagged_never_divided(value: float) -> None:
    source = torch.full((16000,), value)
    clip = prepare_clip(source, 16000, duration=1.0, offset=0.0)
    assert clip.silent
    assert torch.isfinite(clip.waveform).all()
    assert clip.waveform.abs().max() < 1e-6
    with pytest.raises(SilentAudioError, match="silent"):
        normalize_peak(source)


def test_load_clip_matches_prepare_clip(tmp_path: Path) -> None:
    source = noise(3.0, sample_rate=22050)
    stereo = torch.stack([source, -source])
    path = write_audio(tmp_path / "stereo.wav", stereo, 22050, subtype="FLOAT")
    from_file = load_clip(path, duration=1.0, generator=torch.Generator().manual_seed(3))
    in_memory = prepare_clip(stereo, 22050, duration=1.0, generator=torch.Generator().manual_seed(3))
    assert from_file.offset_s == pytest.approx(in_memory.offset_s)
    torch.testing.assert_close(from_file.waveform, in_memory.waveform, atol=1e-5, rtol=0)
    assert load_clip(path, duration=1.0, offset=1.0).offset_s == 1.0


def test_fit_frames_pads_with_zero_and_truncates() -> None:
    mel = torch.randn(2, 10, 64) - 5.0
    padded = fit_frames(mel, 16)
    assert padded.shape == (2, 16, 64)
    torch.testing.assert_close(padded[:, :10], mel)
    assert torch.count_nonzero(padded[:, 10:]) == 0
    torch.testing.assert_close(fit_frames(mel, 4), mel[:, :4])
    assert fit_frames(mel[0], 10).shape == (10, 64)


def test_clip_log_mel_training_frames() -> None:
    waveform = torch.randn(2, 163840) * 0.1
    assert clip_log_mel(waveform).shape == (2, 1024, 64)
    short = clip_log_mel(waveform[:, :80000], duration=10.24)
    assert short.shape == (2, 1024, 64)
    assert torch.count_nonzero(short[:, 1 + 80000 // 160 :]) == 0
