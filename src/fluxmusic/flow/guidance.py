"""Classifier-free guidance as a wrapper around a batched velocity function."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fluxmusic.errors import InputError
from fluxmusic.flow.cache import check_nonnegative
from fluxmusic.flow.samplers import VelocityFn


def check_interval(interval: tuple[float, float] | None) -> tuple[float, float] | None:
    """Validate a guidance interval ``(lo, hi)`` with ``0 <= lo < hi <= 1``; ``None`` passes through."""
    if interval is None:
        return None
    try:
        lo, hi = (float(v) for v in interval)
    except (TypeError, ValueError):
        raise InputError(f"guidance interval must be two numbers (lo, hi), got {interval!r}") from None
    if not (0.0 <= lo < hi <= 1.0):
        raise InputError(
            f"guidance interval must satisfy 0 <= lo < hi <= 1 (t = 1 is noise), got ({lo}, {hi})"
        )
    return lo, hi


def check_eta(eta: float) -> float:
    """Validate the weight of the guidance update's parallel part (see ``classifier_free_guidance``)."""
    return check_nonnegative(eta, "guidance eta", "1 = plain guidance")


def project_update(update: Tensor, x: Tensor, t: Tensor, v_cond: Tensor, eta: float) -> Tensor:
    """The guidance update with its part along the conditional denoised estimate weighted by ``eta``.

    Adaptive projected guidance (Sadat et al. 2024, arXiv 2410.02416) splits the guidance update of
    the denoised estimate ``x0 = x - t v`` into a part parallel to the conditional ``x0`` (which
    mostly raises its scale: loudness here, saturation in images) and the orthogonal rest (the
    content). On the rectified-flow path the ``x0`` update is ``-t`` times the velocity update, so
    the same split of the velocity update needs no division by ``t`` and holds at ``t = 0`` too.

    Shapes:
        update, x, v_cond: (B, ...); t: (B,) -> (B, ...)
    """
    dims = tuple(range(1, x.ndim))
    x0 = (x - t.view(-1, *([1] * (x.ndim - 1))) * v_cond).double()
    direction = torch.nn.functional.normalize(x0.flatten(1), dim=1).view_as(x0)
    parallel = (update.double() * direction).sum(dims, keepdim=True) * direction
    return (update.double() - (1.0 - eta) * parallel).to(update.dtype)


def classifier_free_guidance(
    batched_fn: VelocityFn,
    scale: float,
    interval: tuple[float, float] | None = None,
    conditional_fn: VelocityFn | None = None,
    eta: float = 1.0,
) -> VelocityFn:
    """Guided velocity ``v_u + scale * (v_c - v_u)`` from one batched forward.

    ``batched_fn`` must already hold the conditioning for the doubled batch: its first half
    conditional, its second half unconditional (an empty or a negative prompt). The returned
    function evaluates both halves in a single call.

    With ``interval = (lo, hi)`` the guidance applies only at times ``lo <= t <= hi`` (t = 1 is
    noise); elsewhere the velocity is the conditional one alone (guidance in a limited interval,
    Kynkaanniemi et al. 2024). ``conditional_fn`` evaluates those steps on the first half only,
    at half the cost; without it they run ``batched_fn`` and keep its conditional half.

    ``eta < 1`` is projected guidance, ``v_c + (scale - 1) * update``: the part of the update
    ``v_c - v_u`` along the conditional denoised estimate, which mostly scales it, is weighted by
    ``eta`` (0 drops it; see ``project_update``), so higher scales push the content without
    inflating the level. ``eta = 1`` is exactly plain guidance.

    Shapes:
        returned fn: x (B, ...), t (B,) -> v (B, ...); ``batched_fn``: (2B, ...), (2B,) -> (2B, ...);
        ``conditional_fn``: (B, ...), (B,) -> (B, ...).
    """
    if not math.isfinite(scale):
        raise InputError(f"guidance scale must be a finite number, got {scale}")
    interval = check_interval(interval)
    eta = check_eta(eta)

    def guided(x: Tensor, t: Tensor) -> Tensor:
        v_cond, v_uncond = batched_fn(torch.cat((x, x)), torch.cat((t, t))).chunk(2)
        if eta == 1.0:
            return v_uncond + scale * (v_cond - v_uncond)
        return v_cond + (scale - 1.0) * project_update(v_cond - v_uncond, x, t, v_cond, eta)

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
