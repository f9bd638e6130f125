"""Tempo estimation on click tracks at known BPM, and the agreement statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fluxmusic.evaluation.tempo import (
    beat_alignment,
    circular_octave_correlation,
    density_correlation,
    estimate_onset_rates,
    estimate_tempi,
    estimate_tempo,
    onset_rate,
    pulse_clarity,
    tempo_agreement,
)

SR = 16000


def click_track(bpm: float, seconds: float = 5.12, accent_every: int = 4) -> torch.Tensor:
    """Decaying 1 kHz blips on every beat (downbeats louder)."""
    n = int(seconds * SR)
    t = np.arange(int(0.03 * SR)) / SR
    blip = np.sin(2 * np.pi * 1000 * t) * np.exp(-t / 0.008)
    out = np.zeros(n)
    period = 60.0 / bpm
    for k in range(int(seconds / period) + 1):
        start = int(round(k * period * SR))
        end = min(start + blip.size, n)
        if start < n:
            out[start:end] += (1.0 if k % accent_every == 0 else 0.6) * blip[: end - start]
    return torch.from_numpy(0.5 * out).float()


@pytest.mark.parametrize("bpm", [72.0, 96.0, 120.0, 150.0])
def test_click_tracks_at_known_bpm(bpm: float) -> None:
    assert estimate_tempo(click_track(bpm)) == pytest.approx(bpm, rel=0.04)


def test_search_range_limits_the_answer() -> None:
    est = estimate_tempo(click_track(200.0), bpm_range=(60.0, 180.0))
    assert 60.0 <= est <= 180.0
    assert est == pytest.approx(100.0, rel=0.04)  # the half-tempo is the best in range


def test_silence_has_no_tempo_and_batches_work() -> None:
    assert math.isnan(estimate_tempo(torch.zeros(SR * 2)))
    tempi = estimate_tempi(torch.stack([click_track(90.0), torch.zeros(int(5.12 * SR))]))
    assert tempi.shape == (2,) and tempi[0] == pytest.approx(90.0, rel=0.04) and math.isnan(tempi[1])


def test_agreement_perfect_octave_errors_and_misses() -> None:
    req = np.array([60.0, 80.0, 100.0, 120.0, 150.0, 175.0])
    perfect = tempo_agreement(req, req)
    assert perfect.log_corr == pytest.approx(1.0) and perfect.octave_corr == pytest.approx(1.0)
    assert perfect.acc1 == 1.0 and perfect.acc2 == 1.0 and perfect.median_ratio == pytest.approx(1.0)

    doubled = req * np.where(np.arange(6) % 2 == 0, 2.0, 1.0)  # half the estimates an octave high
    octave = tempo_agreement(req, doubled)
    assert octave.acc1 == 0.5 and octave.acc2 == 1.0
    assert octave.octave_corr == pytest.approx(1.0) and octave.log_corr < 0.9

    missing = tempo_agreement(req, np.where(np.arange(6) < 2, np.nan, req))
    assert missing.valid == 4 and missing.count == 6 and missing.acc1 == pytest.approx(4 / 6)
    assert missing.to_dict()["log_corr"] == pytest.approx(1.0)


def test_octave_correlation_of_unrelated_tempi_is_small() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.uniform(60, 180, 4000), rng.uniform(60, 180, 4000)
    assert abs(circular_octave_correlation(a, b)) < 0.05
    assert math.isnan(tempo_agreement(a[:2], b[:2]).log_corr)  # too few pairs


def test_agreement_rejects_bad_requests() -> None:
    with pytest.raises(ValueError, match="positive"):
        tempo_agreement(np.array([0.0, 100.0]), np.array([90.0, 100.0]))
    with pytest.raises(ValueError, match="alike"):
        tempo_agreement(np.array([90.0]), np.array([90.0, 100.0]))


def test_onset_rate_counts_the_clicks_and_follows_their_tempo() -> None:
    bpm = np.array([60.0, 90.0, 120.0, 180.0])
    rates = estimate_onset_rates(torch.stack([click_track(b) for b in bpm]))
    beats_per_second = bpm / 60.0
    assert rates == pytest.approx(beats_per_second, rel=0.25)
    assert density_correlation(bpm, rates) > 0.98
    assert density_correlation(bpm, rates[::-1]) < -0.9


def test_onset_rate_of_silence_is_nan_and_left_out() -> None:
    assert math.isnan(onset_rate(torch.zeros(SR)))
    bpm = np.array([60.0, 90.0, 120.0, 150.0])
    assert density_correlation(bpm, np.array([1.0, 1.5, 2.0, math.nan])) == pytest.approx(1.0)
    assert math.isnan(density_correlation(bpm[:2], np.array([1.0, 2.0])))
    with pytest.raises(ValueError, match="alike"):
        density_correlation(bpm, np.ones(3))


def test_pulse_clarity_is_high_for_a_steady_beat_and_low_without_one() -> None:
    steady = pulse_clarity(click_track(100.0, accent_every=1))
    rng = np.random.default_rng(0)
    scattered = torch.zeros(int(5.12 * SR))
    for start in rng.choice(scattered.numel() - 500, size=12, replace=False):  # blips at random times
        scattered[start : start + 480] += click_track(60.0)[:480]
    assert steady > 0.8 and pulse_clarity(scattered) < 0.4
    assert math.isnan(pulse_clarity(torch.zeros(SR * 2)))
    assert math.isnan(pulse_clarity(click_track(120.0, seconds=0.5)))  # shorter than a 60 BPM beat
    with pytest.raises(ValueError, match="bpm_range"):
        pulse_clarity(click_track(120.0), bpm_range=(180.0, 60.0))


def test_beat_alignment_sees_onsets_on_or_off_the_given_grid() -> None:
    clicks = click_track(120.0, accent_every=1)  # a click every 0.5 s from t = 0
    on_beat = beat_alignment(clicks, 120.0)
    assert on_beat > 0.7
    assert beat_alignment(clicks, 120.0, phase=0.5) == pytest.approx(-on_beat, abs=1e-6)  # off-beat
    assert abs(beat_alignment(clicks, 97.0)) < 0.3  # an unrelated grid
    assert math.isnan(beat_alignment(torch.zeros(SR), 120.0))
    with pytest.raises(ValueError, match="bpm must be a positive number"):
        beat_alignment(clicks, 0.0)
