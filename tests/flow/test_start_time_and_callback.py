"""flow.sample's editing slots: a start time, a per-step callback, a generator for stochastic samplers."""

from __future__ import annotations

import pytest
import torch

from fluxmusic.flow import SAMPLERS, sample, shift_time, time_grid


def _field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    tt = t.to(x.dtype).view(-1, *([1] * (x.ndim - 1)))
    return -x * torch.cos(3 * tt) + torch.sin(tt)


def _euler_by_hand(x: torch.Tensor, steps: int, shift: float) -> torch.Tensor:
    """The sampler as it was before the start time existed: Euler on the shifted grid from 1 to 0."""
    grid = shift_time(torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64), shift).tolist()
    for t, t_next in zip(grid[:-1], grid[1:]):
        x = x + (t_next - t) * _field(x, torch.full((x.shape[0],), t, dtype=torch.float32))
    return x


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_start_time_one_is_bit_identical_to_the_plain_sampler(shift: float) -> None:
    x = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(0))
    by_hand = _euler_by_hand(x, 6, shift)
    assert torch.equal(sample(_field, x, steps=6, shift=shift), by_hand)
    assert torch.equal(sample(_field, x, steps=6, shift=shift, t_start=1.0), by_hand)
    assert torch.equal(time_grid(6, shift, t_start=1.0), time_grid(6, shift))


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_grid_starts_exactly_at_the_start_time_and_spends_every_step_inside(shift: float) -> None:
    grid = time_grid(8, shift, t_start=0.35)
    assert grid[0].item() == 0.35 and grid[-1].item() == 0.0 and len(grid) == 9
    assert (grid[:-1] > grid[1:]).all() and (grid <= 0.35).all()
    # the shift warps the grid inside [t_start, 0] as it warps [1, 0]
    torch.testing.assert_close(grid / 0.35, time_grid(8, shift), rtol=0, atol=1e-15)


def test_start_time_integrates_from_there() -> None:
    calls: list[float] = []

    def field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(float(t[0]))
        return torch.ones_like(x)

    x = torch.zeros(1, 4, dtype=torch.float64)
    out = sample(field, x, steps=4, t_start=0.5)
    torch.testing.assert_close(out, x - 0.5)  # dx/dt = 1 from t = 0.5 to 0
    assert calls == pytest.approx([0.5, 0.375, 0.25, 0.125])


def test_bad_start_time_is_refused() -> None:
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="t_start must be in"):
            sample(_field, torch.zeros(1, 2), steps=2, t_start=bad)


@pytest.mark.parametrize("method", SAMPLERS)
def test_callback_sees_every_step_and_can_pin_part_of_the_state(method: str) -> None:
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(1))
    known = torch.randn(2, 3, generator=torch.Generator().manual_seed(2))
    seen: list[tuple[int, float, float]] = []

    def pin(i: int, t: float, t_next: float, state: torch.Tensor) -> torch.Tensor:
        seen.append((i, t, t_next))
        state = state.clone()
        state[:, :3] = (1 - t_next) * known + t_next * x[:, :3]  # the known part on its noisy path
        return state

    out = sample(_field, x, steps=5, method=method, shift=2.0, callback=pin)
    grid = time_grid(5, 2.0).tolist()
    assert seen == [(i, grid[i], grid[i + 1]) for i in range(5)]
    assert torch.equal(out[:, :3], known)  # at t = 0 the pinned part is exactly the known data
    free = sample(_field, x, steps=5, method=method, shift=2.0)
    assert not torch.allclose(out[:, :3], free[:, :3])
    # the field acts element by element, so the free part is exactly what the unpinned run gives
    assert torch.equal(out[:, 3:], free[:, 3:])


def test_callback_returning_none_keeps_the_state() -> None:
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(sample(_field, x, steps=4, callback=lambda *a: None), sample(_field, x, steps=4))


@pytest.mark.parametrize("method", SAMPLERS)
def test_deterministic_samplers_draw_nothing_from_the_generator(method: str) -> None:
    gen = torch.Generator().manual_seed(11)
    before = gen.get_state().clone()
    x = torch.randn(2, 5, generator=torch.Generator().manual_seed(4))
    out = sample(_field, x, steps=3, method=method, generator=gen)
    assert torch.equal(gen.get_state(), before)
    assert torch.equal(out, sample(_field, x, steps=3, method=method))
