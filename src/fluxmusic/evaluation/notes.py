"""Note statistics from Spotify's basic-pitch model, run with onnxruntime (offline).

basic-pitch's PyPI wheel ships its ONNX model (``basic_pitch/saved_models/icassp_2022/nmp.onnx``,
Apache-2.0). On Python >= 3.11 the wheel's own dependencies pull in TensorFlow, which nothing here needs:
install it with ``pip install --no-deps basic-pitch`` beside ``onnxruntime``; the model file is found
through the installed distribution's metadata, without importing the package. A file path can also be
passed (or set in ``FLUXMUSIC_BASIC_PITCH_ONNX``).

The model takes 22.05 kHz mono windows of 43,844 samples and gives per-frame (86 frames/s) note and
onset posteriors over the 88 piano keys (MIDI 21-108). Windows overlap by 30 frames; half the overlap
is dropped on each side when the frames are joined (as basic-pitch does). Notes are read from the
posteriors by :func:`posteriors_to_notes` (onset peaks above 0.5, held while the note posterior stays
above 0.3 with 11 frames of tolerance, at least 11 frames long); this is our own simpler decoder, not
basic-pitch's (no pitch bends, no notes without an onset).

:func:`note_statistics` turns a clip's notes into a fixed vector (:data:`NOTE_STAT_NAMES`), so FAD and
the other set metrics run on it: note density, polyphony, pitch range, mean duration, the duration-
weighted pitch-class histogram and key consistency (Krumhansl-Kessler profiles).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fluxmusic.errors import MissingFilesError
from fluxmusic.evaluation.embedders import Embedder

__all__ = [
    "NOTE_STAT_NAMES",
    "Note",
    "NoteStatsEmbedder",
    "basic_pitch_model_path",
    "note_statistics",
    "posteriors_to_notes",
]

SAMPLE_RATE = 22050
HOP = 256
FPS = SAMPLE_RATE // HOP  # 86 annotation frames per second
WINDOW = SAMPLE_RATE * 2 - HOP  # 43,844 samples per model input
OVERLAP_FRAMES = 30
MIDI_OFFSET = 21
_MODEL_FILE = "basic_pitch/saved_models/icassp_2022/nmp.onnx"
_INPUT, _NOTE, _ONSET = "serving_default_input_2:0", "StatefulPartitionedCall:1", "StatefulPartitionedCall:2"

# Krumhansl-Kessler key profiles (C major, C minor), rotated to the other tonics.
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
KEY_WINDOW_SECONDS = 4.0

NOTE_STAT_NAMES: tuple[str, ...] = (
    "notes_per_second",
    "polyphony",
    "pitch_mean",
    "pitch_std",
    "pitch_low",
    "pitch_high",
    "pitch_range",
    "duration_mean",
    "key_strength",
    "key_consistency",
    *(f"pitch_class_{i}" for i in range(12)),
)
"""The columns of :func:`note_statistics` (22 numbers; pitches in MIDI numbers, pitch class 0 = C)."""


@dataclass(frozen=True)
class Note:
    """One decoded note: MIDI pitch, start and end (seconds), peak note posterior."""

    pitch: int
    start: float
    end: float
    confidence: float


def basic_pitch_model_path(path: str | Path | None = None) -> Path:
    """The ONNX file: ``path``, else ``$FLUXMUSIC_BASIC_PITCH_ONNX``, else the installed basic-pitch's.

    Raises:
        fluxmusic.errors.MissingFilesError: none found (one line saying how to install it).
    """
    chosen = path or os.environ.get("FLUXMUSIC_BASIC_PITCH_ONNX")
    if chosen:
        if not Path(chosen).is_file():
            raise MissingFilesError(f"basic-pitch model {chosen} does not exist; pass the path of nmp.onnx")
        return Path(chosen)
    from importlib import metadata

    try:
        located = Path(str(metadata.distribution("basic-pitch").locate_file(_MODEL_FILE)))
    except metadata.PackageNotFoundError:
        located = None
    if located is None or not located.is_file():
        raise MissingFilesError(
            "basic-pitch's ONNX model is not installed: `pip install --no-deps 'basic-pitch>=0.4'` and "
            "`pip install onnxruntime` (the model ships in the wheel; --no-deps keeps TensorFlow out), or "
            "set FLUXMUSIC_BASIC_PITCH_ONNX"
        )
    return located


def _session(path: Path) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise MissingFilesError(
            "the basic-pitch note statistics need onnxruntime: pip install onnxruntime"
        ) from err
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_posteriors(session: Any, audio: np.ndarray, batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Note and onset posteriors of a 22.05 kHz mono clip, windows joined.

    Shapes:
        audio: (S,) -> note (T, 88), onset (T, 88) with T = floor(S * 86 / 22050)
    """
    overlap = OVERLAP_FRAMES * HOP
    hop = WINDOW - overlap
    padded = np.concatenate([np.zeros(overlap // 2, np.float32), audio.astype(np.float32)])
    starts = range(0, max(len(padded) - overlap // 2, 1), hop)
    windows = np.zeros((len(starts), WINDOW, 1), np.float32)
    for i, start in enumerate(starts):
        piece = padded[start : start + WINDOW]
        windows[i, : len(piece), 0] = piece
    notes, onsets = [], []
    for i in range(0, len(windows), batch_size):
        note, onset = session.run([_NOTE, _ONSET], {_INPUT: windows[i : i + batch_size]})
        notes.append(note)
        onsets.append(onset)
    keep = slice(OVERLAP_FRAMES // 2, -(OVERLAP_FRAMES // 2))
    frames = int(np.floor(len(audio) * FPS / SAMPLE_RATE))
    note = np.concatenate(notes)[:, keep].reshape(-1, 88)[:frames]
    onset = np.concatenate(onsets)[:, keep].reshape(-1, 88)[:frames]
    return note, onset


def posteriors_to_notes(
    note: np.ndarray,
    onset: np.ndarray,
    onset_threshold: float = 0.5,
    frame_threshold: float = 0.3,
    min_frames: int = 11,
    tolerance: int = 11,
) -> list[Note]:
    """Decode notes: each onset peak starts a note held while the note posterior stays above threshold.

    Onsets are visited latest first; the frames a note covers (and its neighbours a semitone apart) are
    cleared, so an earlier onset cannot claim them again.

    Shapes:
        note, onset: (T, 88)
    """
    remaining = note.copy()
    frames = len(note)
    if frames < 3:
        return []
    padded = np.concatenate([np.zeros((1, onset.shape[1])), onset, np.zeros((1, onset.shape[1]))])
    peaks = (onset >= padded[:-2]) & (onset >= padded[2:]) & (onset >= onset_threshold)  # frame 0 counts
    times, keys = np.nonzero(peaks)
    found = []
    for t, k in sorted(zip(times.tolist(), keys.tolist()), reverse=True):
        end, below = t + 1, 0
        while end < frames - 1 and below < tolerance:
            below = below + 1 if remaining[end, k] < frame_threshold else 0
            end += 1
        end -= below
        if end - t <= min_frames:
            continue
        found.append(Note(k + MIDI_OFFSET, t / FPS, end / FPS, float(note[t:end, k].max())))
        remaining[t:end, max(k - 1, 0) : k + 2] = 0.0
    return sorted(found, key=lambda n: (n.start, n.pitch))


def _pitch_class_histogram(notes: list[Note]) -> np.ndarray:
    histogram = np.zeros(12)
    for n in notes:
        histogram[n.pitch % 12] += n.end - n.start
    total = histogram.sum()
    return histogram / total if total > 0 else histogram


def best_key(histogram: np.ndarray) -> tuple[int, float]:
    """(key index, correlation) of the best-matching of 24 keys: 0-11 major on C..B, 12-23 minor."""
    if histogram.sum() <= 0 or np.ptp(histogram) == 0:
        return -1, 0.0
    scores = [
        np.corrcoef(histogram, np.roll(profile, tonic))[0, 1]
        for profile in (_MAJOR, _MINOR)
        for tonic in range(12)
    ]
    index = int(np.argmax(scores))
    return index, float(scores[index])


def note_statistics(notes: list[Note], seconds: float) -> np.ndarray:
    """The :data:`NOTE_STAT_NAMES` vector of one clip's notes.

    A clip without notes has no such vector: it is all NaN (its pitches are undefined; zeros would be
    far outliers in the pitch columns), and the set metrics leave it out and count it.
    ``key_consistency`` is the fraction of 4 s windows with notes whose best key is the whole clip's (1 for
    a clip of one window).

    Shapes:
        -> (22,)
    """
    out = np.zeros(len(NOTE_STAT_NAMES))
    if not notes or seconds <= 0:
        return np.full(len(NOTE_STAT_NAMES), np.nan)
    pitches = np.array([n.pitch for n in notes], dtype=np.float64)
    durations = np.array([n.end - n.start for n in notes])
    histogram = _pitch_class_histogram(notes)
    key, strength = best_key(histogram)
    windows = [
        [n for n in notes if start <= n.start < start + KEY_WINDOW_SECONDS]
        for start in np.arange(0.0, seconds, KEY_WINDOW_SECONDS)
    ]
    keys = [best_key(_pitch_class_histogram(w))[0] for w in windows if w]
    out[:10] = [
        len(notes) / seconds,
        durations.sum() / seconds,
        pitches.mean(),
        pitches.std(),
        pitches.min(),
        pitches.max(),
        pitches.max() - pitches.min(),
        durations.mean(),
        strength,
        float(np.mean([k == key for k in keys])) if keys else 0.0,
    ]
    out[10:] = histogram
    return out


class NoteStatsEmbedder(Embedder):
    """basic-pitch note statistics as a per-clip vector (``--embedding basic-pitch``).

    Args:
        model_path: The ONNX file (default: :func:`basic_pitch_model_path`).

    Shapes:
        embed: N clips -> (N, 22), columns :data:`NOTE_STAT_NAMES`
    """

    name = "basic-pitch"
    sample_rate = SAMPLE_RATE
    window_seconds = None
    dim = len(NOTE_STAT_NAMES)

    def __init__(self, model_path: str | Path | None = None) -> None:
        self.model_path = basic_pitch_model_path(model_path)
        self.checkpoint = str(self.model_path)
        from importlib import metadata

        try:
            version = metadata.version("basic-pitch")
        except metadata.PackageNotFoundError:
            version = "file"
        self.cache_token = f"basic-pitch {version}, size {self.model_path.stat().st_size}, decoder v2"
        self._session: Any = None

    def notes(self, waveform: Tensor, sample_rate: int) -> list[Note]:
        """Decoded notes of one clip (any rate, mono or ``(C, S)``)."""
        if self._session is None:
            self._session = _session(self.model_path)
        audio = self.prepare(waveform, sample_rate).numpy()
        return posteriors_to_notes(*run_posteriors(self._session, audio))

    def embed_clip(self, waveform: Tensor, sample_rate: int) -> Tensor:
        seconds = waveform.shape[-1] / sample_rate
        return torch.from_numpy(note_statistics(self.notes(waveform, sample_rate), seconds)).float()
