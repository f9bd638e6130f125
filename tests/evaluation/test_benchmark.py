"""Model scoring (``fluxmusic.evaluation.benchmark``) and, end to end, ``benchmarks/bench_bundled.py`` on a
synthetic demo-style dataset and a tiny random model."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from fluxmusic.audio import GriffinLimVocoder
from fluxmusic.evaluation import benchmark
from fluxmusic.evaluation.benchmark import (
    GenerationSettings,
    Scorer,
    dataset_bpm_range,
    held_out_prompts,
    scramble,
)
from fluxmusic.evaluation.demo_records import load_waveforms
from fluxmusic.evaluation.judge import load_or_train_classifier
from fluxmusic.evaluation.tempo import DEFAULT_BPM_RANGE
from fluxmusic.pipeline import FluxMusicPipeline

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_bundled.py"


@pytest.fixture(scope="module")
def bench():  # noqa: ANN201
    """The benchmark script as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("bench_bundled", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scorer_rows_on_real_clips(demo_data: Path) -> None:
    judge, judge_report = load_or_train_classifier(demo_data / "family_classifier", demo_data)
    assert judge_report["held_out"]["accuracy"] >= 0.9  # separable synthetic families
    held = held_out_prompts(demo_data, judge.families, 4, seed=0)
    assert [r["family"] for r in held.prompts] == ["bass", "pipes", "bass", "pipes"]
    assert held.captions == [r["caption"] for r in held.prompts] and len(held.reference) == 8
    assert "mixed" not in {r["family"] for r in held.prompts + held.reference}
    assert not {r["id"] for r in held.prompts} & {r["id"] for r in held.reference}

    score = Scorer.for_dataset(judge, demo_data, held)
    assert score.bpm_range == DEFAULT_BPM_RANGE  # no config.json
    row = score(load_waveforms(demo_data, held.prompts))
    assert row["family_accuracy"] >= 0.75 and row["families"] == 2 and len(row["predicted"]) == 4
    assert set(row["tempo"]) >= {"log_corr", "octave_corr", "acc1", "acc2", "valid"}
    assert set(row["onsets"]) == {"log_corr", "per_second", "pulse_clarity"}
    assert row["onsets"]["per_second"] > 0
    assert math.isfinite(row["fd"]) and row["fd"] >= 0 and math.isfinite(row["fd_joint"])
    noise = score.sampling_noise(4)
    assert noise is not None and noise["size"] == 4 and noise["draws"] == 5 and noise["mean"] >= 0
    assert score.sampling_noise(7) is None  # needs size + 2 = 9 reference clips; there are 8


def test_held_out_prompts_need_bpm_captions(demo_data: Path) -> None:
    rows = [json.loads(line) for line in (demo_data / "metadata.jsonl").read_text().splitlines()]
    text = "".join(json.dumps({**r, "caption_attributes": []}) + "\n" for r in rows)
    (demo_data / "metadata.jsonl").write_text(text)
    with pytest.raises(ValueError, match="states a BPM"):
        held_out_prompts(demo_data, ("bass", "pipes"), 4)


def test_dataset_bpm_range_reads_the_build_config(tmp_path: Path) -> None:
    assert dataset_bpm_range(tmp_path) == DEFAULT_BPM_RANGE
    (tmp_path / "config.json").write_text(json.dumps({"bpm_range": [70, 150]}))
    assert dataset_bpm_range(tmp_path) == (70, 150)


def test_scramble_breaks_every_prompt() -> None:
    prompts = [f"prompt {i}" for i in range(6)]
    pairs = scramble(prompts, "pairs", seed=3)
    assert sorted(pairs) == sorted(prompts) and all(p != q for p, q in zip(pairs, prompts))
    chars = scramble(prompts, "chars", seed=3)
    assert [sorted(p) for p in chars] == [sorted(p) for p in prompts] and chars != prompts
    assert scramble(prompts, "chars", seed=3) == chars  # seeded
    with pytest.raises(ValueError, match="ceiling mode"):
        scramble(prompts, "none", seed=3)


def test_generation_settings_take_the_model_defaults() -> None:
    resolved = GenerationSettings(guidance_eta=0.5).with_model_defaults({"guidance": 3.0, "shift": 2.0})
    assert (resolved.guidance, resolved.guidance_interval, resolved.guidance_eta, resolved.shift) == (
        3.0,
        None,
        0.5,
        2.0,
    )
    fallback = GenerationSettings().with_model_defaults({})
    assert (fallback.guidance, fallback.guidance_eta, fallback.shift) == (7.0, 1.0, 1.0)


def test_quick_benchmark_on_tiny_model(  # noqa: ANN001
    bench, tiny_pipeline: FluxMusicPipeline, demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, model = demo_data, tmp_path / "model"
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

    generate, calls = benchmark.generate, []

    def stopped_after_one_row(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(kwargs["steps"])
        if len(calls) > 1:
            raise KeyboardInterrupt
        return generate(*args, **kwargs)

    monkeypatch.setattr(benchmark, "generate", stopped_after_one_row)
    partial = tmp_path / "results" / "partial.json"
    grid_argv = ["--samplers", "euler", "--steps", "2", "3", "--dtypes", "float32", "--spectrograms", "0"]
    with pytest.raises(KeyboardInterrupt):
        bench.main([*argv[:4], "--num-prompts", "4", *grid_argv, "--ceiling", "none", "--out", str(partial)])
    kept = json.loads(partial.read_text())  # the finished row survives the stop
    assert kept["complete"] is False and [r["steps"] for r in kept["grid"]] == [2] and calls == [2, 3]
