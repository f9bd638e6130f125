"""Classifier-free guidance as a wrapper around a batched velocity function."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fluxmusic.flow.samplers import VelocityFn


def check_interval(interval: tuple[float, float] | None) -> tuple[float, float] | None:
    """Validate a guidance interval ``(lo, hi)`` with ``0 <= lo < hi <= 1``; ``None`` passes through."""
    if interval is None:
        return None
    try:
        lo, hi = (float(v) for v in interval)
    except (TypeError, ValueError):
        raise ValueError(f"guidance interval must be two numbers (lo, hi), got {interval!r}") from None
    if not (0.0 <= lo < hi <= 1.0):
        raise ValueError(
            f"guidance interval must satisfy 0 <= lo < hi <= 1 (t = 1 is noise), got ({lo}, {hi})"
        )
    return lo, hi


def classifier_free_guidance(
    batched_fn: VelocityFn,
    scale: float,
    interval: tuple[float, float] | None = None,
    conditional_fn: VelocityFn | None = None,
) -> VelocityFn:
    """Guided velocity ``v_u + scale * (v_c - v_u)`` from one batched forward.

    ``batched_fn`` must already hold the conditioning for the doubled batch: its first half
    conditional, its second half unconditional (an empty or a negative prompt). The returned
    function evaluates both halves in a single call.

    With ``interval = (lo, hi)`` the guidance applies only at times ``lo <= t <= hi`` (t = 1 is
    noise); elsewhere the velocity is the conditional one alone (guidance in a limited interval,
    Kynkaanniemi et al. 2024). ``conditional_fn`` evaluates those steps on the first half only,
    at half the cost; without it they run ``batched_fn`` and keep its conditional half.

    Shapes:
        returned fn: x (B, ...), t (B,) -> v (B, ...); ``batched_fn``: (2B, ...), (2B,) -> (2B, ...);
        ``conditional_fn``: (B, ...), (B,) -> (B, ...).
    """
    if not math.isfinite(scale):
        raise ValueError(f"guidance scale must be a finite number, got {scale}")
    interval = check_interval(interval)

    def guided(x: Tensor, t: Tensor) -> Tensor:
        v_cond, v_uncond = batched_fn(torch.cat((x, x)), torch.cat((t, t))).chunk(2)
        return v_uncond + scale * (v_cond - v_uncond)

    if interval is None:
        return guided
    lo, hi = interval

    def conditional(x: Tensor, t: Tensor) -> Tensor:
        if conditional_fn is not None:
            return conditional_fn(x, t)
        return batched_fn(torch.cat((x, x)), torch.cat((t, t))).chunk(2)[0]

    def limited(x: Tensor, t: Tensor) -> Tensor:
        inside = (t >= lo) & (t <= hi)
        if bool(inside.all()):
            return guided(x, t)
        if not bool(inside.any()):
            return conditional(x, t)
        mask = inside.view(-1, *([1] * (x.ndim - 1)))
        return torch.where(mask, guided(x, t), conditional(x, t))

    return limited
