"""Fréchet distance between Gaussian fits of two sets of embeddings (FID / FAD style).

``FD = |mu_a - mu_b|^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2))``. The trace of the matrix square
root is computed without forming ``sqrtm(S_a S_b)`` (which is not symmetric and makes ``scipy.linalg.sqrtm``
return complex noise for near-singular covariances): with ``R = S_a^(1/2)`` (symmetric, from an
eigendecomposition), ``S_a S_b`` is similar to the symmetric PSD matrix ``R S_b R``, so
``Tr((S_a S_b)^(1/2)) = sum(sqrt(eig(R S_b R)))`` with tiny negative eigenvalues from round-off clipped to
zero. Everything runs in float64 with SciPy.

The estimate is biased upwards for small sets (the covariance of n samples in d dimensions is noisy; with
n <= d it is singular, which this formula handles but which inflates the distance). Compare distances
only between sets of the same sizes and embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from fluxmusic.errors import InputError


@dataclass(frozen=True)
class GaussianStats:
    """Mean and covariance of a set of embeddings.

    Attributes:
        mean: Sample mean (float64).
        cov: Unbiased sample covariance (float64, symmetric).
        count: Number of embeddings fitted.

    Shapes:
        mean: (D,); cov: (D, D)
    """

    mean: np.ndarray
    cov: np.ndarray
    count: int


def _as_array(embeddings: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(embeddings, torch.Tensor):
        embeddings = embeddings.detach().cpu().double().numpy()
    array = np.asarray(embeddings, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 2:
        raise InputError(f"embeddings must be (N, D) with N >= 2, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError("embeddings contain NaN or inf")
    return array


def gaussian_stats(embeddings: Tensor | np.ndarray) -> GaussianStats:
    """Fit a Gaussian (mean, unbiased covariance) to embeddings.

    Shapes:
        embeddings: (N, D), N >= 2
    """
    array = _as_array(embeddings)
    cov = np.cov(array, rowvar=False)
    cov = np.atleast_2d(cov)
    return GaussianStats(mean=array.mean(axis=0), cov=0.5 * (cov + cov.T), count=array.shape[0])


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (negative round-off eigenvalues -> 0)."""
    from scipy.linalg import eigh

    values, vectors = eigh(0.5 * (matrix + matrix.T))
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """``Tr((cov_a @ cov_b)^(1/2))`` for symmetric PSD matrices, computed stably (see module docstring).

    Shapes:
        cov_a, cov_b: (D, D)
    """
    from scipy.linalg import eigvalsh

    root = _psd_sqrt(cov_a)
    inner = root @ cov_b @ root
    values = eigvalsh(0.5 * (inner + inner.T))
    return float(np.sqrt(np.clip(values, 0.0, None)).sum())


def frechet_distance_from_stats(a: GaussianStats, b: GaussianStats) -> float:
    """Fréchet distance between two Gaussians (>= 0; 0 for identical statistics)."""
    if a.mean.shape != b.mean.shape:
        raise ValueError(f"embedding widths differ: {a.mean.shape[0]} vs {b.mean.shape[0]}")
    diff = a.mean - b.mean
    value = diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2.0 * trace_sqrt_product(a.cov, b.cov)
    return max(float(value), 0.0)


def frechet_distance(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> float:
    """Fréchet distance between Gaussian fits of two embedding sets.

    Args:
        a: One set of embeddings (e.g. generated clips).
        b: The other (e.g. held-out real clips); sizes may differ, widths must match.

    Returns:
        The distance (squared units of the embedding), >= 0.

    Shapes:
        a: (Na, D); b: (Nb, D)
    """
    return frechet_distance_from_stats(gaussian_stats(a), gaussian_stats(b))
