"""Sets of clips to evaluate: a folder of audio files or a manifest, their prompts, labels and audio.

A **folder** holds audio files (``.wav``, ``.flac``, ``.ogg``, ``.mp3``, searched recursively, sorted by
relative path); a generated clip's sidecar (``NAME.json`` beside ``NAME.wav``, written by ``fluxmusic
generate``) gives its ``prompt`` and ``bpm``. Sidecars, spectrogram PNGs and other files are not clips;
how many other files were passed over is recorded. A **manifest** (``.json`` / ``.jsonl`` / ``.csv``, the
training format of :mod:`fluxmusic.data.manifest`) lists files with ``label`` (the prompt) and optionally
``offset``, ``duration``, ``bpm`` and ``family``.

A prompts file (``--prompts``) overrides the prompts: ``.txt`` with one prompt per line in clip order, or
``.json`` / ``.jsonl`` objects with ``prompt`` (or ``label``) and optional ``family``, ``bpm`` and ``wav``
(matched by file name; without it, by position).

Clips that cannot be decoded are collected in :attr:`LoadedSet.unreadable` with the reason, never dropped
without a count; :func:`load_set` raises on them unless asked to skip.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import Tensor

from fluxmusic.errors import InputError, MissingFilesError

__all__ = ["AUDIO_SUFFIXES", "AudioSet", "Clip", "LoadedSet", "apply_prompts", "load_set", "read_set"]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
_COMPANIONS = (".json", ".png")  # sidecars and spectrograms written beside generated clips


@dataclass(frozen=True)
class Clip:
    """One clip of a set: its file, pairing key and what it was asked for (when known)."""

    path: Path
    key: str
    prompt: str | None = None
    family: str | None = None
    bpm: float | None = None
    offset: float | None = None
    duration: float | None = None


@dataclass(frozen=True)
class AudioSet:
    """The clips of a folder or a manifest.

    Attributes:
        source: The folder or manifest path.
        kind: ``folder`` or ``manifest``.
        clips: The clips, sorted (folders) or in manifest order.
        ignored: Files of a folder that are neither audio nor sidecars/PNGs.
    """

    source: str
    kind: str
    clips: list[Clip]
    ignored: list[str] = field(default_factory=list)


@dataclass
class LoadedSet:
    """A set with its audio read (unreadable clips left out and listed).

    Shapes:
        waveforms: one (S_i,) mono tensor per readable clip, at ``sample_rates[i]``
    """

    audio_set: AudioSet
    clips: list[Clip]
    waveforms: list[Tensor]
    sample_rates: list[int]
    unreadable: dict[str, str] = field(default_factory=dict)

    @property
    def seconds(self) -> list[float]:
        """Each readable clip's duration."""
        return [w.shape[-1] / sr for w, sr in zip(self.waveforms, self.sample_rates)]

    def describe(self) -> dict[str, Any]:
        """The record of the set: source, clip count and durations, unreadable files."""
        seconds = self.seconds
        return {
            "source": self.audio_set.source,
            "kind": self.audio_set.kind,
            "clips": len(self.clips),
            "seconds_total": float(sum(seconds)),
            "seconds_mean": float(sum(seconds) / len(seconds)) if seconds else 0.0,
            "seconds_min": float(min(seconds)) if seconds else 0.0,
            "seconds_max": float(max(seconds)) if seconds else 0.0,
            "unreadable": dict(self.unreadable),
            "ignored_files": len(self.audio_set.ignored),
        }


