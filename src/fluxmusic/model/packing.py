"""Packing VAE latents into transformer tokens (2 x 2 patches) and back, with position ids.

Tokens are row-major over (time row, mel column); a token's features are ordered ``c * 4 + ph * 2 + pw``.
Any even latent length and width work, so clips of any duration pack.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor


def _check_even(t_lat: int, f_lat: int) -> None:
    if t_lat % 2 or f_lat % 2:
        raise ValueError(
            f"latent time and frequency sizes must be even to pack 2x2 patches, got ({t_lat}, {f_lat}); "
            "choose a duration whose latent length is even"
        )


def pack(latent: Tensor) -> Tensor:
    """Latents to tokens.

    Shapes:
        latent: (B, C, T, F) with T, F even -> tokens (B, T/2 * F/2, 4C).
    """
    _check_even(latent.shape[-2], latent.shape[-1])
    return rearrange(latent, "B C (T pt) (F pf) -> B (T F) (C pt pf)", pt=2, pf=2)


def unpack(tokens: Tensor, t_lat: int, f_lat: int) -> Tensor:
    """Tokens back to latents; the inverse of ``pack``.

    Shapes:
        tokens: (B, T/2 * F/2, 4C) -> latent (B, C, T, F).
    """
    _check_even(t_lat, f_lat)
    return rearrange(tokens, "B (T F) (C pt pf) -> B C (T pt) (F pf)", T=t_lat // 2, F=f_lat // 2, pt=2, pf=2)


def image_ids(batch: int, t_lat: int, f_lat: int, device: torch.device | str | None = None) -> Tensor:
    """Position ids of packed latent tokens: (0, time row, mel column).

    Shapes:
        -> (B, T/2 * F/2, 3), fp32.
    """
    _check_even(t_lat, f_lat)
    rows, cols = t_lat // 2, f_lat // 2
    ids = torch.zeros(rows, cols, 3, device=device)
    ids[..., 1] = torch.arange(rows, device=device)[:, None]
    ids[..., 2] = torch.arange(cols, device=device)[None, :]
    return ids.reshape(1, rows * cols, 3).expand(batch, -1, -1).contiguous()


def text_ids(batch: int, length: int, device: torch.device | str | None = None) -> Tensor:
    """Position ids of text tokens: all zero.

    Shapes:
        -> (B, Lc, 3), fp32.
    """
    return torch.zeros(batch, length, 3, device=device)
