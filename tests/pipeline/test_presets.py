"""Quality presets: resolution order, model-folder presets, validation, the bundled model's presets."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from fluxmusic import FluxMusicPipeline
from fluxmusic.modelfolder import bundled_model_dir
from fluxmusic.modelfolder.bundle import bundle_model_dir
from fluxmusic.modelfolder.index import PipelineSpec
from fluxmusic.sampling import (
    FALLBACK_PRESETS,
    PRESET_KEYS,
    QUALITIES,
    SampleSettings,
    SettingsError,
    check_defaults,
    preset_values,
)

FOLDER = {"draft": {"sampler": "ab2", "steps": 4}, "best": {"sampler": "heun", "steps": 12, "shift": 2.0}}


def _resolve(defaults: dict, **given: object) -> SampleSettings:
    return SampleSettings.resolve(defaults, default_duration=1.0, **given)


def test_qualities_and_fallbacks() -> None:
    assert QUALITIES == ("draft", "balanced", "best", "reference")
    assert set(FALLBACK_PRESETS) == set(QUALITIES)
    for preset in FALLBACK_PRESETS.values():
        assert set(preset) <= set(PRESET_KEYS)
    steps = [_resolve({}, quality=q).steps for q in QUALITIES]
    assert steps == sorted(steps)  # cheapest first
    assert FALLBACK_PRESETS["reference"] == {
        "sampler": "euler",
        "steps": 50,
        "shift": 1.0,
        "cache_threshold": 0.0,
    }


def test_a_preset_sits_between_the_caller_and_the_model_defaults() -> None:
    defaults = {"steps": 30, "guidance": 2.5, "sampler": "euler", "presets": FOLDER}
    assert _resolve(defaults).steps == 30 and _resolve(defaults).sampler == "euler"
    draft = _resolve(defaults, quality="draft")
    assert (draft.sampler, draft.steps, draft.guidance, draft.shift) == ("ab2", 4, 2.5, 1.0)
    assert _resolve(defaults, quality="draft", steps=6).steps == 6  # explicit values win
    assert _resolve(defaults, quality="best").shift == 2.0
    # a quality the folder leaves out comes from the fallbacks
    balanced = _resolve(defaults, quality="balanced")
    assert (balanced.sampler, balanced.steps, balanced.guidance) == ("ab2", 16, 2.5)
    no_presets = {"steps": 30}
    assert _resolve(no_presets, quality="draft").steps == FALLBACK_PRESETS["draft"]["steps"]
    reference = _resolve(
        {"steps": 30, "sampler": "ab2", "shift": 3.0, "cache_threshold": 0.2}, quality="reference"
    )
    assert (reference.sampler, reference.steps, reference.shift, reference.cache_threshold) == (
        "euler",
        50,
        1.0,
        0,
    )


def test_unknown_quality_is_named() -> None:
    with pytest.raises(SettingsError, match="quality 'fast' is unknown"):
        _resolve({}, quality="fast")
    assert preset_values({}, None) == {}


@pytest.mark.parametrize(
    "presets, match",
    [
        ({"turbo": {"steps": 3}}, "unknown quality presets"),
        ({"draft": {"guidance": 3.0}}, "may set only"),
        ({"draft": {"steps": 0}}, "steps must be >= 1"),
        ({"draft": {"sampler": "rk4"}}, "sampler"),
        ({"draft": {"cache_threshold": -1.0}}, "cache_threshold"),
        ({"draft": 3}, "presets must be a table"),
    ],
)
def test_bad_presets_are_refused_naming_them(presets: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_defaults({"presets": presets}, "fluxmusic.json")


def test_spec_keeps_presets_and_bundle_carries_them(tiny_pipeline: FluxMusicPipeline, tmp_path) -> None:  # noqa: ANN001
    spec = PipelineSpec(defaults={"steps": 5, "presets": FOLDER})
    assert spec.defaults["presets"]["best"] == FOLDER["best"]
    tiny = tiny_pipeline
    spec = replace(tiny.spec, defaults=spec.defaults)
    pipe = FluxMusicPipeline(
        tiny.transformer,
        tiny.vae,
        tiny.vocoder,
        tiny.text_encoder,
        spec,
        text_encoder_entry=tiny.text_encoder_entry,
    )
    source = pipe.save_pretrained(tmp_path / "src")
    out = bundle_model_dir(source, tmp_path / "b", defaults={"steps": 3})
    loaded = FluxMusicPipeline.from_pretrained(out, device="cpu", dtype="float32")
    assert loaded.spec.defaults["presets"] == FOLDER and loaded.spec.defaults["steps"] == 3
    assert loaded.settings(quality="draft").steps == 4


def test_pipeline_call_takes_quality(tiny_pipeline: FluxMusicPipeline) -> None:
    out = tiny_pipeline("a jig", duration=0.64, quality="draft", seed=0, progress=False)
    assert out.settings.sampler == FALLBACK_PRESETS["draft"]["sampler"]
    assert out.settings.steps == FALLBACK_PRESETS["draft"]["steps"]
    again = tiny_pipeline("a jig", duration=0.64, seed=0, progress=False, **FALLBACK_PRESETS["draft"])
    assert (out.waveforms == again.waveforms).all()


def test_bundled_model_presets() -> None:
    defaults = json.loads((bundled_model_dir() / "fluxmusic.json").read_text())["defaults"]
    presets = check_defaults(defaults)["presets"]
    assert set(presets) == {"draft", "balanced", "best"}  # reference: the fallback, 50 Euler steps
    cost = {name: _resolve(defaults, quality=name).steps for name in QUALITIES}
    assert cost["draft"] < cost["balanced"] < cost["best"] < cost["reference"] == 50
    # balanced is the model's plain default
    assert _resolve(defaults, quality="balanced") == _resolve(defaults)


def test_cli_quality_and_cache_threshold_reach_the_sidecar(
    tiny_pipeline: FluxMusicPipeline, tmp_path
) -> None:  # noqa: ANN001
    from fluxmusic.cli import main

    model = tiny_pipeline.save_pretrained(tmp_path / "tiny")
    out = tmp_path / "a.wav"
    args = ["generate", "--model", str(model), "--duration", "0.64", "-q", "a jig", "-o", str(out)]
    assert main([*args, "--quality", "draft", "--steps", "3", "--cache-threshold", "0.1"]) == 0
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["sampler"] == FALLBACK_PRESETS["draft"]["sampler"] and sidecar["steps"] == 3
    assert sidecar["shift"] == FALLBACK_PRESETS["draft"]["shift"] and sidecar["cache_threshold"] == 0.1
