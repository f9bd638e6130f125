"""Loading one manifest item's audio for training, with the corruption checks every loader shares.

An item is usable when its file exists, decodes, holds as many frames as its header declares (a
truncated WAV/AIFF is corrupt, not a shorter clip) and gives finite samples. Anything else raises
:class:`fluxmusic.audio.AudioFileError` (or a ``ValueError`` such as ``SilentAudioError``) with the path
and the reason; corrupt files' reasons start with ``corrupt:``. The datasets turn these into
``SkippedItem`` records and ``preprocess`` into its skip log: nothing is trained on, nothing is silent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from fluxmusic.data.manifest import ManifestItem

if TYPE_CHECKING:
    from fluxmusic.audio.io import AudioInfo

__all__ = ["AudioSample", "item_info", "read_item_clip", "require_finite"]


@dataclass
class AudioSample:
    """A training clip with its (bpm, beat phase), (0, 0) without a tempo. Shapes: waveform (S,) at 16 kHz."""

    index: int
    waveform: Tensor
    caption: str
    offset_s: float
    tempo: tuple[float, float] = (0.0, 0.0)


def item_info(item: ManifestItem) -> AudioInfo:
    """The header of an item's audio file, checked to be present and complete.

    Raises:
        fluxmusic.audio.AudioFileError: missing (the message gives the manifest's own path and says it is
            relative to the manifest's folder), undecodable, empty, or truncated (``corrupt: truncated``).
    """
    from fluxmusic.audio.headers import truncation
    from fluxmusic.audio.io import AudioFileError, audio_info

    try:
        present = item.path.is_file()
    except (OSError, ValueError) as err:
        raise AudioFileError(f"{item.path}: cannot open this path ({err}); fix it in the manifest") from None
    if not present and not item.path.exists():
        given = item.wav or str(item.path)
        where = "" if os.path.isabs(os.path.expanduser(given)) else ", relative to the manifest's folder"
        raise AudioFileError(
            f"{item.path}: audio file not found (the manifest says {given!r}{where}); fix the path or "
            "drop the item (`fluxmusic data check MANIFEST --write-clean CLEAN` lists and drops them all)"
        )
    info = audio_info(item.path)
    cut = truncation(item.path, info.num_frames, info.sample_rate)
    if cut is not None:
        raise AudioFileError(f"{item.path}: corrupt: {cut}; re-export the file or remove it")
    return info


def require_finite(item: ManifestItem, info: AudioInfo) -> None:
    """Scan an item's whole region for NaN/Inf samples (float-encoded files only; others cannot hold any).

    Training checks each window it reads; a one-pass tool (preprocess) calls this to skip the whole item
    even when its windows miss the bad samples.

    Raises:
        fluxmusic.audio.AudioFileError: ``corrupt: N NaN or Inf sample(s)``.
    """
    from fluxmusic.audio.io import AudioFileError, count_non_finite

    start = int(round((item.offset or 0.0) * info.sample_rate))
    frames = -1 if item.duration is None else max(1, int(round(item.duration * info.sample_rate)))
    bad = count_non_finite(item.path, start, frames)
    if bad:
        raise AudioFileError(
            f"{item.path}: corrupt: {bad} NaN or Inf sample(s) in the item; re-export or remove it"
        )


def read_item_clip(
    item: ManifestItem,
    duration: float,
    generator: torch.Generator,
    max_tries: int = 3,
    silence_threshold: float | None = None,
    start_s: float | None = None,
) -> AudioSample:
    """Make a training clip from an item with the reference's rules, inside the item's region.

    A window of ``duration`` seconds is drawn uniformly inside the region (``item.offset`` /
    ``item.duration``), read at the file's own rate, and passed through ``prepare_clip`` (resample to
    16 kHz, channel 0, remove the mean, peak 0.5, right-pad). A silent window is redrawn up to
    ``max_tries`` times with the same generator.

    Raises:
        fluxmusic.audio.AudioFileError: the file cannot be read, or is corrupt (truncated, NaN/Inf samples).
        fluxmusic.audio.SilentAudioError: every tried window was silent.

    Shapes:
        AudioSample.waveform: (round(duration * 16000),)
    """
    from fluxmusic.audio.clips import (
        SILENCE_THRESHOLD,
        NonFiniteAudioError,
        SilentAudioError,
        draw_offset,
        prepare_clip,
    )
    from fluxmusic.audio.io import AudioFileError, read_audio

    threshold = SILENCE_THRESHOLD if silence_threshold is None else silence_threshold
    info = item_info(item)
    rate = info.sample_rate
    region_start = int(round((item.offset or 0.0) * rate))
    if region_start >= info.num_frames:
        raise AudioFileError(f"{item.path}: offset {item.offset} s is past the end ({info.duration_s:.3f} s)")
    region_frames = info.num_frames - region_start
    if item.duration is not None:
        region_frames = min(region_frames, int(round(item.duration * rate)))
    window = int(round(duration * rate))
    tries = 1 if start_s is not None else max(1, max_tries)
    for _ in range(tries):
        if start_s is None:
            start = region_start + draw_offset(region_frames, window, generator)
        else:
            start = region_start + int(round(start_s * rate))
        length = min(window, region_start + region_frames - start)
        audio = read_audio(
            item.path, sample_rate=None, offset=start / rate, duration=length / rate, channel=0
        )
        try:
            clip = prepare_clip(audio, rate, duration, offset=0.0, silence_threshold=threshold)
        except NonFiniteAudioError as err:
            raise AudioFileError(f"{item.path}: corrupt: {err}") from None
        if not bool(torch.isfinite(clip.waveform).all()):
            raise AudioFileError(f"{item.path}: corrupt: the clip at {start / rate:.3f} s is not finite")
        if not clip.silent:
            return AudioSample(
                item.index, clip.waveform, item.caption, start / rate, item.tempo_at(start / rate)
            )
    raise SilentAudioError(f"{item.path}: {tries} window(s) of {duration:g} s were silent")
