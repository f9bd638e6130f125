"""Double-stream (MMDiT) and single-stream transformer blocks of MusicFlux."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fluxmusic.model.layers import (
    Modulation,
    QKNorm,
    SelfAttention,
    attention,
    gated_residual,
    modulate,
    split_heads,
)


def _mlp(hidden_size: int, mlp_hidden_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(hidden_size, mlp_hidden_dim, bias=True),
        nn.GELU(approximate="tanh"),
        nn.Linear(mlp_hidden_dim, hidden_size, bias=True),
    )


class DoubleStreamBlock(nn.Module):
    """Separate weights for the audio (img) and text streams, joint attention over [txt; img].

    Shapes:
        img: (B, Li, H), txt: (B, Lt, H), vec: (B, H), rope: (B, 1, Lt + Li, D // 2) complex
        -> img: (B, Li, H), txt: (B, Lt, H).
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_hidden_dim: int, qkv_bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.img_mod = Modulation(hidden_size, double=True)
        self.img_attn = SelfAttention(hidden_size, num_heads, qkv_bias)
        self.img_mlp = _mlp(hidden_size, mlp_hidden_dim)
        self.txt_mod = Modulation(hidden_size, double=True)
        self.txt_attn = SelfAttention(hidden_size, num_heads, qkv_bias)
        self.txt_mlp = _mlp(hidden_size, mlp_hidden_dim)

    def _qkv(self, x: Tensor, attn: SelfAttention) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = split_heads(attn.qkv(x), self.num_heads)
        q, k = attn.norm(q, k, v)
        return q, k, v

    def forward(self, img: Tensor, txt: Tensor, vec: Tensor, rope: Tensor) -> tuple[Tensor, Tensor]:
        img_mod1, img_mod2 = self.img_mod(vec)
        txt_mod1, txt_mod2 = self.txt_mod(vec)
        assert img_mod2 is not None and txt_mod2 is not None

        img_q, img_k, img_v = self._qkv(modulate(img, img_mod1), self.img_attn)
        txt_q, txt_k, txt_v = self._qkv(modulate(txt, txt_mod1), self.txt_attn)
        joint = attention(
            torch.cat((txt_q, img_q), dim=2),
            torch.cat((txt_k, img_k), dim=2),
            torch.cat((txt_v, img_v), dim=2),
            rope,
        )
        txt_len = txt.shape[1]
        txt_attn, img_attn = joint[:, :txt_len], joint[:, txt_len:]

        img = gated_residual(img, img_mod1.gate, self.img_attn.proj(img_attn))
        img = gated_residual(img, img_mod2.gate, self.img_mlp(modulate(img, img_mod2)))
        txt = gated_residual(txt, txt_mod1.gate, self.txt_attn.proj(txt_attn))
        txt = gated_residual(txt, txt_mod2.gate, self.txt_mlp(modulate(txt, txt_mod2)))
        return img, txt


class SingleStreamBlock(nn.Module):
    """One stream over the joint sequence; qkv and MLP input share ``linear1``, outputs ``linear2``.

    Shapes:
        x: (B, L, H), vec: (B, H), rope: (B, 1, L, D // 2) complex -> (B, L, H).
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_hidden_dim: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.mlp_hidden_dim = mlp_hidden_dim
        self.linear1 = nn.Linear(hidden_size, hidden_size * 3 + mlp_hidden_dim)
        self.linear2 = nn.Linear(hidden_size + mlp_hidden_dim, hidden_size)
        self.norm = QKNorm(hidden_size // num_heads)
        self.modulation = Modulation(hidden_size, double=False)

    def forward(self, x: Tensor, vec: Tensor, rope: Tensor) -> Tensor:
        mod, _ = self.modulation(vec)
        qkv, mlp = self.linear1(modulate(x, mod)).split((3 * self.hidden_size, self.mlp_hidden_dim), dim=-1)
        q, k, v = split_heads(qkv, self.num_heads)
        q, k = self.norm(q, k, v)
        attn = attention(q, k, v, rope)
        out = self.linear2(torch.cat((attn, F.gelu(mlp, approximate="tanh")), dim=2))
        return gated_residual(x, mod.gate, out)
