"""The rectified-flow path, training timestep sampling and the flow-matching loss.

Convention: t in [0, 1], t = 1 is noise and t = 0 is data; x_t = (1 - t) x0 + t eps and the
network predicts the velocity v = eps - x0 (so dx/dt = v along the straight path).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _expand(t: Tensor, like: Tensor) -> Tensor:
    return t.reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


def interpolate(x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
    """Point on the straight path between data and noise.

    Shapes:
        x0, noise: (B, ...), t: (B,) -> x_t: (B, ...).
    """
    t = _expand(t, x0)
    return (1 - t) * x0 + t * noise


def velocity_target(x0: Tensor, noise: Tensor) -> Tensor:
    """The regression target ``noise - x0``.

    Shapes:
        x0, noise: (B, ...) -> (B, ...).
    """
    return noise - x0


def shift_time(t: Tensor, shift: float) -> Tensor:
    """Warp times toward the noise end: ``shift * t / (1 + (shift - 1) * t)``; ``shift = 1`` is identity.

    Shapes:
        t: any -> same.
    """
    if shift <= 0:
        raise ValueError(f"time shift must be positive, got {shift}")
    if shift == 1.0:
        return t
    return shift * t / (1 + (shift - 1) * t)


def sample_timesteps(
    batch: int,
    generator: torch.Generator | None = None,
    *,
    mean: float = 0.0,
    std: float = 1.0,
    shift: float = 1.0,
    device: torch.device | str | None = None,
) -> Tensor:
    """Logit-normal training times ``t = sigmoid(n)``, ``n ~ N(mean, std)``, optionally shifted.

    Drawn on CPU with ``generator`` (so results do not depend on the device), then moved.

    Shapes:
        -> (batch,) fp32 in (0, 1).
    """
    if std <= 0:
        raise ValueError(f"logit-normal std must be positive, got {std}")
    n = torch.randn(batch, generator=generator) * std + mean
    return shift_time(torch.sigmoid(n), shift).to(device)


def flow_matching_loss(prediction: Tensor, target: Tensor, reduce: bool = True) -> Tensor:
    """Mean squared error per sample, then (optionally) the mean over the batch, in fp32.

    Shapes:
        prediction, target: (B, ...) -> () or (B,) when ``reduce`` is False.
    """
    per_sample = (prediction.float() - target.float()).pow(2).flatten(1).mean(dim=1)
    return per_sample.mean() if reduce else per_sample
