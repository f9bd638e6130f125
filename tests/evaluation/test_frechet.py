"""Fréchet distance: zero for identical sets, closed forms for Gaussians, stable for singular covariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fluxmusic.evaluation.frechet import (
    GaussianStats,
    frechet_distance,
    frechet_distance_from_stats,
    gaussian_stats,
    trace_sqrt_product,
)


def test_identical_sets_are_at_distance_zero() -> None:
    x = np.random.default_rng(0).normal(size=(500, 8))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    stats = gaussian_stats(x)
    assert stats.count == 500 and stats.cov.shape == (8, 8) and np.allclose(stats.cov, stats.cov.T)


def test_same_distribution_is_near_zero_and_shifted_mean_matches_closed_form() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(20000, 4)), rng.normal(size=(20000, 4))
    assert frechet_distance(a, b) < 0.01
    shift = np.array([1.0, -2.0, 0.5, 0.0])  # same covariance: FD = |shift|^2
    assert frechet_distance(a + shift, b) == pytest.approx(float(shift @ shift), abs=0.03)


def test_matches_closed_form_for_given_statistics() -> None:
    # Diagonal covariances: FD = |mu_a - mu_b|^2 + sum (sqrt(s_a) - sqrt(s_b))^2
    sa, sb = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    ma, mb = np.zeros(3), np.array([1.0, 1.0, 0.0])
    a = GaussianStats(mean=ma, cov=np.diag(sa), count=10)
    b = GaussianStats(mean=mb, cov=np.diag(sb), count=10)
    expected = 2.0 + float(((np.sqrt(sa) - np.sqrt(sb)) ** 2).sum())
    assert frechet_distance_from_stats(a, b) == pytest.approx(expected, rel=1e-10)


def test_trace_sqrt_agrees_with_scipy_sqrtm_on_full_covariances() -> None:
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    ca, cb = x @ x.T + 0.1 * np.eye(6), y @ y.T + 0.1 * np.eye(6)
    assert trace_sqrt_product(ca, cb) == pytest.approx(float(np.trace(sqrtm(ca @ cb)).real), rel=1e-8)


def test_singular_covariances_give_a_finite_non_negative_distance() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(5, 16)), rng.normal(size=(7, 16))  # fewer samples than dimensions
    value = frechet_distance(torch.from_numpy(a).float(), b)
    assert np.isfinite(value) and value >= 0


def test_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="widths differ"):
        frechet_distance(np.ones((4, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((4, 3), np.nan), np.ones((4, 3)))
