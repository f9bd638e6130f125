"""Rotary position embedding over three position axes.

The table is computed once per sampling run (``rope_table``) in float64 for exactness and stored as
complex64 unit rotations ``cos + i sin``, so the transformer's hot path never touches float64 nor
recomputes trigonometry; rotating a feature pair is one complex multiplication.
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
        complex64 rotations ``cos(angle) + i sin(angle)``.

    Shapes:
        ids: (B, L, len(axes_dim)) -> table: (B, 1, L, D // 2) with D = sum(axes_dim).
    """
    if ids.shape[-1] != len(axes_dim):
        raise ValueError(f"ids have {ids.shape[-1]} position axes but axes_dim has {len(axes_dim)}")
    angles = []
    for axis, dim in enumerate(axes_dim):
        scale = torch.arange(0, dim, 2, dtype=torch.float64, device=ids.device) / dim
        omega = 1.0 / (theta**scale)
        angles.append(ids[..., axis].to(torch.float64)[..., None] * omega)
    angle = torch.cat(angles, dim=-1)
    return torch.polar(torch.ones_like(angle), angle).to(torch.complex64).unsqueeze(1)


def apply_rope(x: Tensor, table: Tensor) -> Tensor:
    """Rotate consecutive feature pairs ``(x0, x1)`` of ``x`` by the angles in ``table``.

    ``(x0 + i x1) * (cos + i sin)``, computed in fp32; returns fp32.

    Shapes:
        x: (B, H, L, D), table: (B, 1, L, D // 2) complex -> (B, H, L, D).
    """
    pairs = torch.view_as_complex(x.float().contiguous().unflatten(-1, (-1, 2)))
    return torch.view_as_real(pairs * table).flatten(-2)
