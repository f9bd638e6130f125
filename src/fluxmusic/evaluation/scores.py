"""The numbers behind the set metrics: FAD, FAD-inf, per-clip FAD contributions, KL, CLAP score.

- **FAD** is :func:`fluxmusic.evaluation.frechet.frechet_distance` (Gaussian fits, float64, the trace of
  the matrix square root from symmetric eigendecompositions).
- **FAD-inf** (:func:`fad_inf`, after fadtk's method): FAD of random subsets of the evaluated set of
  growing sizes n against the whole reference, a least-squares line of FAD against 1/n, and its
  intercept: the FAD of an infinitely large set, free of the small-sample bias. Its error combines the
  fit's standard error with the evaluated set's own sampling noise (see :class:`FadInf`).
- **Per-clip contributions** (:func:`fad_contributions`): ``FAD(all) - FAD(all but clip i)``; positive
  values are clips that pull the set away from the reference.
- **KL** (:func:`kl_divergence`): mean over pairs of ``KL(p_reference || p_generated)`` of classifier label
  distributions, as in AudioCraft's KL metric.
- **CLAP score** (:func:`clap_score`): mean cosine between each clip's audio embedding and its prompt's
  text embedding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from fluxmusic.errors import InputError
from fluxmusic.evaluation.frechet import (
    GaussianStats,
    _as_array,
    _psd_sqrt,
    frechet_distance_from_stats,
    gaussian_stats,
)

__all__ = ["FadInf", "clap_score", "fad_contributions", "fad_inf", "kl_divergence", "FAD_INF_MIN_CLIPS"]

FAD_INF_MIN_CLIPS = 8
"""The smallest set :func:`fad_inf` fits (it needs at least three distinct subset sizes)."""


@dataclass(frozen=True)
class FadInf:
    """The FAD-inf fit.

    Attributes:
        value: The intercept of FAD against 1/n (the extrapolated FAD of an infinite set).
        error: Its standard error: the fit's (from its residuals) and the evaluated set's own sampling
            noise (``sigma^2 / N``, with ``sigma^2`` from the spread of the random subsets, which vary by
            about ``sigma^2 (1/n - 1/N)``), added in quadrature.
        slope: The fitted slope (the small-sample bias is ``slope / n``).
        r2: Coefficient of determination of the fit.
        sizes: The subset sizes n.
        fads: The mean FAD at each size.
    """

    value: float
    error: float
    slope: float
    r2: float
    sizes: list[int] = field(default_factory=list)
    fads: list[float] = field(default_factory=list)


def _stats(x: Tensor | np.ndarray | GaussianStats) -> GaussianStats:
    return x if isinstance(x, GaussianStats) else gaussian_stats(x)


def fad_inf(
    embeddings: Tensor | np.ndarray,
    reference: Tensor | np.ndarray | GaussianStats,
    steps: int = 15,
    min_size: int | None = None,
    draws: int = 5,
    seed: int = 0,
) -> FadInf:
    """FAD-inf of ``embeddings`` against ``reference`` (see the module docstring).

    Args:
        embeddings: The evaluated set.
        reference: The reference set, or its Gaussian fit.
        steps: Number of subset sizes, evenly spaced from ``min_size`` to N.
        min_size: The smallest subset (default ``max(2, N // 4)``).
        draws: Random subsets averaged at each size (one at N itself: the whole set).
        seed: Seed of the subset draws.

    Shapes:
        embeddings: (N, D), N >= 8; reference: (M, D)
    """
    array = _as_array(embeddings)
    n = array.shape[0]
    if n < FAD_INF_MIN_CLIPS:
        raise InputError(f"fad-inf needs at least {FAD_INF_MIN_CLIPS} clips in the set, got {n}")
    ref = _stats(reference)
    low = max(2, n // 4) if min_size is None else max(2, min(min_size, n - 2))
    sizes = sorted({int(round(s)) for s in np.linspace(low, n, steps)})
    if len(sizes) < 3:
        raise InputError(f"fad-inf needs at least 3 distinct subset sizes, got {sizes}")
    rng = np.random.default_rng(seed)
    fads, spread_terms = [], []
    for size in sizes:
        rounds = 1 if size == n else draws
        values = [
            frechet_distance_from_stats(gaussian_stats(array[rng.choice(n, size, replace=False)]), ref)
            for _ in range(rounds)
        ]
        fads.append(float(np.mean(values)))
        if rounds > 1:  # subsets of m out of n vary by about sigma^2 (1/m - 1/n)
            spread_terms.append(float(np.var(values, ddof=1)) / (1.0 / size - 1.0 / n))
    x, y = 1.0 / np.array(sizes, dtype=np.float64), np.array(fads)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    k = len(x)
    spread = float(((x - x.mean()) ** 2).sum())
    sigma2 = float((residual**2).sum()) / (k - 2)
    fit_var = sigma2 * float((x**2).sum()) / (k * spread)
    set_var = float(np.mean(spread_terms)) / n if spread_terms else 0.0
    error = math.sqrt(fit_var + set_var)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((residual**2).sum()) / total if total > 0 else 1.0
    return FadInf(float(intercept), error, float(slope), r2, sizes, fads)


def fad_contributions(
    embeddings: Tensor | np.ndarray, reference: Tensor | np.ndarray | GaussianStats
) -> np.ndarray:
    """Each clip's leave-one-out contribution ``FAD(all) - FAD(all but i)``.

    The reference's square root is computed once (``Tr((S_i S_r)^(1/2)) = Tr((R S_i R)^(1/2))`` with
    ``R = S_r^(1/2)``); each left-out fit comes from running sums, so the cost is one eigendecomposition
    per clip.

    Shapes:
        embeddings: (N, D), N >= 3; reference: (M, D) -> (N,)
    """
    from scipy.linalg import eigvalsh

    array = _as_array(embeddings)
    n = array.shape[0]
    if n < 3:
        raise InputError(f"per-clip FAD contributions need at least 3 clips, got {n}")
    ref = _stats(reference)
    root = _psd_sqrt(ref.cov)
    trace_ref = float(np.trace(ref.cov))
    total = frechet_distance_from_stats(gaussian_stats(array), ref)
    sums, outer = array.sum(0), array.T @ array
    out = np.empty(n)
    for i, row in enumerate(array):
        mean = (sums - row) / (n - 1)
        cov = (outer - np.outer(row, row) - (n - 1) * np.outer(mean, mean)) / (n - 2)
        inner = root @ (0.5 * (cov + cov.T)) @ root
        trace_sqrt = float(np.sqrt(np.clip(eigvalsh(0.5 * (inner + inner.T)), 0.0, None)).sum())
        diff = mean - ref.mean
        value = diff @ diff + np.trace(cov) + trace_ref - 2.0 * trace_sqrt
        out[i] = total - max(float(value), 0.0)
    return out


def kl_divergence(
    reference: Tensor | np.ndarray, generated: Tensor | np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """``KL(p_reference || p_generated)`` per pair of label distributions (nats).

    Both sides are clipped at ``eps`` and renormalised, so a label the generated clip rules out costs a
    large but finite amount.

    Shapes:
        reference, generated: (N, K) rows summing to 1 -> (N,)
    """
    p = np.asarray(reference.numpy() if isinstance(reference, torch.Tensor) else reference, np.float64)
    q = np.asarray(generated.numpy() if isinstance(generated, torch.Tensor) else generated, np.float64)
    if p.shape != q.shape or p.ndim != 2:
        raise InputError(f"KL needs paired (N, K) label distributions, got {p.shape} and {q.shape}")
    p = np.clip(p, eps, None)
    q = np.clip(q, eps, None)
    p /= p.sum(1, keepdims=True)
    q /= q.sum(1, keepdims=True)
    return (p * (np.log(p) - np.log(q))).sum(1)


def clap_score(audio: Tensor | np.ndarray, text: Tensor | np.ndarray) -> np.ndarray:
    """Cosine similarity of each clip's audio embedding with its prompt's text embedding.

    Shapes:
        audio, text: (N, D) -> (N,), in [-1, 1]
    """
    a = torch.as_tensor(
        np.asarray(audio, np.float64) if not isinstance(audio, torch.Tensor) else audio
    ).double()
    t = torch.as_tensor(np.asarray(text, np.float64) if not isinstance(text, torch.Tensor) else text).double()
    if a.shape != t.shape or a.dim() != 2:
        raise InputError(f"CLAP score needs one prompt per clip, got {tuple(a.shape)} and {tuple(t.shape)}")
    return torch.nn.functional.cosine_similarity(a, t, dim=1).numpy()
