"""Sets of clips: folders with sidecars, manifests, prompts files, unreadable files, pairing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fluxmusic.errors import InputError
from fluxmusic.evaluation.audio_sets import apply_prompts, load_set, read_set
from fluxmusic.evaluation.set_metrics import pair_indices


def _folder(root: Path, names: list[str], sidecars: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        stereo = np.stack([np.full(800, 0.1 * (i + 1)), np.zeros(800)], axis=1).astype(np.float32)
        sf.write(root / f"{name}.wav", stereo, 8000)
        if sidecars:
            (root / f"{name}.json").write_text(json.dumps({"prompt": f"prompt {name}", "bpm": 100 + i}))
    (root / "spectrogram.png").write_bytes(b"png")
    (root / "README.txt").write_text("notes")
    return root


def test_folder_sidecars_and_loading(tmp_path: Path) -> None:
    audio_set = read_set(_folder(tmp_path / "gen", ["b", "a"]))
    assert [c.key for c in audio_set.clips] == ["a", "b"] and audio_set.ignored == ["README.txt"]
    assert audio_set.clips[0].prompt == "prompt a" and audio_set.clips[1].bpm == 100.0
    loaded = load_set(audio_set)
    assert loaded.sample_rates == [8000, 8000] and loaded.waveforms[0].shape == (800,)
    assert float(loaded.waveforms[0][0]) == pytest.approx(0.1, abs=1e-4)  # stereo averaged: (0.2 + 0) / 2
    record = loaded.describe()
    assert (
        record["clips"] == 2 and record["seconds_mean"] == pytest.approx(0.1) and record["ignored_files"] == 1
    )


def test_manifest_regions_and_labels(tmp_path: Path) -> None:
    _folder(tmp_path / "audio", ["x"], sidecars=False)
    manifest = tmp_path / "set.jsonl"
    row = {"wav": "audio/x.wav", "label": "a tune", "family": "bass", "bpm": 90, "offset": 0.05}
    manifest.write_text(json.dumps(row) + "\n")
    audio_set = read_set(manifest)
    clip = audio_set.clips[0]
    assert (
        audio_set.kind == "manifest" and clip.prompt == "a tune" and clip.family == "bass" and clip.bpm == 90
    )
    assert load_set(audio_set).waveforms[0].shape == (400,)


def test_prompts_files(tmp_path: Path) -> None:
    audio_set = read_set(_folder(tmp_path / "gen", ["a", "b"], sidecars=False))
    text = tmp_path / "p.txt"
    text.write_text("first\nsecond\n")
    assert [c.prompt for c in apply_prompts(audio_set, text).clips] == ["first", "second"]
    named = tmp_path / "p.jsonl"
    named.write_text(
        json.dumps({"wav": "b.wav", "prompt": "B", "family": "pipes"})
        + "\n"
        + json.dumps({"wav": "a.wav", "prompt": "A", "bpm": 70})
        + "\n"
    )
    clips = apply_prompts(audio_set, named).clips
    assert [(c.prompt, c.family, c.bpm) for c in clips] == [("A", None, 70.0), ("B", "pipes", None)]
    text.write_text("only one\n")
    with pytest.raises(InputError, match="1 prompts for 2 clips"):
        apply_prompts(audio_set, text)


def test_unreadable_are_counted_or_fatal(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "gen", ["a", "b", "c"])
    (folder / "b.wav").write_bytes(b"not audio")
    with pytest.raises(InputError, match=r"1 of 3 clip\(s\) unreadable: .*b\.wav"):
        load_set(read_set(folder), role="generated set")
    loaded = load_set(read_set(folder), skip_unreadable=True)
    assert [c.key for c in loaded.clips] == ["a", "c"] and list(loaded.unreadable) == [str(folder / "b.wav")]


def test_pairing_by_name_or_manifest_position(tmp_path: Path) -> None:
    gen = load_set(read_set(_folder(tmp_path / "gen", ["a", "b"])))
    ref = load_set(read_set(_folder(tmp_path / "ref", ["b", "a"])))
    assert pair_indices(gen, ref) == [(0, 0), (1, 1)]
    other = load_set(read_set(_folder(tmp_path / "other", ["c", "d"])))
    with pytest.raises(InputError, match="kl needs paired sets"):
        pair_indices(gen, other)
