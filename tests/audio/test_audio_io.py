"""Audio file I/O and resampling: round trips, windows, channels, and explicit errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fluxmusic.audio import AudioFileError, audio_info, read_audio, resample, write_audio


@pytest.mark.parametrize("suffix", ["wav", "flac"])
def test_lossless_round_trip(tmp_path: Path, suffix: str, sine: Callable[..., torch.Tensor]) -> None:
    waveform = sine(440, 0.5) * 0.9
    path = write_audio(tmp_path / f"tone.{suffix}", waveform, 16000)
    info = audio_info(path)
    assert (info.sample_rate, info.num_frames, info.channels) == (16000, 8000, 1)
    assert info.duration_s == pytest.approx(0.5)
    back = read_audio(path)
    assert back.shape == (8000,) and back.dtype == torch.float32
    torch.testing.assert_close(back, waveform, atol=1.0 / 32768 + 1e-6, rtol=0)


@pytest.mark.parametrize("suffix", ["ogg", "mp3"])
def test_lossy_formats_write_and_read(
    tmp_path: Path,
    suffix: str,
    sine: Callable[..., torch.Tensor],
    dominant_hz: Callable[[torch.Tensor, int], float],
) -> None:
    path = write_audio(tmp_path / f"tone.{suffix}", sine(1000, 1.0), 16000)
    back = read_audio(path)
    assert abs(back.shape[0] - 16000) < 2000
    assert dominant_hz(back, 16000) == pytest.approx(1000, abs=5)


def test_explicit_format_and_parent_folders(tmp_path: Path, sine: Callable[..., torch.Tensor]) -> None:
    path = write_audio(tmp_path / "a" / "b" / "noext", sine(440, 0.1), 16000, format="flac")
    assert audio_info(path).format == "FLAC"


def test_resampling_on_read(
    tmp_path: Path, sine: Callable[..., torch.Tensor], dominant_hz: Callable[[torch.Tensor, int], float]
) -> None:
    path = write_audio(tmp_path / "tone.wav", sine(440, 1.0, sample_rate=44100), 44100)
    back = read_audio(path, sample_rate=16000)
    assert abs(back.shape[0] - 16000) <= 1
    assert dominant_hz(back, 16000) == pytest.approx(440, abs=2)
    native = read_audio(path, sample_rate=None)
    assert native.shape == (44100,)


def test_resample_keeps_axes_dtype_and_identity() -> None:
    waveform = torch.randn(2, 3, 22050, dtype=torch.float64)
    out = resample(waveform, 22050, 16000)
    assert out.shape == (2, 3, 16000) and out.dtype == torch.float64
    torch.testing.assert_close(resample(out[0, 0], 16000, 16000), out[0, 0])
    torch.testing.assert_close(resample(out[1], 16000, 16000), out[1])
    with pytest.raises(ValueError):
        resample(waveform, 0, 16000)


def test_window_offset_and_duration(tmp_path: Path) -> None:
    waveform = torch.linspace(-0.5, 0.5, 16000)
    path = write_audio(tmp_path / "ramp.flac", waveform, 16000, subtype="PCM_24")
    window = read_audio(path, offset=0.25, duration=0.5)
    assert window.shape == (8000,)
    torch.testing.assert_close(window, waveform[4000:12000], atol=1e-6, rtol=0)
    tail = read_audio(path, offset=0.75, duration=1.0)
    assert tail.shape == (4000,)


def test_channels(tmp_path: Path, sine: Callable[..., torch.Tensor]) -> None:
    stereo = torch.stack([sine(440, 0.2), sine(880, 0.2) * 0.5])
    path = write_audio(tmp_path / "stereo.wav", stereo, 16000, subtype="FLOAT")
    assert audio_info(path).channels == 2
    torch.testing.assert_close(read_audio(path), stereo[0])
    torch.testing.assert_close(read_audio(path, channel=1), stereo[1])
    torch.testing.assert_close(read_audio(path, channel=-1), stereo[1])
    torch.testing.assert_close(read_audio(path, channel=None), stereo.mean(0))
    with pytest.raises(AudioFileError, match="2 channel"):
        read_audio(path, channel=2)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    with pytest.raises(AudioFileError, match="nope.wav") as err:
        read_audio(path)
    assert "not found" in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, ValueError)


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF not really a wave file" + bytes(range(256)) * 4)
    with pytest.raises(AudioFileError, match="corrupt.wav.*cannot decode"):
        read_audio(path)


def test_empty_files(tmp_path: Path) -> None:
    zero_bytes = tmp_path / "zero.wav"
    zero_bytes.write_bytes(b"")
    with pytest.raises(AudioFileError, match="zero.wav"):
        read_audio(zero_bytes)
    no_frames = tmp_path / "noframes.wav"
    sf.write(str(no_frames), np.zeros((0, 1), dtype=np.float32), 16000)
    with pytest.raises(AudioFileError, match="noframes.wav.*no audio samples"):
        read_audio(no_frames)


def test_directory_and_offset_past_end(tmp_path: Path, sine: Callable[..., torch.Tensor]) -> None:
    with pytest.raises(AudioFileError, match="not a file"):
        read_audio(tmp_path)
    path = write_audio(tmp_path / "short.wav", sine(440, 0.1), 16000)
    with pytest.raises(AudioFileError, match="past the end"):
        read_audio(path, offset=0.5)


def test_write_rejects_bad_input(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, sine: Callable[..., torch.Tensor]
) -> None:
    with pytest.raises(ValueError, match="unsupported format"):
        write_audio(tmp_path / "x.aiff2", sine(440, 0.1))
    with pytest.raises(ValueError, match="NaN"):
        write_audio(tmp_path / "x.wav", torch.full((100,), float("nan")))
    with caplog.at_level(logging.WARNING, logger="fluxmusic.audio.io"):
        path = write_audio(tmp_path / "loud.wav", sine(440, 0.1, amplitude=2.0))
    assert "clipping" in caplog.text
    assert read_audio(path).abs().max() <= 1.0
