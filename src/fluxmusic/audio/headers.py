"""The length an audio file's header declares, read without libsndfile (WAV, RF64 and AIFF files).

libsndfile quietly shortens a WAV or AIFF file whose sample data stops before the length its header
declares (a copy cut short, a recorder that crashed), so such a file reads as a shorter, valid one.
:func:`truncation` compares the declared length with what the file holds, so the data tools can call it
corrupt instead of training on a fragment. Other formats (FLAC, Ogg, MP3) fail to decode when cut short,
which the decoding checks see. Torch-free and soundfile-free: only the first chunk headers are read.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["declared_frames", "truncation"]

_UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # what streaming writers (pipes) leave in place of a length
_FRAME_TAGS = (1, 3, 6, 7, 0xFFFE)  # PCM, IEEE float, A-law, mu-law, extensible: block_align bytes a frame
_MAX_CHUNKS = 256


def _chunks(f: BinaryIO, order: str) -> Iterator[tuple[bytes, int]]:
    """``(chunk id, size)`` of each chunk after the 12-byte form header; the body may be read in between."""
    position = 12
    for _ in range(_MAX_CHUNKS):
        f.seek(position)
        head = f.read(8)
        if len(head) < 8:
            return
        size = struct.unpack(order + "I", head[4:])[0]
        yield head[:4], size
        position += 8 + size + (size & 1)  # chunks are padded to an even size


def _wav_frames(f: BinaryIO, order: str, rf64: bool) -> int | None:
    tag = block_align = ds64_data = None
    for chunk, size in _chunks(f, order):
        if chunk == b"ds64" and size >= 16:
            ds64_data = struct.unpack("<Q", f.read(16)[8:16])[0]
        elif chunk == b"fmt " and size >= 14:
            tag, _, _, _, block_align = struct.unpack(order + "HHIIH", f.read(14))
        elif chunk == b"data":
            if rf64 and size == 0xFFFFFFFF:
                size = ds64_data if ds64_data is not None else 0
            if size in _UNKNOWN_SIZES or not block_align or tag not in _FRAME_TAGS:
                return None
            return size // block_align
    return None


def _aiff_frames(f: BinaryIO) -> int | None:
    for chunk, size in _chunks(f, ">"):
        if chunk == b"COMM" and size >= 6:
            return struct.unpack(">hI", f.read(6))[1]
    return None


def declared_frames(path: str | os.PathLike[str]) -> int | None:
    """The number of frames a WAV (RIFF, RIFX, RF64) or AIFF/AIFC header declares.

    Returns:
        The declared frame count, or ``None`` for other formats, unreadable files and headers that
        declare no length (streamed files, compressed WAV encodings).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12:
                return None
            form, kind = head[:4], head[8:]
            if kind == b"WAVE" and form in (b"RIFF", b"RIFX", b"RF64"):
                return _wav_frames(f, ">" if form == b"RIFX" else "<", form == b"RF64")
            if form == b"FORM" and kind in (b"AIFF", b"AIFC"):
                return _aiff_frames(f)
    except (OSError, ValueError, struct.error):
        return None
    return None


def truncation(path: str | os.PathLike[str], frames: int, sample_rate: int) -> str | None:
    """Why a file is corrupt when it holds fewer frames than its header declares, else ``None``.

    Args:
        path: The audio file.
        frames: Frames the file actually holds (what libsndfile reports or decodes).
        sample_rate: Its sample rate in Hz (for the message in seconds).

    Returns:
        ``"truncated: the header declares 6.000 s (96000 frames) but the file holds 2.000 s (32000 frames)"``
        for a file cut short, ``None`` for a complete file or one whose format declares no length here.
    """
    declared = declared_frames(path)
    if declared is None or declared <= frames or sample_rate <= 0:
        return None
    return (
        f"truncated: the header declares {declared / sample_rate:.3f} s ({declared} frames) "
        f"but the file holds {frames / sample_rate:.3f} s ({frames} frames)"
    )
