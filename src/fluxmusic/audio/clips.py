"""Training-clip rules of the reference (AudioLDM-style data loading).

A training example is made as follows: crop a window of ``duration`` seconds at the file's own sample rate
(offset uniform over the valid starts, drawn from a ``torch.Generator``), resample to 16 kHz, keep channel
0, subtract the mean, scale the peak to 0.5, right-pad with zeros to ``duration * 16000`` samples. Its
log-mel is then padded or truncated to ``duration * 100`` frames, padded frames holding the value 0.

Silence is handled explicitly: a window whose peak (after removing the mean) is at most
``silence_threshold`` cannot be scaled to 0.5; :func:`normalize_peak` raises :class:`SilentAudioError`,
and :func:`prepare_clip` / :func:`load_clip` return it unscaled with ``Clip.silent = True`` so a data
pipeline can skip it. A window holding NaN/Inf raises :class:`NonFiniteAudioError` (never a NaN clip).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import TypedDict, Unpack

import torch
import torch.nn.functional as F
from torch import Tensor

from fluxmusic.audio.io import audio_info, read_audio, resample
from fluxmusic.audio.mel import SAMPLE_RATE, frames_for, log_mel, samples_for
from fluxmusic.errors import InputError

logger = logging.getLogger(__name__)

PEAK: float = 0.5
SILENCE_THRESHOLD: float = 1e-5
DEFAULT_DURATION_S: float = 10.24


class SilentAudioError(InputError):
    """A waveform is (numerically) silent, so its peak cannot be normalised."""


class NonFiniteAudioError(InputError):
    """A waveform holds NaN or Inf samples (a corrupt source), so it cannot become a training clip."""


@dataclass(frozen=True)
class Clip:
    """A training clip.

    Attributes:
        waveform: Mean-removed, peak-0.5, zero-padded mono audio at 16 kHz (unscaled when ``silent``).
        offset_s: Start of the crop in the source, in seconds.
        num_valid: Samples of ``waveform`` that came from the source (the rest is padding).
        silent: True when the window was silent and therefore not peak-normalised.

    Shapes:
        waveform: (S,) with S = round(duration * 16000)
    """

    waveform: Tensor
    offset_s: float
    num_valid: int
    silent: bool


def draw_offset(num_frames: int, window: int, generator: torch.Generator | None = None) -> int:
    """Draw a crop start uniformly from ``[0, num_frames - window]`` (0 when the source is shorter).

    Args:
        num_frames: Source length in samples.
        window: Window length in samples.
        generator: Source of randomness (CPU generator); ``None`` uses torch's global one.

    Returns:
        The start sample.
    """
    high = num_frames - window
    if high <= 0:
        return 0
    return int(torch.randint(0, high + 1, (1,), generator=generator).item())


def normalize_peak(
    waveform: Tensor, peak: float = PEAK, silence_threshold: float = SILENCE_THRESHOLD
) -> Tensor:
    """Subtract the mean and scale so that ``max |x| == peak``.

    Args:
        waveform: Mono audio.
        peak: Target peak amplitude.
        silence_threshold: Largest mean-removed peak treated as silence.

    Returns:
        The normalised waveform.

    Raises:
        SilentAudioError: The mean-removed peak is at most ``silence_threshold``.
        NonFiniteAudioError: The waveform holds NaN/Inf, or overflows float32 once centred.

    Shapes:
        waveform: (S,)
        output: (S,)
    """
    centered = waveform - waveform.mean()
    current = float(centered.abs().max()) if centered.numel() else 0.0
    if not math.isfinite(current):
        raise NonFiniteAudioError(
            f"waveform holds NaN or Inf samples (or overflows once centred, peak {current}); skip this clip"
        )
    if current <= silence_threshold:
        raise SilentAudioError(
            f"waveform is silent (peak {current:.3g} <= {silence_threshold:.3g}); skip this clip"
        )
    return centered * (peak / current)


def fit_length(waveform: Tensor, num_samples: int) -> Tensor:
    """Right-pad with zeros or truncate the last axis to ``num_samples``.

    Shapes:
        waveform: (..., S)
        output: (..., num_samples)
    """
    length = waveform.shape[-1]
    if length >= num_samples:
        return waveform[..., :num_samples]
    return F.pad(waveform, (0, num_samples - length))


def fit_frames(mel: Tensor, num_frames: int) -> Tensor:
    """The reference's frame rule: pad (with value 0) or truncate the time axis to ``num_frames``.

    Args:
        mel: Time-major log-mel.
        num_frames: Target number of frames (1024 for 10.24 s, see :func:`fluxmusic.audio.frames_for`).

    Returns:
        The fitted log-mel; padded frames are exactly 0 (as in the reference, not log(1e-5)).

    Shapes:
        mel: (..., T, F)
        output: (..., num_frames, F)
    """
    if mel.dim() < 2:
        raise ValueError(f"mel must be (..., T, F), got shape {tuple(mel.shape)}")
    length = mel.shape[-2]
    if length >= num_frames:
        return mel[..., :num_frames, :]
    return F.pad(mel, (0, 0, 0, num_frames - length))


def prepare_clip(
    waveform: Tensor,
    orig_sr: int,
    duration: float = DEFAULT_DURATION_S,
    *,
    offset: float | None = None,
    generator: torch.Generator | None = None,
    sample_rate: int = SAMPLE_RATE,
    silence_threshold: float = SILENCE_THRESHOLD,
) -> Clip:
    """Apply the training-clip rules to an in-memory waveform.

    Args:
        waveform: Source audio at ``orig_sr``; channel 0 is kept.
        orig_sr: Source sample rate in Hz.
        duration: Clip length in seconds.
        offset: Crop start in seconds; ``None`` draws it from ``generator``.
        generator: Randomness for the crop start.
        sample_rate: Output rate in Hz.
        silence_threshold: See :func:`normalize_peak`.

    Returns:
        The :class:`Clip`.

    Shapes:
        waveform: (C, S) or (S,)
        Clip.waveform: (round(duration * sample_rate),)
    """
    if waveform.dim() not in (1, 2) or waveform.shape[-1] == 0:
        raise ValueError(f"waveform must be (C, S) or (S,) with S > 0, got {tuple(waveform.shape)}")
    mono = waveform if waveform.dim() == 1 else waveform[0]
    window = samples_for(duration, orig_sr)
    if offset is None:
        start = draw_offset(mono.shape[-1], window, generator)
    else:
        start = int(round(offset * orig_sr))
        if not 0 <= start < mono.shape[-1]:
            raise ValueError(f"offset {offset} s is outside the source ({mono.shape[-1] / orig_sr:.3f} s)")
    cropped = mono[start : start + window].float()
    return _finish(cropped, orig_sr, start / orig_sr, duration, sample_rate, silence_threshold)


class ClipRules(TypedDict, total=False):
    """The keyword arguments :func:`load_clip` shares with :func:`prepare_clip` (documented there)."""

    offset: float | None
    generator: torch.Generator | None
    sample_rate: int
    silence_threshold: float


def load_clip(
    path: str | os.PathLike[str], duration: float = DEFAULT_DURATION_S, **rules: Unpack[ClipRules]
) -> Clip:
    """Apply the training-clip rules to a file, reading only the cropped window.

    Same rules and arguments as :func:`prepare_clip` (:class:`ClipRules`); the crop is drawn from the
    file's header length.

    Raises:
        fluxmusic.audio.AudioFileError: The file is missing, unreadable or empty.

    Shapes:
        Clip.waveform: (round(duration * sample_rate),)
    """
    info = audio_info(path)
    offset, generator = rules.pop("offset", None), rules.pop("generator", None)
    if offset is None:
        start = draw_offset(info.num_frames, samples_for(duration, info.sample_rate), generator)
        offset = start / info.sample_rate
    cropped = read_audio(path, sample_rate=None, offset=offset, duration=duration, channel=0)
    return _finish(cropped, info.sample_rate, offset, duration, **rules)


def _finish(
    cropped: Tensor,
    orig_sr: int,
    offset_s: float,
    duration: float,
    sample_rate: int = SAMPLE_RATE,
    silence_threshold: float = SILENCE_THRESHOLD,
) -> Clip:
    audio = resample(cropped, orig_sr, sample_rate)
    target = samples_for(duration, sample_rate)
    num_valid = min(audio.shape[-1], target)
    try:
        audio = normalize_peak(audio, silence_threshold=silence_threshold)
        silent = False
    except SilentAudioError:
        logger.debug("silent window at %.3f s", offset_s)
        audio = audio - audio.mean()
        silent = True
    return Clip(fit_length(audio, target), offset_s, num_valid, silent)


def clip_log_mel(waveform: Tensor, duration: float = DEFAULT_DURATION_S) -> Tensor:
    """Log-mel of training clips fitted to ``frames_for(duration)`` frames (the VAE's training input).

    Args:
        waveform: 16 kHz clips, e.g. ``Clip.waveform`` stacked.
        duration: Clip length in seconds (10.24 s -> 1024 frames).

    Returns:
        The fitted log-mel (padded frames are 0).

    Shapes:
        waveform: (B, S)
        output: (B, frames_for(duration), 64)
    """
    return fit_frames(log_mel(waveform), frames_for(duration))
