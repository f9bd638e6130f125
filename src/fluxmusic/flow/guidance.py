"""Classifier-free guidance as a wrapper around a batched velocity function."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fluxmusic.flow.samplers import VelocityFn


def classifier_free_guidance(batched_fn: VelocityFn, scale: float) -> VelocityFn:
    """Guided velocity ``v_u + scale * (v_c - v_u)`` from one batched forward.

    ``batched_fn`` must already hold the conditioning for the doubled batch: its first half
    conditional, its second half unconditional (an empty or a negative prompt). The returned
    function evaluates both halves in a single call.

    Shapes:
        returned fn: x (B, ...), t (B,) -> v (B, ...); ``batched_fn``: (2B, ...), (2B,) -> (2B, ...).
    """
    if not math.isfinite(scale):
        raise ValueError(f"guidance scale must be a finite number, got {scale}")

    def guided(x: Tensor, t: Tensor) -> Tensor:
        v_cond, v_uncond = batched_fn(torch.cat((x, x)), torch.cat((t, t))).chunk(2)
        return v_uncond + scale * (v_cond - v_uncond)

    return guided
