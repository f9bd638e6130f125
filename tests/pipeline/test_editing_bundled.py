"""One short run of each edit on the bundled model (offline): lengths, kept samples, finite audio."""

from __future__ import annotations

import pytest
import torch

from fluxmusic import FluxMusicPipeline
from fluxmusic.pipeline.edit_inputs import CROSSFADE_SECONDS
from fluxmusic.pipeline.joins import region_weights

RATE = 16000
FADE = round(CROSSFADE_SECONDS * RATE)
FAST = {"steps": 4, "progress": False}


@pytest.fixture(scope="module")
def bundled() -> FluxMusicPipeline:
    return FluxMusicPipeline.from_pretrained(device="cpu")


@pytest.fixture(scope="module")
def clip(bundled: FluxMusicPipeline) -> torch.Tensor:
    """A 3 s clip of the bundled model itself, the input of the edits."""
    return bundled("a calm piano piece, 90 BPM", duration=3.0, seed=0, **FAST).waveforms[0]


def _finite_and_sounding(audio: torch.Tensor) -> bool:
    return bool(torch.isfinite(audio).all()) and float(audio.abs().max()) > 1e-3


def test_variation_on_the_bundled_model(bundled: FluxMusicPipeline, clip: torch.Tensor) -> None:
    near = bundled.variation(clip, "a fast fiddle reel", strength=0.3, seed=1, **FAST).waveforms[0]
    far = bundled.variation(clip, "a fast fiddle reel", strength=0.9, seed=1, **FAST).waveforms[0]
    assert near.shape == far.shape == clip.shape and _finite_and_sounding(near) and _finite_and_sounding(far)


def test_inpainting_on_the_bundled_model(bundled: FluxMusicPipeline, clip: torch.Tensor) -> None:
    out = bundled.inpaint(clip, "a fast fiddle reel", [(1.0, 2.0)], seed=1, **FAST).waveforms[0]
    keep = region_weights(clip.shape[0], [(RATE, 2 * RATE)], FADE) == 0
    assert out.shape == clip.shape and torch.equal(out[keep], clip[keep])
    assert _finite_and_sounding(out[RATE : 2 * RATE])


def test_continuation_on_the_bundled_model(bundled: FluxMusicPipeline, clip: torch.Tensor) -> None:
    out = bundled.continuation(clip, "a calm piano piece, 90 BPM", 8.0, seed=1, **FAST)
    audio = out.waveforms[0]
    assert audio.shape == (8 * RATE,) and out.edit.windows == 2  # 5.12 s windows
    assert torch.equal(audio[: clip.shape[0] - FADE], clip[: clip.shape[0] - FADE])
    assert _finite_and_sounding(audio[clip.shape[0] :])


def test_long_form_on_the_bundled_model(bundled: FluxMusicPipeline) -> None:
    out = bundled.long_form("a slow organ chorale, 66 BPM", 12.0, seed=2, **FAST)
    assert out.waveforms.shape == (1, 12 * RATE) and out.edit.windows == 4  # 5.12 s + 3 x 2.56 s new
    for start in range(0, 12, 2):
        assert _finite_and_sounding(out.waveforms[0, start * RATE : (start + 2) * RATE])
