"""ODE samplers for the rectified flow: Euler, Heun and midpoint on uniform or shifted grids.

A sampler takes a ``VelocityFn`` -- any callable ``(x, t) -> v`` with ``t`` of shape (B,) -- so it
never needs to know about the network, the conditioning or guidance. Integration runs from t = 1
(noise) to t = 0 (data). Samplers are deterministic: they draw no randomness.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from fluxmusic.flow.path import shift_time

VelocityFn = Callable[[Tensor, Tensor], Tensor]
SAMPLERS: tuple[str, ...] = ("euler", "heun", "midpoint")
EVALS_PER_STEP: dict[str, int] = {"euler": 1, "heun": 2, "midpoint": 2}


def time_grid(steps: int, shift: float = 1.0) -> Tensor:
    """Times from 1 to 0: uniform, then warped by ``shift_time`` (shift > 1 spends more steps near noise).

    Shapes:
        -> (steps + 1,) fp64, starting at 1.0 and ending at 0.0.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return shift_time(torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64), shift)


def _euler(fn: VelocityFn, x: Tensor, t: float, t_next: float, tb: Callable[[float], Tensor]) -> Tensor:
    return x + (t_next - t) * fn(x, tb(t))


def _heun(fn: VelocityFn, x: Tensor, t: float, t_next: float, tb: Callable[[float], Tensor]) -> Tensor:
    dt = t_next - t
    v1 = fn(x, tb(t))
    v2 = fn(x + dt * v1, tb(t_next))
    return x + dt * 0.5 * (v1 + v2)


def _midpoint(fn: VelocityFn, x: Tensor, t: float, t_next: float, tb: Callable[[float], Tensor]) -> Tensor:
    dt = t_next - t
    v1 = fn(x, tb(t))
    return x + dt * fn(x + 0.5 * dt * v1, tb(t + 0.5 * dt))


_STEPS = {"euler": _euler, "heun": _heun, "midpoint": _midpoint}


def sample(
    velocity_fn: VelocityFn,
    x: Tensor,
    steps: int = 50,
    method: str = "euler",
    shift: float = 1.0,
    progress: bool = False,
) -> Tensor:
    """Integrate dx/dt = v(x, t) from t = 1 to t = 0.

    Args:
        velocity_fn: ``(x, t) -> v`` with t a (B,) tensor of the current time.
        x: The starting noise (t = 1).
        steps: Number of steps (network evaluations: ``steps * EVALS_PER_STEP[method]``).
        method: ``"euler"`` (the reference's), ``"heun"`` or ``"midpoint"``.
        shift: Time-grid shift; 1.0 is the reference's uniform grid.
        progress: Show a tqdm bar.

    Shapes:
        x: (B, ...) -> (B, ...), the sample at t = 0.
    """
    if method not in _STEPS:
        raise ValueError(f"unknown sampler {method!r}; choose one of {', '.join(SAMPLERS)}")
    step = _STEPS[method]
    grid = time_grid(steps, shift).tolist()
    batch = x.shape[0]

    def tb(t: float) -> Tensor:
        return torch.full((batch,), t, dtype=torch.float32, device=x.device)

    for t, t_next in tqdm(zip(grid[:-1], grid[1:]), total=steps, disable=not progress, desc="sampling"):
        x = step(velocity_fn, x, t, t_next, tb)
    return x
