"""Audio file reading, writing and resampling (soundfile + soxr).

Every failure to read a file raises :class:`AudioFileError` naming the path and what to do; nothing here
ever substitutes silence for a missing or broken file. Samples that are NaN or infinite (possible only in
float-encoded files) make a file corrupt: :func:`read_audio` refuses them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from fluxmusic.audio.formats import WRITE_FORMATS
from fluxmusic.audio.mel import SAMPLE_RATE
from fluxmusic.errors import InputError

logger = logging.getLogger(__name__)


class AudioFileError(InputError):
    """An audio file is missing, unreadable, empty, or does not hold what was asked of it."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header.

    Attributes:
        sample_rate: Native sample rate in Hz.
        num_frames: Samples per channel.
        channels: Number of channels.
        format: soundfile format name (e.g. ``"WAV"``, ``"FLAC"``).
        subtype: soundfile subtype (e.g. ``"PCM_16"``, ``"FLOAT"``); only float subtypes hold NaN/Inf.
    """

    sample_rate: int
    num_frames: int
    channels: int
    format: str
    subtype: str = ""

    @property
    def duration_s(self) -> float:
        """Duration in seconds."""
        return self.num_frames / self.sample_rate


FLOAT_SUBTYPES: tuple[str, ...] = ("FLOAT", "DOUBLE")
"""The soundfile subtypes that store floats, the only encodings whose samples can be NaN or Inf."""


def _check_exists(path: Path) -> None:
    try:
        exists, is_file = path.exists(), path.is_file()
    except (OSError, ValueError) as err:  # a name too long for the file system, a NUL byte in it
        raise AudioFileError(f"{path}: cannot open this path ({err}); fix the path") from None
    if not exists:
        where = "" if path.is_absolute() else f" (relative to the working directory {os.getcwd()})"
        raise AudioFileError(f"{path}: audio file not found; check the path{where}")
    if not is_file:
        raise AudioFileError(f"{path}: is not a file; pass the path of an audio file")


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Read the header of an audio file.

    Args:
        path: A file soundfile can decode (wav, flac, ogg, mp3, ...).

    Returns:
        The file's :class:`AudioInfo`.

    Raises:
        AudioFileError: Missing, undecodable or empty file.
    """
    import soundfile as sf

    path = Path(path)
    _check_exists(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioFileError(
            f"{path}: cannot decode audio ({err}); re-encode it as wav/flac/ogg/mp3 or remove it"
        ) from err
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioFileError(f"{path}: contains no audio samples; re-export it or remove it from the data")
    return AudioInfo(
        int(info.samplerate), int(info.frames), int(info.channels), str(info.format), str(info.subtype)
    )


def count_non_finite(path: str | os.PathLike[str], start: int = 0, frames: int = -1) -> int:
    """Count the NaN/Inf samples (any channel) of a region of a file, reading it in blocks.

    Args:
        path: An audio file; files with a non-float subtype (see :data:`FLOAT_SUBTYPES`) return 0 unread.
        start: First frame.
        frames: Frames to scan (``-1``: to the end).

    Raises:
        AudioFileError: the file cannot be decoded.
    """
    import soundfile as sf

    path = Path(path)
    if audio_info(path).subtype not in FLOAT_SUBTYPES:
        return 0
    count = 0
    try:
        blocks = sf.blocks(str(path), blocksize=1 << 16, start=start, frames=frames, dtype="float32")
        for block in blocks:
            count += int(block.size - np.count_nonzero(np.isfinite(block)))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioFileError(f"{path}: cannot decode audio ({err}); re-encode it or remove it") from err
    return count


def resample(waveform: Tensor, orig_sr: int, new_sr: int) -> Tensor:
    """Resample along the last axis with soxr (high quality), keeping device and dtype.

    The output has about ``S * new_sr / orig_sr`` samples (soxr's rounding). Not differentiable.

    Args:
        waveform: Audio; any leading axes are treated as channels.
        orig_sr: Input sample rate in Hz.
        new_sr: Output sample rate in Hz.

    Returns:
        The resampled audio (the input itself when the rates are equal).

    Shapes:
        waveform: (..., S)
        output: (..., S')
    """
    if orig_sr <= 0 or new_sr <= 0:
        raise ValueError(f"sample rates must be > 0, got orig_sr={orig_sr}, new_sr={new_sr}")
    if orig_sr == new_sr:
        return waveform
    try:
        import soxr
    except ImportError as err:
        raise ImportError("resampling needs the 'soxr' package: pip install soxr") from err
    lead = waveform.shape[:-1]
    flat = waveform.detach().reshape(-1, waveform.shape[-1]).to("cpu", torch.float32).numpy()
    out = soxr.resample(np.ascontiguousarray(flat.T), orig_sr, new_sr)
    out = np.ascontiguousarray(out.reshape(out.shape[0], -1).T)
    return torch.from_numpy(out).reshape(*lead, out.shape[-1]).to(waveform.device, waveform.dtype)


def read_audio(
    path: str | os.PathLike[str],
    sample_rate: int | None = SAMPLE_RATE,
    offset: float = 0.0,
    duration: float | None = None,
    channel: int | None = 0,
) -> Tensor:
    """Read a mono float32 waveform from a file, optionally a window of it, resampled with soxr.

    Args:
        path: Audio file (wav, flac, ogg, mp3, ... anything libsndfile decodes).
        sample_rate: Output rate in Hz; ``None`` keeps the file's own rate (see :func:`audio_info`).
        offset: Start of the window in seconds, at the file's own rate (rounded to a sample).
        duration: Window length in seconds; ``None`` reads to the end. A window running past the end of
            the file is shortened, not padded.
        channel: Which channel to keep (channel 0 like the reference; negative counts from the end), or
            ``None`` to average all channels.

    Returns:
        The waveform, float32, on CPU.

    Raises:
        AudioFileError: Missing, undecodable or empty file, a window past the end, a bad channel, or
            NaN/Inf samples in what it would return (a corrupt file).

    Shapes:
        output: (S,)
    """
    import soundfile as sf

    path = Path(path)
    info = audio_info(path)
    if offset < 0 or (duration is not None and duration <= 0):
        raise InputError(f"offset must be >= 0 and duration > 0, got offset={offset}, duration={duration}")
    if channel is not None and not -info.channels <= channel < info.channels:
        raise AudioFileError(f"{path}: has {info.channels} channel(s), cannot take channel {channel}")
    start = int(round(offset * info.sample_rate))
    frames = -1 if duration is None else max(1, int(round(duration * info.sample_rate)))
    if start >= info.num_frames:
        raise AudioFileError(
            f"{path}: offset {offset:.3f} s is past the end of the file ({info.duration_s:.3f} s); "
            "use a smaller offset"
        )
    try:
        data, _ = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioFileError(f"{path}: cannot decode audio ({err}); re-encode it or remove it") from err
    if data.shape[0] == 0:
        raise AudioFileError(f"{path}: no audio samples in the requested window; check offset/duration")
    mono = data.mean(axis=1) if channel is None else data[:, channel]
    if not np.isfinite(mono).all():
        bad = int(mono.size - np.count_nonzero(np.isfinite(mono)))
        raise AudioFileError(
            f"{path}: corrupt: {bad} NaN or Inf sample(s) from {start / info.sample_rate:.3f} s; "
            "re-export the file or remove it"
        )
    waveform = torch.from_numpy(np.ascontiguousarray(mono))
    if sample_rate is not None:
        waveform = resample(waveform, info.sample_rate, sample_rate)
    return waveform


def write_audio(
    path: str | os.PathLike[str],
    waveform: Tensor,
    sample_rate: int = SAMPLE_RATE,
    format: str | None = None,
    subtype: str | None = None,
) -> Path:
    """Write a waveform to wav, flac, ogg (Vorbis) or mp3 with soundfile.

    Values are clipped to [-1, 1] (a warning is logged when that changes anything). Parent folders are
    created.

    Args:
        path: Output file.
        waveform: Float audio, mono or channels-first.
        sample_rate: Sample rate in Hz.
        format: One of ``wav``, ``flac``, ``ogg``, ``mp3``; default from the file suffix.
        subtype: soundfile subtype (default: PCM_16 for wav/flac, VORBIS, MPEG_LAYER_III).

    Returns:
        The written path.

    Shapes:
        waveform: (S,) or (C, S)
    """
    import soundfile as sf

    path = Path(path)
    name = (format or path.suffix.lstrip(".")).lower()
    if name not in WRITE_FORMATS:
        raise ValueError(
            f"cannot write {path}: unsupported format {name!r}; use one of {', '.join(WRITE_FORMATS)}"
        )
    if waveform.dim() not in (1, 2) or waveform.shape[-1] == 0:
        raise ValueError(f"waveform must be (S,) or (C, S) with S > 0, got shape {tuple(waveform.shape)}")
    data = waveform.detach().to("cpu", torch.float32)
    if not bool(torch.isfinite(data).all()):
        raise ValueError(f"cannot write {path}: waveform contains NaN or Inf")
    peak = float(data.abs().max())
    if peak > 1.0:
        logger.warning("clipping %s: peak %.3f exceeds 1.0", path, peak)
        data = data.clamp(-1.0, 1.0)
    frames = data.numpy() if data.dim() == 1 else data.T.numpy()
    sf_format, default_subtype = WRITE_FORMATS[name]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), frames, sample_rate, format=sf_format, subtype=subtype or default_subtype)
    return path
