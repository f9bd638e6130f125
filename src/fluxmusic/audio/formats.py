"""The audio file formats fluxmusic writes (torch-free, so the command line's ``--help`` lists them)."""

from __future__ import annotations

WRITE_FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
"""Supported output formats: name -> (soundfile format, default subtype)."""
