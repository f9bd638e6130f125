"""Rotary position embedding over three position axes.

The table is computed once per sampling run (``rope_table``) in float64 for exactness and stored as
fp32 cos/sin, so the transformer's hot path never touches float64 nor recomputes trigonometry.
"""

from __future__ import annotations

import torch
from torch import Tensor


def rope_table(ids: Tensor, axes_dim: tuple[int, ...], theta: int) -> Tensor:
    """Cos/sin table for the positions ``ids``.

    Each axis ``i`` rotates ``axes_dim[i] // 2`` consecutive feature pairs with frequencies
    ``theta ** (-2j / axes_dim[i])``; the axes' pairs are laid side by side.

    Args:
        ids: Integer-valued positions, one column per axis.
        axes_dim: Rotary width per axis (sums to the head dim).
        theta: Base frequency.

    Returns:
        fp32 tensor stacking cos and sin on the last axis.

    Shapes:
        ids: (B, L, len(axes_dim)) -> table: (B, 1, L, D // 2, 2) with D = sum(axes_dim).
    """
    if ids.shape[-1] != len(axes_dim):
        raise ValueError(f"ids have {ids.shape[-1]} position axes but axes_dim has {len(axes_dim)}")
    angles = []
    for axis, dim in enumerate(axes_dim):
        scale = torch.arange(0, dim, 2, dtype=torch.float64, device=ids.device) / dim
        omega = 1.0 / (theta**scale)
        angles.append(ids[..., axis].to(torch.float64)[..., None] * omega)
    angle = torch.cat(angles, dim=-1)
    table = torch.stack((torch.cos(angle), torch.sin(angle)), dim=-1)
    return table.to(torch.float32).unsqueeze(1)


def apply_rope(x: Tensor, table: Tensor) -> Tensor:
    """Rotate consecutive feature pairs of ``x`` by the angles in ``table``.

    The rotation is computed in fp32 and returned in ``x``'s dtype.

    Shapes:
        x: (B, H, L, D), table: (B, 1, L, D // 2, 2) -> (B, H, L, D).
    """
    pairs = x.float().unflatten(-1, (-1, 2))
    x0, x1 = pairs.unbind(-1)
    cos, sin = table.unbind(-1)
    rotated = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return rotated.flatten(-2).to(x.dtype)
