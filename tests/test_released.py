"""Released sizes: their sampling defaults (the ``balanced`` preset, the reference's as ``reference``) and
the lean stages ``load_released`` builds them with (components replaced by tiny ones: no weights here)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import fluxmusic.modelfolder.released as released
from fluxmusic.audio import AudioVAE, HifiGanVocoder
from fluxmusic.sampling import FALLBACK_PRESETS, SampleSettings
from fluxmusic.text import ClapTextEncoder, FluxMusicConditioner, T5Encoder


def _resolve(quality: str | None = None) -> SampleSettings:
    spec = released.released_spec("small")
    return SampleSettings.resolve(spec.defaults, default_duration=spec.default_duration, quality=quality)


def test_released_default_is_balanced_and_reference_is_the_scripts_sampling() -> None:
    default, balanced = _resolve(), _resolve("balanced")
    assert default == balanced
    assert (default.sampler, default.steps, default.shift) == ("ab2", 16, 3.0)
    reference = _resolve("reference")
    assert (reference.sampler, reference.steps, reference.shift, reference.cache_threshold) == (
        "euler",
        50,
        1.0,
        0.0,
    )
    for settings in (default, reference, _resolve("draft"), _resolve("best")):  # same request, other cost
        assert (settings.guidance, settings.negative_prompt) == (7.0, "low quality, gentle")
        assert settings.duration == 10.24
    assert [_resolve(q).steps for q in FALLBACK_PRESETS] == [8, 16, 32, 50]  # cheapest first


@pytest.fixture
def loaders(monkeypatch: pytest.MonkeyPatch, tiny_pipeline: Any) -> dict[str, Any]:
    """Every component loader of ``load_released`` replaced by a fresh tiny component; records T5's kwargs."""
    import copy

    seen: dict[str, Any] = {}
    tiny = tiny_pipeline

    def t5(*args: Any, **kwargs: Any) -> T5Encoder:
        seen["t5"] = kwargs
        return copy.deepcopy(tiny.text_encoder.t5)

    monkeypatch.setattr(released, "load_musicflux", lambda *a, **k: copy.deepcopy(tiny.transformer))
    monkeypatch.setattr(released, "released_checkpoint", lambda name: name)
    monkeypatch.setattr(
        AudioVAE, "from_pretrained", classmethod(lambda cls, *a, **k: copy.deepcopy(tiny.vae))
    )
    monkeypatch.setattr(
        HifiGanVocoder, "from_pretrained", classmethod(lambda cls, *a, **k: copy.deepcopy(tiny.vocoder))
    )
    monkeypatch.setattr(T5Encoder, "from_pretrained", classmethod(lambda cls, *a, **k: t5(*a, **k)))
    monkeypatch.setattr(
        ClapTextEncoder,
        "from_pretrained",
        classmethod(lambda cls, *a, **k: copy.deepcopy(tiny.text_encoder.clap)),
    )
    return seen


@pytest.mark.parametrize("native_bf16", [True, False])
def test_load_released_streams_t5_on_cpu_and_decodes_in_bf16_where_native(
    loaders: dict[str, Any], monkeypatch: pytest.MonkeyPatch, native_bf16: bool
) -> None:
    monkeypatch.setattr(
        released, "resolve_dtype", lambda *a: torch.bfloat16 if native_bf16 else torch.float32
    )
    parts = released.load_released("small", torch.device("cpu"))
    assert loaders["t5"]["stream"] is True
    assert isinstance(parts.text_encoder, FluxMusicConditioner)
    assert parts.vae.decode_dtype == (torch.bfloat16 if native_bf16 else None)
    vocoder_dtype = next(parts.vocoder.parameters()).dtype
    assert vocoder_dtype == (torch.bfloat16 if native_bf16 else torch.float32)
    assert parts.spec.defaults == released.released_spec("small").defaults


def test_load_released_lean_off_keeps_every_stage_in_its_precision(
    loaders: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(released, "resolve_dtype", lambda *a: torch.bfloat16)
    parts = released.load_released("small", torch.device("cpu"), lean=False)
    assert loaders["t5"]["stream"] is False
    assert parts.vae.decode_dtype is None and next(parts.vocoder.parameters()).dtype == torch.float32


def test_t5_stays_resident_on_an_accelerator() -> None:
    assert released.lean_text(torch.device("cpu"))
    assert not released.lean_text(torch.device("cuda"))
    assert not released.lean_text(torch.device("mps"))
