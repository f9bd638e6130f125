"""FAD against a direct SciPy computation and closed forms, FAD-inf's asymptote, contributions, KL, CLAP."""

from __future__ import annotations

import numpy as np
import pytest

from fluxmusic.errors import InputError
from fluxmusic.evaluation.frechet import GaussianStats, frechet_distance, frechet_distance_from_stats
from fluxmusic.evaluation.scores import clap_score, fad_contributions, fad_inf, kl_divergence


def _direct_fad(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with scipy.linalg.sqrtm, for well-conditioned sets."""
    from scipy.linalg import sqrtm

    ma, mb = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = sqrtm(ca @ cb).real
    return float((ma - mb) @ (ma - mb) + np.trace(ca) + np.trace(cb) - 2 * np.trace(root))


def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    x = rng.normal(size=(d, d))
    return x @ x.T / d + 0.1 * np.eye(d)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fad_equals_direct_scipy_computation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = 12
    a = rng.multivariate_normal(rng.normal(size=d), _random_spd(rng, d), size=600)
    b = rng.multivariate_normal(rng.normal(size=d), _random_spd(rng, d), size=900)
    assert frechet_distance(a, b) == pytest.approx(_direct_fad(a, b), rel=1e-6)


def test_fad_closed_form_for_known_full_covariances() -> None:
    # Commuting covariances (same eigenvectors): Tr((Sa Sb)^(1/2)) = sum sqrt(la * lb)
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    la, lb = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([5.0, 1.0, 0.5, 2.0, 9.0])
    ma, mb = rng.normal(size=5), rng.normal(size=5)
    a = GaussianStats(ma, q @ np.diag(la) @ q.T, 0)
    b = GaussianStats(mb, q @ np.diag(lb) @ q.T, 0)
    expected = float((ma - mb) @ (ma - mb) + ((np.sqrt(la) - np.sqrt(lb)) ** 2).sum())
    assert frechet_distance_from_stats(a, b) == pytest.approx(expected, rel=1e-10)


def _truth() -> tuple[GaussianStats, GaussianStats, float]:
    rng = np.random.default_rng(0)
    d = 8
    a = GaussianStats(np.zeros(d), _random_spd(rng, d), 0)
    b = GaussianStats(0.5 * rng.normal(size=d), _random_spd(rng, d), 0)
    return a, b, frechet_distance_from_stats(a, b)


def test_fad_inf_recovers_the_asymptote_within_its_error() -> None:
    truth_a, truth_b, true_fad = _truth()
    x = np.random.default_rng(101).multivariate_normal(truth_a.mean, truth_a.cov, size=400)
    fit = fad_inf(x, truth_b, seed=1)
    assert abs(fit.value - true_fad) <= fit.error
    assert fit.slope > 0 and 0 < fit.error < 0.1 * true_fad
    assert (
        frechet_distance_from_stats(GaussianStats(x.mean(0), np.cov(x, rowvar=False), 400), truth_b)
        > fit.value
    )
    assert fit.sizes[0] == 100 and fit.sizes[-1] == 400 and len(fit.fads) == len(fit.sizes)


def test_fad_inf_error_is_calibrated_over_sets() -> None:
    truth_a, truth_b, true_fad = _truth()
    z = []
    for seed in range(12):
        x = np.random.default_rng(200 + seed).multivariate_normal(truth_a.mean, truth_a.cov, size=300)
        fit = fad_inf(x, truth_b, seed=seed, steps=10)
        z.append((fit.value - true_fad) / fit.error)
    z = np.abs(np.array(z))
    assert (z <= 2).mean() >= 0.8 and (z <= 1).mean() >= 0.4


def test_fad_inf_needs_enough_clips() -> None:
    with pytest.raises(InputError, match="at least 8 clips"):
        fad_inf(np.zeros((5, 3)), np.ones((10, 3)))


def test_fad_contributions_match_leave_one_out() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(30, 6)), rng.normal(size=(200, 6)) + 0.3
    x[7] += 5.0  # an outlier pulls the set away
    values = fad_contributions(x, y)
    total = frechet_distance(x, y)
    for i in (0, 7, 29):
        assert values[i] == pytest.approx(total - frechet_distance(np.delete(x, i, 0), y), abs=1e-8)
    assert int(np.argmax(values)) == 7


def test_kl_on_hand_made_distributions() -> None:
    p = np.array([[0.5, 0.5], [1.0, 0.0], [0.25, 0.75]])
    q = np.array([[0.5, 0.5], [0.5, 0.5], [0.75, 0.25]])
    values = kl_divergence(p, q, eps=1e-12)
    assert values[0] == pytest.approx(0.0, abs=1e-9)
    assert values[1] == pytest.approx(np.log(2.0), rel=1e-6)
    assert values[2] == pytest.approx(0.25 * np.log(1 / 3) + 0.75 * np.log(3), rel=1e-6)
    assert np.isfinite(kl_divergence(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]))).all()
    with pytest.raises(InputError, match="paired"):
        kl_divergence(p, q[:2])


def test_clap_score_on_hand_made_vectors() -> None:
    audio = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    text = np.array([[3.0, 0.0], [0.0, -1.0], [1.0, 0.0]])
    assert clap_score(audio, text) == pytest.approx([1.0, -1.0, np.sqrt(0.5)])
    with pytest.raises(InputError, match="one prompt per clip"):
        clap_score(audio, text[:2])
