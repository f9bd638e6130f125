"""basic-pitch note statistics (its ONNX model through onnxruntime): pitches, pitch classes, the vector."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fluxmusic.errors import MissingFilesError
from fluxmusic.evaluation.notes import (
    NOTE_STAT_NAMES,
    Note,
    NoteStatsEmbedder,
    basic_pitch_model_path,
    best_key,
    note_statistics,
)

SR = 16000
C_MAJOR = (60, 62, 64, 65, 67, 69, 71, 72)


def _have_model() -> bool:
    try:
        basic_pitch_model_path()
        import onnxruntime  # noqa: F401
    except (MissingFilesError, ImportError):
        return False
    return True


needs_model = pytest.mark.skipif(
    not _have_model(),
    reason="basic-pitch (pip install --no-deps basic-pitch) and onnxruntime are not installed",
)


def _tone(midi: int, seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    fade = np.minimum(1.0, (t[-1] - t) * 100)  # a short release so consecutive notes re-attack
    return (0.5 * np.sin(2 * np.pi * 440.0 * 2 ** ((midi - 69) / 12) * t) * fade).astype(np.float32)


@pytest.fixture(scope="module")
def embedder() -> NoteStatsEmbedder:
    return NoteStatsEmbedder()


@needs_model
def test_a4_tone_is_midi_69(embedder: NoteStatsEmbedder) -> None:
    notes = embedder.notes(torch.from_numpy(_tone(69, 2.0)), SR)
    assert [n.pitch for n in notes] == [69]
    assert notes[0].start < 0.05 and notes[0].end > 1.8


@needs_model
def test_c_major_scale_gives_its_pitch_classes(embedder: NoteStatsEmbedder) -> None:
    scale = np.concatenate([_tone(m, 0.4, 22050) for m in C_MAJOR])
    notes = embedder.notes(torch.from_numpy(scale), 22050)
    assert [n.pitch for n in notes] == list(C_MAJOR)
    stats = dict(zip(NOTE_STAT_NAMES, note_statistics(notes, len(scale) / 22050)))
    present = {i for i in range(12) if stats[f"pitch_class_{i}"] > 0}
    assert present == {0, 2, 4, 5, 7, 9, 11}
    assert stats["pitch_low"] == 60 and stats["pitch_high"] == 72 and stats["pitch_range"] == 12
    assert stats["notes_per_second"] == pytest.approx(8 / 3.2, rel=1e-6)


@needs_model
def test_embed_any_rate_channels_and_length(embedder: NoteStatsEmbedder) -> None:
    long_stereo = torch.from_numpy(np.stack([_tone(57, 7.0, 44100)] * 2))  # crosses several model windows
    rows = embedder.embed([long_stereo, torch.zeros(SR)], 44100)
    assert rows.shape == (2, len(NOTE_STAT_NAMES)) == (2, 22)
    assert rows[0, NOTE_STAT_NAMES.index("pitch_mean")] == 57
    assert torch.isnan(rows[1]).all()  # silence: no notes, undefined
    assert embedder.info.backend == "basic-pitch" and embedder.checkpoint.endswith("nmp.onnx")


def test_statistics_and_key_on_hand_made_notes() -> None:
    notes = [
        Note(60, 0.0, 1.0, 0.9),
        Note(64, 0.0, 1.0, 0.9),
        Note(67, 1.0, 2.0, 0.9),
        Note(72, 5.0, 6.0, 0.9),
    ]
    stats = dict(zip(NOTE_STAT_NAMES, note_statistics(notes, 8.0)))
    assert stats["notes_per_second"] == 0.5 and stats["polyphony"] == 0.5 and stats["duration_mean"] == 1.0
    assert stats["pitch_class_0"] == 0.5 and stats["pitch_class_4"] == 0.25 and stats["pitch_class_7"] == 0.25
    assert (
        best_key(
            np.roll(np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]), 2)
        )[0]
        == 2
    )
    assert stats["key_consistency"] == 1.0  # both 4 s windows are C major
    assert np.isnan(note_statistics([], 3.0)).all()
    assert math.isclose(stats["pitch_mean"], (60 + 64 + 67 + 72) / 4)


def test_missing_model_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingFilesError, match="does not exist"):
        basic_pitch_model_path(tmp_path / "nmp.onnx")
    from importlib import metadata

    def missing(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.delenv("FLUXMUSIC_BASIC_PITCH_ONNX", raising=False)
    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(MissingFilesError, match="--no-deps 'basic-pitch") as info:
        basic_pitch_model_path()
    assert "\n" not in str(info.value)
