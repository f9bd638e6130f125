"""MusicFlux: the FluxMusic MMDiT velocity network."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from fluxmusic.config import MusicFluxConfig
from fluxmusic.flow.cache import StepCache
from fluxmusic.model.blocks import DoubleStreamBlock, SingleStreamBlock
from fluxmusic.model.cache import cached_blocks
from fluxmusic.model.layers import LastLayer, MLPEmbedder, timestep_embedding
from fluxmusic.model.rope import rope_table
from fluxmusic.model.tempo import TempoEmbedder, check_tempo


class MusicFlux(nn.Module):
    """Flux-style MMDiT predicting the rectified-flow velocity of packed audio-latent tokens.

    Parameter names and the forward signature match the reference implementation, so released
    checkpoints load with ``load_state_dict(strict=True)``.

    Args:
        config: Transformer hyper-parameters, e.g. ``PRESETS["small"]``.

    Shapes:
        x: (B, Lx, in_channels) packed latent tokens; img_ids: (B, Lx, 3);
        txt: (B, Lc, context_in_dim); txt_ids: (B, Lc, 3); t: (B,) in [0, 1]; y: (B, vec_in_dim);
        tempo (models with ``config.tempo_frame_seconds > 0`` only): (B, 2) rows of (bpm, beat phase),
        bpm 0 for none -> velocity (B, Lx, in_channels).
    """

    def __init__(self, config: MusicFluxConfig) -> None:
        super().__init__()
        self.config = config
        hidden, heads, mlp = config.hidden_size, config.num_heads, config.mlp_hidden_dim
        self.in_channels = self.out_channels = config.in_channels
        self.img_in = nn.Linear(config.in_channels, hidden, bias=True)
        self.time_in = MLPEmbedder(256, hidden)
        self.vector_in = MLPEmbedder(config.vec_in_dim, hidden)
        self.txt_in = nn.Linear(config.context_in_dim, hidden)
        self.tempo_in = (
            TempoEmbedder(hidden, config.patch_size, config.tempo_frame_seconds)
            if config.has_tempo_input
            else None
        )
        self.double_blocks = nn.ModuleList(
            DoubleStreamBlock(hidden, heads, mlp, config.qkv_bias) for _ in range(config.depth)
        )
        self.single_blocks = nn.ModuleList(
            SingleStreamBlock(hidden, heads, mlp) for _ in range(config.depth_single_blocks)
        )
        self.final_layer = LastLayer(hidden, self.out_channels)
        self.gradient_checkpointing = False

    @classmethod
    def random(cls, config: MusicFluxConfig, seed: int = 0, std: float = 0.02) -> MusicFlux:
        """Random N(0, std) weights, built without default initialisation (fast for large presets).

        For speed and memory measurements; train from the default initialisation instead.
        """
        with torch.device("meta"):
            model = cls(config)
        model = model.to_empty(device="cpu")
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, std, generator=generator)
        return model

    def rope(self, txt_ids: Tensor, img_ids: Tensor) -> Tensor:
        """Rotary table for the joint [txt; img] sequence; compute once and pass to ``forward``.

        Shapes:
            txt_ids: (B, Lc, 3), img_ids: (B, Lx, 3) -> (B, 1, Lc + Lx, head_dim // 2) complex.
        """
        return rope_table(torch.cat((txt_ids, img_ids), dim=1), self.config.axes_dim, self.config.theta)

    def bind(
        self,
        img_ids: Tensor,
        txt: Tensor,
        txt_ids: Tensor,
        y: Tensor,
        tempo: Tensor | None = None,
        cache: StepCache | None = None,
    ) -> Callable[[Tensor, Tensor], Tensor]:
        """A velocity function ``(x, t) -> v`` with the conditioning and the rotary table fixed.

        The rotary table is computed once here (once per sampling run), and shared across the batch
        when every row has the same positions. ``cache`` (a fresh ``StepCache`` per sampling run and per
        bound function) turns on step caching for this function's calls.

        Shapes:
            img_ids: (B, Lx, 3), txt: (B, Lc, context_in_dim), txt_ids: (B, Lc, 3), y: (B, vec_in_dim),
            tempo: (B, 2) or None; returned fn: x (B, Lx, in_channels), t (B,) -> (B, Lx, in_channels).
        """
        shared = bool((img_ids == img_ids[:1]).all() and (txt_ids == txt_ids[:1]).all())
        rope = self.rope(txt_ids[:1], img_ids[:1]) if shared else self.rope(txt_ids, img_ids)

        def velocity(x: Tensor, t: Tensor) -> Tensor:
            return self(x, img_ids, txt, txt_ids, t, y, rope=rope, tempo=tempo, cache=cache)

        return velocity

    def forward(
        self,
        x: Tensor,
        img_ids: Tensor,
        txt: Tensor,
        txt_ids: Tensor,
        t: Tensor,
        y: Tensor,
        rope: Tensor | None = None,
        tempo: Tensor | None = None,
        cache: StepCache | None = None,
    ) -> Tensor:
        """Predict the velocity ``eps - x0`` at time ``t``.

        ``rope`` is an optional precomputed ``self.rope(txt_ids, img_ids)``; samplers pass it so the
        table is built once per run rather than once per call. ``tempo`` feeds the tempo input of models
        built with one (``None``: no tempo for any row). ``cache`` reuses the blocks' residual on rows
        whose input barely changed since the last call (``fluxmusic.model.cache``); ``None`` (the
        default) runs every block.
        """
        if x.ndim != 3 or txt.ndim != 3:
            raise ValueError(
                f"x and txt must be (B, L, C) tensors, got {tuple(x.shape)} and {tuple(txt.shape)}"
            )
        if rope is None:
            rope = self.rope(txt_ids, img_ids)
        img = self.img_in(x)
        vec = self.time_in(timestep_embedding(t, 256).to(img.dtype)) + self.vector_in(y)
        if tempo is not None:
            if self.tempo_in is None:
                raise ValueError("this MusicFlux has no tempo input (config.tempo_frame_seconds is 0)")
            grid, bpm = self.tempo_in(check_tempo(tempo, x.shape[0]), img_ids, img.dtype)
            img, vec = img + grid, vec + bpm
        txt = self.txt_in(txt)
        if cache is None:
            img = self.blocks(img, txt, vec, rope)
        else:
            img = cached_blocks(self, img, txt, vec, rope, cache)
        return self.final_layer(img, vec)

    def blocks(self, img: Tensor, txt: Tensor, vec: Tensor, rope: Tensor) -> Tensor:
        """The double-stream then the single-stream blocks; returns the audio tokens.

        Shapes:
            img: (B, Lx, H), txt: (B, Lc, H), vec: (B, H), rope: (1 or B, 1, Lc + Lx, D // 2) -> (B, Lx, H).
        """
        for block in self.double_blocks:
            img, txt = self._run(block, img, txt, vec, rope)
        seq = torch.cat((txt, img), dim=1)
        for block in self.single_blocks:
            seq = self._run(block, seq, vec, rope)
        return seq[:, txt.shape[1] :]

    def _run(self, block: nn.Module, *args: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        if self.gradient_checkpointing and self.training:
            return torch.utils.checkpoint.checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    @property
    def num_parameters(self) -> int:
        """Total parameter count."""
        return sum(p.numel() for p in self.parameters())
