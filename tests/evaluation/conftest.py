"""A synthetic demo-style dataset (two families, tempo-stamped captions) that builds in milliseconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16000
SECONDS = 1.28


def _clip(family: str, bpm: float, rng: np.random.Generator) -> np.ndarray:
    """Decaying notes on every beat: low sine 'bass' or high square-ish 'pipes'."""
    n = int(SECONDS * SR)
    t = np.arange(int(0.2 * SR)) / SR
    freq = rng.uniform(80, 120) if family == "bass" else rng.uniform(1500, 2500)
    tone = np.sin(2 * np.pi * freq * t)
    tone = np.sign(tone) * np.abs(tone) ** 0.3 if family == "pipes" else tone
    note = tone * np.exp(-t / 0.05)
    out = np.zeros(n)
    for k in range(int(SECONDS * bpm / 60) + 1):
        start = int(k * 60 / bpm * SR)
        end = min(start + note.size, n)
        if start < n:
            out[start:end] += note[: end - start]
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def make_dataset(root: Path) -> None:
    """40 clips (28 train, 12 test) alternating bass / pipes, plus one ``mixed`` test clip; writes
    ``metadata.jsonl`` and the ``train.json`` / ``test.json`` manifests."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(40):
        family = ("bass", "pipes")[i % 2]
        split = "test" if i >= 28 else "train"
        bpm = int(rng.integers(60, 180))
        wav = f"audio/{split}/c{i:06d}.wav"
        (root / wav).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / wav, _clip(family, bpm, rng), SR, subtype="PCM_16")
        rows.append(
            {
                "id": f"c{i:06d}",
                "split": split,
                "wav": wav,
                "caption": f"solo {family}, {bpm} BPM",
                "caption_attributes": ["bpm"],
                "family": family,
                "bpm": bpm,
                "seconds": SECONDS,
                "num_samples": int(SECONDS * SR),
            }
        )
    rows.append({**rows[-1], "id": "c999999", "family": "mixed"})  # never a prompt or reference
    (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for split in ("train", "test"):
        manifest = [{"wav": r["wav"], "label": r["caption"]} for r in rows[:40] if r["split"] == split]
        (root / f"{split}.json").write_text(json.dumps(manifest))


@pytest.fixture
def demo_data(tmp_path: Path) -> Path:
    """A fresh synthetic dataset folder (see :func:`make_dataset`)."""
    root = tmp_path / "data"
    make_dataset(root)
    return root
