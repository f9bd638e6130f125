"""Joins between kept and generated audio: weights, equal-power splicing, level matching, window appends."""

from __future__ import annotations

import math

import pytest
import torch

from fluxmusic.pipeline.joins import MAX_GAIN, append_window, level_gain, region_weights, splice


def _noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_region_weights_are_one_inside_zero_outside_and_ramp_outside_the_region() -> None:
    w = region_weights(100, [(40, 60)], 5)
    assert (w[40:60] == 1).all() and (w[:35] == 0).all() and (w[65:] == 0).all()
    assert torch.all(torch.diff(w[34:41]) > 0) and torch.all(torch.diff(w[59:66]) < 0)
    assert 0 < w[35] < w[39] < 1 and 0 < w[64] < w[60] < 1


def test_region_weights_clip_at_the_ends_and_merge_close_regions() -> None:
    w = region_weights(50, [(0, 10), (14, 20), (45, 50)], 4)
    assert w.shape == (50,) and (w[:10] == 1).all() and (w[45:] == 1).all()
    assert (w[10:14] > 0).all()  # the gap between two close regions is never fully kept
    assert (w[24:41] == 0).all()
    assert torch.equal(region_weights(30, [(10, 20)], 0)[9:21], torch.tensor([0.0] + [1.0] * 10 + [0.0]))


def test_splice_is_exact_where_kept_and_where_generated_and_equal_power_between() -> None:
    original, generated = _noise(1000), _noise(2, 1000, seed=1)
    weight = region_weights(1000, [(400, 600)], 50)
    out = splice(original, generated, weight)
    kept, made = weight == 0, weight == 1
    assert torch.equal(out[:, kept], original[kept].expand(2, -1))
    assert torch.equal(out[:, made], generated[:, made])
    angle = weight * math.pi / 2
    assert torch.allclose(torch.cos(angle) ** 2 + torch.sin(angle) ** 2, torch.ones(1000))


def test_level_gain_matches_rms_on_the_known_samples_and_is_safe_on_silence() -> None:
    reference = _noise(800)
    generated = torch.stack((0.25 * reference, torch.zeros(800)))
    known = torch.zeros(800, dtype=torch.bool)
    known[:500] = True
    gain = level_gain(reference, generated, known)
    assert gain.shape == (2, 1)
    assert gain[0, 0] == pytest.approx(4.0, rel=1e-5) and gain[1, 0] == 1.0  # silent row: unchanged
    assert level_gain(reference, 1e-4 * generated[:1], known)[0, 0] == MAX_GAIN  # clamped
    assert level_gain(reference, generated, torch.zeros(800, dtype=torch.bool)).eq(1).all()


def test_append_window_keeps_the_audio_before_the_crossfade_and_matches_level() -> None:
    audio = 0.5 * _noise(2, 3000)
    window = 0.05 * _noise(2, 2000, seed=3)
    window[:, :1000] = 0.2 * audio[:, -1000:]  # the window re-makes the context at a fifth of its level
    out = append_window(audio, window, context=1000, crossfade=100)
    assert out.shape == (2, 3000 + 1000)
    assert torch.equal(out[:, :2900], audio[:, :2900])
    assert torch.allclose(out[:, 3000:], window[:, 1000:] * 5.0, atol=1e-5)  # brought back to its level
    assert torch.equal(append_window(audio, window, 0, 100), torch.cat((audio, window), dim=1))


def test_a_crossfade_of_correlated_signals_keeps_their_level() -> None:
    signal = _noise(4000)
    weight = region_weights(4000, [(2000, 4000)], 1000)
    same = splice(signal, signal[None].clone(), weight)  # correlation 1: constant amplitude, no swell
    assert torch.allclose(same[0], signal, atol=1e-6)
    other = _noise(1, 4000, seed=7)
    mixed = splice(signal, other, weight)  # nearly uncorrelated: plain cos/sin gains
    angle = weight * math.pi / 2
    plain = signal * torch.cos(angle) + other[0] * torch.sin(angle)
    assert torch.allclose(mixed[0], plain, atol=0.05)


def test_long_form_crossfades_in_the_middle_of_the_context_unless_an_input_is_kept() -> None:
    from fluxmusic.pipeline.long_form import crossfade_end

    assert crossfade_end(context=4000, fade=400, start=10000) == 2200
    assert crossfade_end(context=4000, fade=400, start=10000, protect=14000) == 4000  # the input's end
    assert crossfade_end(context=4000, fade=400, start=10000, protect=12000) == 2400  # starts after it
    audio, window = 0.1 * _noise(1, 6000), 0.1 * _noise(1, 5000, seed=2)
    out = append_window(audio, window, context=2000, crossfade=200, end=1100)
    assert torch.equal(out[:, :4900], audio[:, :4900]) and out.shape == (1, 9000)
    gain = level_gain(audio[:, 4000:], window[:, :2000], torch.arange(2000) < 900)  # before the crossfade
    assert torch.allclose(out[:, 5100:], window[:, 1100:] * gain)
