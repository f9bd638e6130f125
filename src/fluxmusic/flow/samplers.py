"""ODE samplers for the rectified flow: Euler, Heun, midpoint, DPM-Solver++(2M); uniform or shifted grids.

A sampler takes a ``VelocityFn`` -- any callable ``(x, t) -> v`` with ``t`` of shape (B,) -- so it
never needs to know about the network, the conditioning or guidance. Integration runs from ``t_start``
(1 = pure noise; less for editing, where the start is a noised input) to t = 0 (data). A per-step
``StepCallback`` sees (and may replace) the state after every step: inpainting pins the known part of
the latent there. The samplers here are deterministic; a ``torch.Generator`` is passed to every step
so that stochastic ones draw from it, never from the global generator.

``ab2`` and ``dpmpp_2m`` are multistep solvers: each step makes one network call and reuses the previous
step's velocity or denoised estimate, so they keep a short history, which every :func:`sample` call
starts afresh.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Generator, Tensor
from tqdm.auto import tqdm

from fluxmusic.flow.names import EVALS_PER_STEP, SAMPLERS
from fluxmusic.flow.path import shift_time

__all__ = ["EVALS_PER_STEP", "SAMPLERS", "StepCallback", "VelocityFn", "sample", "time_grid"]

VelocityFn = Callable[[Tensor, Tensor], Tensor]
StepCallback = Callable[[int, float, float, Tensor], "Tensor | None"]
"""``(i, t, t_next, x) -> x``: called after step ``i`` (from ``t`` to ``t_next``) with the new state; a
returned tensor replaces the state, ``None`` keeps it."""
TimeFn = Callable[[float], Tensor]
StepFn = Callable[[VelocityFn, Tensor, float, float, TimeFn, "Generator | None"], Tensor]


def time_grid(steps: int, shift: float = 1.0, t_start: float = 1.0) -> Tensor:
    """Times from ``t_start`` to 0: uniform on [1, 0], warped by ``shift_time`` (shift > 1 spends more
    steps near noise), then scaled into [t_start, 0], so every step is spent inside it.

    Shapes:
        -> (steps + 1,) fp64, starting at exactly ``t_start`` and ending at 0.0.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if not 0.0 < t_start <= 1.0:
        raise ValueError(f"t_start must be in (0, 1] (1 = pure noise), got {t_start}")
    grid = shift_time(torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64), shift)
    return grid if t_start == 1.0 else grid * t_start


def _euler(fn: VelocityFn, x: Tensor, t: float, t_next: float, tb: TimeFn, _: Generator | None) -> Tensor:
    return x + (t_next - t) * fn(x, tb(t))


def _heun(fn: VelocityFn, x: Tensor, t: float, t_next: float, tb: TimeFn, _: Generator | None) -> Tensor:
    dt = t_next - t
    v1 = fn(x, tb(t))
    v2 = fn(x + dt * v1, tb(t_next))
    return x + dt * 0.5 * (v1 + v2)


def _midpoint(fn: VelocityFn, x: Tensor, t: float, t_next: float, tb: TimeFn, _: Generator | None) -> Tensor:
    dt = t_next - t
    v1 = fn(x, tb(t))
    return x + dt * fn(x + 0.5 * dt * v1, tb(t + 0.5 * dt))


def _log_snr(t: float) -> float:
    """``lambda(t) = log((1 - t) / t)``, the half log signal-to-noise ratio of the straight path."""
    if t >= 1.0:
        return -math.inf
    if t <= 0.0:
        return math.inf
    return math.log((1.0 - t) / t)


class _DPMSolver2M:
    """DPM-Solver++(2M) (Lu et al. 2022, arXiv 2211.01095) written for the rectified flow.

    With ``alpha_t = 1 - t``, ``sigma_t = t`` and the denoised estimate ``x0 = x - t v``, a first-order
    step from ``t`` to ``s`` is ``x_s = (s / t) x + ((t - s) / t) D`` with ``D = x0``, which equals an Euler
    step. The second-order step extrapolates ``D`` linearly in ``lambda`` from the previous estimate:
    ``D = x0 + h / (2 h_prev) (x0 - x0_prev)``, ``h = lambda(s) - lambda(t)``. The step from ``t = 1``
    (``lambda = -inf``) leaves no finite ``h_prev`` and the last step to ``t = 0`` has ``h = inf``: both
    stay first order, as in diffusers' ``lower_order_final``.
    """

    def __init__(self) -> None:
        self.previous: Tensor | None = None
        self.previous_h = math.inf

    def __call__(
        self, fn: VelocityFn, x: Tensor, t: float, t_next: float, tb: TimeFn, _: Generator | None
    ) -> Tensor:
        x0 = x - t * fn(x, tb(t))
        h = _log_snr(t_next) - _log_snr(t)
        denoised = x0
        if self.previous is not None and t_next > 0.0 and math.isfinite(self.previous_h):
            denoised = x0 + (h / (2.0 * self.previous_h)) * (x0 - self.previous)
        self.previous, self.previous_h = x0, h
        return (t_next / t) * x + ((t - t_next) / t) * denoised