def _sidecar(path: Path) -> dict[str, Any]:
    side = path.with_suffix(".json")
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _read_folder(root: Path) -> AudioSet:
    clips, ignored = [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        suffix = path.suffix.lower()
        if suffix in AUDIO_SUFFIXES:
            side = _sidecar(path)
            key = str(rel.with_suffix(""))
            bpm = _number(side.get("bpm"))
            clips.append(Clip(path, key, side.get("prompt"), side.get("family"), bpm))
        elif suffix not in _COMPANIONS:
            ignored.append(str(rel))
    return AudioSet(str(root), "folder", clips, ignored)


def _read_manifest(path: Path) -> AudioSet:
    from fluxmusic.data.manifest import read_manifest

    clips = []
    for item in read_manifest(path):
        family = item.extra.get("family")
        key = str(Path(item.wav).with_suffix(""))
        clips.append(Clip(item.path, key, item.caption or None, family, item.bpm, item.offset, item.duration))
    return AudioSet(str(path), "manifest", clips)


def read_set(source: str | os.PathLike[str], role: str = "set") -> AudioSet:
    """List a folder's audio files or a manifest's items (no audio is read).

    Raises:
        fluxmusic.errors.MissingFilesError: ``source`` does not exist.
        fluxmusic.errors.InputError: no clips in it.
    """
    from fluxmusic.data.manifest import MANIFEST_FORMATS

    path = Path(source).expanduser()
    if path.is_dir():
        audio_set = _read_folder(path)
    elif path.is_file() and path.suffix.lower() in MANIFEST_FORMATS:
        audio_set = _read_manifest(path)
    elif path.is_file():
        raise InputError(
            f"{role} {path} is a file but not a manifest; pass a folder of audio files or a "
            f"{'/'.join(MANIFEST_FORMATS)} manifest"
        )
    else:
        raise MissingFilesError(f"{role} {path} does not exist; pass a folder of audio files or a manifest")
    if not audio_set.clips:
        others = (
            f" ({len(audio_set.ignored)} other files, e.g. {audio_set.ignored[0]})"
            if audio_set.ignored
            else ""
        )
        raise InputError(
            f"{role} {path} holds no audio clips{others}; audio files end in {', '.join(AUDIO_SUFFIXES)}"
        )
    return audio_set


def _prompt_rows(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".txt":
        return [{"prompt": line.strip()} for line in text.splitlines() if line.strip()]
    try:
        data = (
            json.loads(text)
            if path.suffix.lower() == ".json"
            else [json.loads(x) for x in text.splitlines() if x.strip()]
        )
    except ValueError as err:
        raise InputError(f"prompts file {path}: not valid JSON ({err})") from None
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise InputError(f"prompts file {path}: expected a list of objects with 'prompt'")
    return data


def apply_prompts(audio_set: AudioSet, prompts_file: str | os.PathLike[str]) -> AudioSet:
    """The set with prompts (and family / bpm, when given) from a prompts file (see the module docstring).

    Raises:
        fluxmusic.errors.MissingFilesError: the file does not exist.
        fluxmusic.errors.InputError: malformed, or its prompts do not match the clips.
    """
    path = Path(prompts_file).expanduser()
    if not path.is_file():
        raise MissingFilesError(f"prompts file {path} does not exist")
    rows = _prompt_rows(path)
    named = {Path(str(r["wav"])).stem: r for r in rows if r.get("wav")}
    if named and len(named) == len(rows):
        missing = [c.key for c in audio_set.clips if Path(c.key).stem not in named]
        if missing:
            raise InputError(
                f"prompts file {path} names no prompt for {len(missing)} clip(s), e.g. {missing[0]}"
            )
        matched = [named[Path(c.key).stem] for c in audio_set.clips]
    elif len(rows) != len(audio_set.clips):
        raise InputError(
            f"prompts file {path} has {len(rows)} prompts for {len(audio_set.clips)} clips; give one per clip"
        )
    else:
        matched = rows
    clips = []
    for clip, row in zip(audio_set.clips, matched):
        prompt = row.get("prompt", row.get("label"))
        clips.append(
            replace(
                clip,
                prompt=str(prompt) if prompt is not None else clip.prompt,
                family=row.get("family", clip.family),
                bpm=_number(row.get("bpm")) if row.get("bpm") is not None else clip.bpm,
            )
        )
    return replace(audio_set, clips=clips)


def load_set(audio_set: AudioSet, skip_unreadable: bool = False, role: str = "set") -> LoadedSet:
    """Read every clip (mono, its own rate; manifest offsets and durations applied).

    Raises:
        fluxmusic.errors.InputError: some clips are unreadable and ``skip_unreadable`` is off (the message
            counts them and names the first), or none is readable.
    """
    from fluxmusic.audio import audio_info, read_audio

    clips, waves, rates, bad = [], [], [], {}
    for clip in audio_set.clips:
        try:
            rate = audio_info(clip.path).sample_rate
            wave = read_audio(clip.path, None, clip.offset or 0.0, clip.duration, channel=None)
        except (InputError, MissingFilesError, OSError) as err:
            bad[str(clip.path)] = str(err).splitlines()[0] if str(err) else type(err).__name__
            continue
        clips.append(clip)
        waves.append(wave)
        rates.append(rate)
    if bad and (not skip_unreadable or not clips):
        first, reason = next(iter(bad.items()))
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        hint = (
            "" if not clips else "; fix or remove them, or pass --skip-unreadable to leave them out (counted)"
        )
        raise InputError(
            f"{role}: {len(bad)} of {len(audio_set.clips)} clip(s) unreadable: {first}{more} ({reason}){hint}"
        )
    return LoadedSet(audio_set, clips, waves, rates, bad)
