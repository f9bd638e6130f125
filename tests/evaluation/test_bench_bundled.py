"""End to end: the bundled-model benchmark on a synthetic demo-style dataset and a tiny random model."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fluxmusic import FluxMusicPipeline
from fluxmusic.audio import GriffinLimVocoder

SR = 16000
SECONDS = 1.28
BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_bundled.py"


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


@pytest.fixture(scope="module")
def bench():  # noqa: ANN201
    spec = importlib.util.spec_from_file_location("bench_bundled", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_benchmark_on_tiny_model(  # noqa: ANN001
    bench, tiny_pipeline: FluxMusicPipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, model = tmp_path / "data", tmp_path / "model"
    make_dataset(data)
    parts = tiny_pipeline  # its random HiFi-GAN is silent; Griffin-Lim gives audible noise to score
    FluxMusicPipeline(
        parts.transformer,
        parts.vae,
        GriffinLimVocoder(n_iter=4),
        parts.text_encoder,
        parts.spec,
        text_encoder_entry=parts.text_encoder_entry,
    ).save_pretrained(model)
    out = tmp_path / "results" / "bench.json"
    argv = ["--model", str(model), "--data", str(data), "--quick", "--num-prompts", "4", "--batch-size", "2"]
    report = bench.main([*argv, "--ceiling", "pairs", "--spectrograms", "1", "--out", str(out)])

    saved = json.loads(out.read_text())  # strict JSON (no NaN)
    assert saved["classifier"]["held_out"]["accuracy"] >= 0.9  # separable synthetic families
    assert [r["family"] for r in saved["prompts"]] == ["bass", "pipes", "bass", "pipes"]
    assert saved["reference_clips"] == 8
    assert saved["fd_sampling_noise"]["size"] == 4 and saved["fd_sampling_noise"]["mean"] >= 0
    assert set(saved["rows"]) == {"real", "floor", "ceiling"} and saved["complete"] is True
    real = saved["rows"]["real"]
    assert real["family_accuracy"] >= 0.75 and real["families"] == 2
    assert set(real["tempo"]) >= {"log_corr", "octave_corr", "acc1", "acc2", "valid"}
    assert real["onsets"]["per_second"] > 0 and set(real["onsets"]) == {
        "log_corr",
        "per_second",
        "pulse_clarity",
    }
    (row,) = saved["grid"]
    assert (row["dtype"], row["sampler"], row["steps"]) == ("float32", "euler", 8)
    assert math.isfinite(row["fd"]) and row["fd"] >= 0 and row["seconds_per_clip"] > 0
    assert len(report["spectrograms"]) == 1 and Path(report["spectrograms"][0]).is_file()
    assert (data / "family_classifier" / "model.safetensors").is_file()  # trained and cached

    again = bench.main([*argv, "--ceiling", "none", "--out", str(out)])  # reuses the cached classifier
    assert set(again["rows"]) == {"real", "floor"}
    assert again["grid"][0]["fd"] == pytest.approx(row["fd"])  # same seeds, same clips

    generate, calls = bench.generate, []

    def stopped_after_one_row(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(kwargs["steps"])
        if len(calls) > 1:
            raise KeyboardInterrupt
        return generate(*args, **kwargs)

    monkeypatch.setattr(bench, "generate", stopped_after_one_row)
    partial = tmp_path / "results" / "partial.json"
    grid_argv = ["--samplers", "euler", "--steps", "2", "3", "--dtypes", "float32", "--spectrograms", "0"]
    with pytest.raises(KeyboardInterrupt):
        bench.main([*argv[:4], "--num-prompts", "4", *grid_argv, "--ceiling", "none", "--out", str(partial)])
    kept = json.loads(partial.read_text())  # the finished row survives the stop
    assert kept["complete"] is False and [r["steps"] for r in kept["grid"]] == [2] and calls == [2, 3]
