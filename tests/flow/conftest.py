"""Shared analytic fields and the convergence measurement of the sampler tests."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from fluxmusic.flow import sample


def smooth_field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """dx/dt = -x cos(3 t) + sin(t): smooth and non-linear in t. Shapes: x (B, N), t (B,) -> (B, N)."""
    tt = t.to(torch.float64)[:, None]
    return -x * torch.cos(3 * tt) + torch.sin(tt)


def convergence_errors(
    method: str, steps: tuple[int, ...] = (64, 128, 256)
) -> tuple[list[float], list[float]]:
    """Max error of ``method`` on :func:`smooth_field` at each step count against 4096 Heun steps, and the
    observed orders log2(e_n / e_2n) between neighbouring counts."""
    x1 = torch.linspace(-2, 2, 8, dtype=torch.float64)[None].repeat(2, 1)
    fine = sample(smooth_field, x1, steps=4096, method="heun")
    errors = [(sample(smooth_field, x1, steps=n, method=method) - fine).abs().max().item() for n in steps]
    return errors, [math.log2(errors[i] / errors[i + 1]) for i in range(len(errors) - 1)]


@pytest.fixture
def field() -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return smooth_field


@pytest.fixture
def convergence() -> Callable[..., tuple[list[float], list[float]]]:
    return convergence_errors
