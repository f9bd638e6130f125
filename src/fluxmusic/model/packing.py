"""Packing VAE latents into transformer tokens (p x p patches) and back, with position ids.

Tokens are row-major over (time row, mel column); a token's features are ordered
``c * p * p + pt * p + pf``. FluxMusic packs 2 x 2 patches (``patch=2``, the default everywhere);
larger patches trade detail for a shorter sequence (the bundled model uses 4). Any latent length and
width divisible by the patch work, so clips of any such duration pack.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor


def _check_divisible(t_lat: int, f_lat: int, patch: int) -> None:
    if patch < 1:
        raise ValueError(f"patch size must be a positive integer, got {patch}")
    if t_lat % patch or f_lat % patch:
        raise ValueError(
            f"latent time and frequency sizes must be multiples of the patch size {patch}, got "
            f"({t_lat}, {f_lat}); choose a duration whose latent length is a multiple of {patch}"
        )


def pack(latent: Tensor, patch: int = 2) -> Tensor:
    """Latents to tokens.

    Shapes:
        latent: (B, C, T, F) with T, F multiples of p -> tokens (B, T/p * F/p, C p^2).
    """
    _check_divisible(latent.shape[-2], latent.shape[-1], patch)
    return rearrange(latent, "B C (T pt) (F pf) -> B (T F) (C pt pf)", pt=patch, pf=patch)


def unpack(tokens: Tensor, t_lat: int, f_lat: int, patch: int = 2) -> Tensor:
    """Tokens back to latents; the inverse of ``pack``.

    Shapes:
        tokens: (B, T/p * F/p, C p^2) -> latent (B, C, T, F).
    """
    _check_divisible(t_lat, f_lat, patch)
    return rearrange(
        tokens,
        "B (T F) (C pt pf) -> B C (T pt) (F pf)",
        T=t_lat // patch,
        F=f_lat // patch,
        pt=patch,
        pf=patch,
    )


def image_ids(
    batch: int, t_lat: int, f_lat: int, device: torch.device | str | None = None, patch: int = 2
) -> Tensor:
    """Position ids of packed latent tokens: (0, time row, mel column), in patch units.

    Shapes:
        -> (B, T/p * F/p, 3), fp32.
    """
    _check_divisible(t_lat, f_lat, patch)
    rows, cols = t_lat // patch, f_lat // patch
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