class _AdamsBashforth2:
    """Two-step Adams-Bashforth on the velocity, with variable steps: one network call per step.

    ``x_s = x + dt (v + dt / (2 dt_prev) (v - v_prev))``, ``dt = s - t``: the velocity extrapolated
    linearly in ``t`` to the middle of the step. The first step (no history) is an Euler step. Where
    DPM-Solver++(2M) assumes the denoised estimate is smooth in ``lambda``, this assumes the velocity is
    smooth in ``t``, which on the bundled model gives the smaller error at equal calls
    (docs/performance.md).
    """

    def __init__(self) -> None:
        self.previous: Tensor | None = None
        self.previous_dt = 0.0

    def __call__(
        self, fn: VelocityFn, x: Tensor, t: float, t_next: float, tb: TimeFn, _: Generator | None
    ) -> Tensor:
        v, dt = fn(x, tb(t)), t_next - t
        slope = v if self.previous is None else v + (dt / (2.0 * self.previous_dt)) * (v - self.previous)
        self.previous, self.previous_dt = v, dt
        return x + dt * slope


_STEPS: dict[str, Callable[[], StepFn]] = {
    "euler": lambda: _euler,
    "heun": lambda: _heun,
    "midpoint": lambda: _midpoint,
    "dpmpp_2m": _DPMSolver2M,
    "ab2": _AdamsBashforth2,
}


def sample(
    velocity_fn: VelocityFn,
    x: Tensor,
    steps: int = 50,
    method: str = "euler",
    shift: float = 1.0,
    progress: bool = False,
    *,
    t_start: float = 1.0,
    callback: StepCallback | None = None,
    generator: Generator | None = None,
) -> Tensor:
    """Integrate dx/dt = v(x, t) from t = ``t_start`` to t = 0.

    Args:
        velocity_fn: ``(x, t) -> v`` with t a (B,) tensor of the current time.
        x: The state at ``t_start``: pure noise for t_start = 1, else a noised input
            ``(1 - t_start) x0 + t_start eps``.
        steps: Number of steps (network evaluations: ``steps * EVALS_PER_STEP[method]``), all spent
            inside [t_start, 0].
        method: ``"euler"`` (the reference's), ``"heun"``, ``"midpoint"``, or the multistep ``"ab2"`` and
            ``"dpmpp_2m"`` (second order at one call per step; see ``_AdamsBashforth2``, ``_DPMSolver2M``).
        shift: Time-grid shift; 1.0 is the reference's uniform grid.
        progress: Show a tqdm bar.
        t_start: Start time in (0, 1]; 1 integrates from pure noise (as the reference).
        callback: ``(i, t, t_next, x) -> x | None`` after every step; a returned tensor replaces the state.
        generator: The randomness of stochastic samplers (the ones here draw none).

    Shapes:
        x: (B, ...) -> (B, ...), the sample at t = 0.
    """
    if method not in _STEPS:
        raise ValueError(f"unknown sampler {method!r}; choose one of {', '.join(SAMPLERS)}")
    step = _STEPS[method]()  # a fresh history for multistep samplers
    grid = time_grid(steps, shift, t_start).tolist()
    batch = x.shape[0]

    def tb(t: float) -> Tensor:
        return torch.full((batch,), t, dtype=torch.float32, device=x.device)

    pairs = zip(grid[:-1], grid[1:])
    for i, (t, t_next) in enumerate(tqdm(pairs, total=steps, disable=not progress, desc="sampling")):
        x = step(velocity_fn, x, t, t_next, tb, generator)
        if callback is not None:
            replaced = callback(i, t, t_next, x)
            x = x if replaced is None else replaced
    return x
