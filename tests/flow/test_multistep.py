"""The multistep samplers (ab2, dpmpp_2m): exactness, convergence order, history and editing slots."""

from __future__ import annotations

import math

import pytest
import torch

from fluxmusic.flow import SAMPLERS, sample, time_grid
from fluxmusic.flow.names import EVALS_PER_STEP, MULTISTEP

MULTI = sorted(MULTISTEP)


def test_multistep_samplers_are_registered_at_one_call_per_step() -> None:
    for name in MULTI:
        assert name in SAMPLERS and EVALS_PER_STEP[name] == 1


@pytest.mark.parametrize("method", MULTI)
def test_exact_on_a_constant_field(method: str) -> None:
    x1, v = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    out = sample(lambda x, t: v.expand_as(x), x1, steps=6, method=method, shift=2.0)
    torch.testing.assert_close(out, x1 - v, atol=1e-12, rtol=0)


@pytest.mark.parametrize("steps", [1, 4, 9])
def test_dpmpp_2m_exact_on_straight_paths(steps: int) -> None:
    # a field whose denoised estimate x - t v is the constant c: every path runs straight to c
    c = torch.randn(2, 7, dtype=torch.float64)

    def field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (x - c) / t.to(torch.float64)[:, None]

    out = sample(field, torch.randn(2, 7, dtype=torch.float64), steps=steps, method="dpmpp_2m", shift=3.0)
    torch.testing.assert_close(out, c, atol=1e-6, rtol=0)  # the field sees t in fp32


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_ab2_is_exact_after_its_euler_start_on_a_field_linear_in_t(shift: float) -> None:
    # dx/dt = a + b t: Adams-Bashforth 2 integrates every step after the first (Euler) exactly
    a, b = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    x1 = torch.randn(4, 6, dtype=torch.float64)
    t1 = time_grid(5, shift)[1].item()
    euler_error = -b * (1.0 - t1) ** 2 / 2
    out = sample(lambda x, t: a + b * t.to(torch.float64)[:, None], x1, steps=5, method="ab2", shift=shift)
    torch.testing.assert_close(out, x1 - a - b / 2 + euler_error, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", MULTI)
def test_second_order_convergence(method: str, convergence) -> None:
    errors, rates = convergence(method)
    for rate in rates:
        assert abs(rate - 2) < 0.25, (method, errors, rates)
    euler, _ = convergence("euler", steps=(64, 128))
    assert errors[0] < euler[0] / 10  # at equal network calls, far closer than Euler


@pytest.mark.parametrize("method", MULTI)
def test_history_starts_afresh_with_every_call(method: str, field) -> None:
    x = torch.randn(2, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    first = sample(field, x, steps=7, method=method)
    sample(field, x * 3, steps=5, method=method)
    assert torch.equal(sample(field, x, steps=7, method=method), first)


@pytest.mark.parametrize("method", MULTI)
def test_start_time_evaluates_on_the_scaled_grid(method: str, field) -> None:
    times: list[float] = []

    def recording(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        times.append(float(t[0]))
        return field(x, t)

    x = torch.randn(1, 3, dtype=torch.float64)
    sample(recording, x, steps=6, method=method, shift=2.0, t_start=0.4)
    grid = time_grid(6, 2.0, t_start=0.4).tolist()
    assert times == pytest.approx(grid[:-1], abs=1e-7)
    assert times[0] == pytest.approx(0.4, abs=1e-7)


@pytest.mark.parametrize("method", MULTI)
def test_start_time_stays_second_order(method: str, field) -> None:
    x = torch.linspace(-1, 1, 6, dtype=torch.float64)[None]
    fine = sample(field, x, steps=4096, method="heun", t_start=0.6)
    errors = [
        (sample(field, x, steps=n, method=method, t_start=0.6) - fine).abs().max().item() for n in (64, 128)
    ]
    assert abs(math.log2(errors[0] / errors[1]) - 2) < 0.3, errors
