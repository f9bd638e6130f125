"""AudioLDM2 log-mel front end (the TacotronSTFT settings FluxMusic trains on).

The front end turns a 16 kHz waveform into the time-major log-mel spectrogram the AudioLDM2 VAE
encodes: clip to [-1, 1], centered STFT with reflect padding (n_fft 1024, hop 160, periodic Hann window
of 1024), magnitude, a 64-band Slaney mel filterbank over 0-8000 Hz, then ``log(clamp(mel, 1e-5))``.
"""

from __future__ import annotations

import functools
import logging

import torch
from torch import Tensor

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
N_FFT = 1024
HOP_LENGTH = 160
WIN_LENGTH = 1024
N_MELS = 64
F_MIN = 0.0
F_MAX = 8000.0
LOG_CLAMP = 1e-5
N_FREQS = N_FFT // 2 + 1


def frames_for(duration_s: float) -> int:
    """Number of log-mel frames a clip of ``duration_s`` seconds is fitted to for training.

    This is the reference's ``duration * 100`` rule (10.24 s -> 1024 frames). Note that :func:`log_mel`
    of exactly ``samples_for(duration_s)`` samples returns one frame more (``1 + S // 160``); the
    training frame rule (:func:`fluxmusic.audio.clips.fit_frames`) truncates it.

    Args:
        duration_s: Clip duration in seconds (> 0).

    Returns:
        ``round(duration_s * SAMPLE_RATE / HOP_LENGTH)``.
    """
    if duration_s <= 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    return int(round(duration_s * SAMPLE_RATE / HOP_LENGTH))


def samples_for(duration_s: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Number of samples in ``duration_s`` seconds at ``sample_rate`` (10.24 s at 16 kHz -> 163840).

    Args:
        duration_s: Duration in seconds (> 0).
        sample_rate: Sample rate in Hz.

    Returns:
        ``round(duration_s * sample_rate)``.
    """
    if duration_s <= 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    return int(round(duration_s * sample_rate))


@functools.lru_cache(maxsize=8)
def _cached_mel_basis(device: torch.device, dtype: torch.dtype) -> Tensor:
    import librosa

    basis = librosa.filters.mel(
        sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=F_MIN, fmax=F_MAX, htk=False, norm="slaney"
    )
    return torch.from_numpy(basis).to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=8)
def _cached_window(device: torch.device, dtype: torch.dtype) -> Tensor:
    return torch.hann_window(WIN_LENGTH, periodic=True, device=device, dtype=dtype)


def mel_basis(device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """The Slaney-scale, Slaney-normalised mel filterbank (librosa) used by AudioLDM2.

    The basis is built once per (device, dtype) and cached; this returns a copy, so callers may modify it.

    Args:
        device: Target device (default CPU).
        dtype: Target floating dtype.

    Returns:
        The filterbank.

    Shapes:
        output: (N_MELS, N_FREQS) = (64, 513)
    """
    return _cached_mel_basis(torch.device(device or "cpu"), dtype).clone()


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def stft_magnitude(waveform: Tensor) -> Tensor:
    """Magnitude STFT with the AudioLDM2 settings (centered, reflect padding of n_fft / 2).

    Args:
        waveform: Audio at 16 kHz; values are clipped to [-1, 1]. At least ``N_FFT // 2 + 1`` samples.

    Returns:
        Magnitudes in float32 (float64 for float64 input).

    Shapes:
        waveform: (B, S) or (S,)
        output: (B, 513, 1 + S // 160) or (513, 1 + S // 160)
    """
    if waveform.dim() not in (1, 2):
        raise ValueError(f"waveform must be (B, S) or (S,), got shape {tuple(waveform.shape)}")
    if waveform.shape[-1] <= N_FFT // 2:
        raise ValueError(
            f"waveform has {waveform.shape[-1]} samples; the centered STFT needs at least {N_FFT // 2 + 1} "
            f"({(N_FFT // 2 + 1) / SAMPLE_RATE * 1000:.0f} ms at {SAMPLE_RATE} Hz)"
        )
    if not waveform.is_floating_point():
        raise ValueError(f"waveform must be a floating tensor, got {waveform.dtype}")
    dtype = _compute_dtype(waveform.dtype)
    x = waveform.to(dtype).clamp(-1.0, 1.0)
    spec = torch.stft(
        x,
        n_fft=N_FFT,
        hop_length=HOP_LENGTH,
        win_length=WIN_LENGTH,
        window=_cached_window(x.device, dtype),
        center=True,
        pad_mode="reflect",
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    return spec.abs()


def log_mel(waveform: Tensor) -> Tensor:
    """AudioLDM2 log-mel spectrogram, time-major like the VAE input.

    No padding or truncation to a training length is done here (see
    :func:`fluxmusic.audio.clips.fit_frames`). Computation runs in float32 (float64 for float64 input);
    the result is returned in the input dtype.

    Args:
        waveform: Mono audio at 16 kHz; values outside [-1, 1] are clipped.

    Returns:
        ``log(clamp(mel_basis @ |STFT|, 1e-5))``, transposed to (time, mel).

    Shapes:
        waveform: (B, S) or (S,)
        output: (B, 1 + S // 160, 64) or (1 + S // 160, 64)
    """
    magnitude = stft_magnitude(waveform)
    basis = _cached_mel_basis(magnitude.device, magnitude.dtype)
    mel = torch.matmul(basis, magnitude)
    return mel.clamp(min=LOG_CLAMP).log().transpose(-1, -2).to(waveform.dtype)
