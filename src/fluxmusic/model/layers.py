"""Building blocks of MusicFlux: embeddings, modulation, QK-normalised rotary attention.

Module and parameter names match the reference implementation so its checkpoints load strictly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fluxmusic.model.rope import apply_rope


def timestep_embedding(
    t: Tensor, dim: int, max_period: float = 10_000.0, time_factor: float = 1000.0
) -> Tensor:
    """Sinusoidal embedding of ``time_factor * t``, cos half first, then sin.

    Shapes:
        t: (B,) -> (B, dim), in fp32.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = (time_factor * t.float())[:, None] * freqs[None]
    emb = torch.cat((torch.cos(args), torch.sin(args)), dim=-1)
    if dim % 2:
        emb = torch.cat((emb, torch.zeros_like(emb[:, :1])), dim=-1)
    return emb


class MLPEmbedder(nn.Module):
    """``out_layer(SiLU(in_layer(x)))``: embeds the timestep features and the pooled text vector.

    Shapes:
        x: (B, in_dim) -> (B, hidden_dim).
    """

    def __init__(self, in_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.in_layer = nn.Linear(in_dim, hidden_dim)
        self.silu = nn.SiLU()
        self.out_layer = nn.Linear(hidden_dim, hidden_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.out_layer(self.silu(self.in_layer(x)))


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learned scale, computed in fp32 (the output stays fp32).

    Shapes:
        x: (..., D) -> (..., D) fp32.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x.float(), (x.shape[-1],), self.scale.float(), self.eps)


class QKNorm(nn.Module):
    """RMS-normalises queries and keys over the head dim (fp32 out; cast after the rotary step)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query_norm = RMSNorm(dim)
        self.key_norm = RMSNorm(dim)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Shapes: q, k, v: (B, H, L, D) -> q, k: (B, H, L, D) fp32."""
        return self.query_norm(q), self.key_norm(k)


def attention(q: Tensor, k: Tensor, v: Tensor, rope: Tensor) -> Tensor:
    """Rotary scaled-dot-product attention (in ``v``'s dtype), heads merged back into features.

    Shapes:
        q, k, v: (B, H, L, D), rope: (B, 1, L, D // 2) complex -> (B, L, H * D).
    """
    q, k = apply_rope(q, rope).to(v.dtype), apply_rope(k, rope).to(v.dtype)
    out = F.scaled_dot_product_attention(q, k, v)
    return out.transpose(1, 2).flatten(2)


def split_heads(qkv: Tensor, num_heads: int) -> tuple[Tensor, Tensor, Tensor]:
    """Split a fused qkv projection into per-head q, k, v.

    Shapes:
        qkv: (B, L, 3 * H * D) -> three (B, H, L, D) views.
    """
    q, k, v = qkv.unflatten(-1, (3, num_heads, -1)).permute(2, 0, 3, 1, 4).unbind(0)
    return q, k, v


class SelfAttention(nn.Module):
    """Holds the qkv projection, QK norm and output projection of one double-block stream."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.norm = QKNorm(dim // num_heads)
        self.proj = nn.Linear(dim, dim)


@dataclass
class ModulationOut:
    """Shift, scale and gate, each (B, 1, H)."""

    shift: Tensor
    scale: Tensor
    gate: Tensor


class Modulation(nn.Module):
    """adaLN modulation from the conditioning vector: one or two (shift, scale, gate) triples.

    Shapes:
        vec: (B, H) -> ModulationOut fields of (B, 1, H).
    """

    def __init__(self, dim: int, double: bool) -> None:
        super().__init__()
        self.multiplier = 6 if double else 3
        self.lin = nn.Linear(dim, self.multiplier * dim)

    def forward(self, vec: Tensor) -> tuple[ModulationOut, ModulationOut | None]:
        chunks = self.lin(F.silu(vec))[:, None, :].chunk(self.multiplier, dim=-1)
        first = ModulationOut(*chunks[:3])
        second = ModulationOut(*chunks[3:]) if self.multiplier == 6 else None
        return first, second


def modulate(x: Tensor, mod: ModulationOut) -> Tensor:
    """``(1 + scale) * LayerNorm(x) + shift`` with an affine-free LayerNorm (eps 1e-6).

    Shapes:
        x: (B, L, H) -> (B, L, H).
    """
    normed = F.layer_norm(x, x.shape[-1:], eps=1e-6)
    return torch.addcmul(mod.shift, normed, 1 + mod.scale)


def gated_residual(x: Tensor, gate: Tensor, update: Tensor) -> Tensor:
    """``x + gate * update``.

    Shapes:
        x, update: (B, L, H), gate: (B, 1, H) -> (B, L, H).
    """
    return torch.addcmul(x, gate, update)


class LastLayer(nn.Module):
    """Final adaLN (shift, scale) and projection back to token width.

    Shapes:
        x: (B, L, H), vec: (B, H) -> (B, L, out_channels).
    """

    def __init__(self, hidden_size: int, out_channels: int) -> None:
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, out_channels, bias=True)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size, bias=True))

    def forward(self, x: Tensor, vec: Tensor) -> Tensor:
        shift, scale = self.adaLN_modulation(vec).chunk(2, dim=1)
        x = torch.addcmul(shift[:, None, :], self.norm_final(x), 1 + scale[:, None, :])
        return self.linear(x)
