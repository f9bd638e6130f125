"""Typed configurations and the named MusicFlux presets.

Every config is a frozen dataclass validated in ``__post_init__``; a bad value raises ``ValueError``
naming the field and the fix. ``PRESETS`` maps the released FluxMusic sizes (and ``tiny`` for tests)
to their transformer configs, with the exact numbers of the reference implementation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from fluxmusic.errors import InputError


@dataclass(frozen=True)
class MusicFluxConfig:
    """Hyper-parameters of the MusicFlux MMDiT velocity network.

    Field names follow the reference implementation's ``params`` so that a reference config dict
    converts with ``MusicFluxConfig.from_dict``.

    Attributes:
        in_channels: Width of a packed latent token (VAE channels x patch x patch).
        vec_in_dim: Width of the pooled text vector ``y`` (CLAP pooler: 768).
        context_in_dim: Width of the text token states ``txt`` (T5-XXL: 4096).
        hidden_size: Transformer width H.
        mlp_ratio: MLP hidden width as a multiple of H.
        num_heads: Attention heads; ``hidden_size / num_heads`` is the head dim.
        depth: Number of double-stream (MMDiT) blocks.
        depth_single_blocks: Number of single-stream blocks.
        axes_dim: Rotary dims per position axis (must sum to the head dim, each even).
        theta: Rotary base frequency.
        qkv_bias: Whether the qkv projections carry a bias.
        patch_size: Side of the square latent patch packed into one token. FluxMusic (every released
            size) uses 2; the bundled model uses 4 (a 4x shorter sequence for CPU training).
        tempo_frame_seconds: Seconds per latent frame for the optional tempo input
            (``fluxmusic.model.tempo``: a beat grid on the audio tokens and the BPM added to ``vec``);
            0 (FluxMusic, every released size) builds no tempo input. The bundled model uses 0.04
            (16 kHz, hop 160, VAE downsampling 4).
    """

    in_channels: int = 32
    vec_in_dim: int = 768
    context_in_dim: int = 4096
    hidden_size: int = 512
    mlp_ratio: float = 4.0
    num_heads: int = 16
    depth: int = 8
    depth_single_blocks: int = 16
    axes_dim: tuple[int, ...] = (8, 12, 12)
    theta: int = 10_000
    qkv_bias: bool = True
    patch_size: int = 2
    tempo_frame_seconds: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "axes_dim", tuple(int(a) for a in self.axes_dim))
        positive = (
            "in_channels",
            "vec_in_dim",
            "context_in_dim",
            "hidden_size",
            "num_heads",
            "theta",
            "patch_size",
        )
        for name in positive:
            if int(getattr(self, name)) <= 0:
                raise InputError(f"MusicFluxConfig.{name} must be positive, got {getattr(self, name)}")
        if self.depth < 0 or self.depth_single_blocks < 0:
            raise InputError(
                f"MusicFluxConfig depths must be >= 0, got depth={self.depth}, "
                f"depth_single_blocks={self.depth_single_blocks}"
            )
        if self.in_channels % (self.patch_size**2):
            raise InputError(
                f"MusicFluxConfig.in_channels ({self.in_channels}) must be the VAE latent channels times "
                f"patch_size^2 ({self.patch_size**2})"
            )
        if not (0.0 <= float(self.tempo_frame_seconds) < 10.0):
            raise InputError(
                "MusicFluxConfig.tempo_frame_seconds must be 0 (no tempo input) or the seconds per latent "
                f"frame, got {self.tempo_frame_seconds}"
            )
        if self.mlp_ratio <= 0:
            raise InputError(f"MusicFluxConfig.mlp_ratio must be positive, got {self.mlp_ratio}")
        if self.hidden_size % self.num_heads:
            raise InputError(
                f"MusicFluxConfig.hidden_size ({self.hidden_size}) must be divisible by "
                f"num_heads ({self.num_heads})"
            )
        if sum(self.axes_dim) != self.head_dim or any(a % 2 for a in self.axes_dim):
            raise InputError(
                f"MusicFluxConfig.axes_dim {list(self.axes_dim)} must be even numbers summing to the "
                f"head dim {self.head_dim} (hidden_size / num_heads)"
            )

    @property
    def has_tempo_input(self) -> bool:
        """Whether the model takes a tempo (``tempo_frame_seconds > 0``)."""
        return self.tempo_frame_seconds > 0

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_heads

    @property
    def mlp_hidden_dim(self) -> int:
        """Hidden width of the MLPs."""
        return int(self.hidden_size * self.mlp_ratio)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists instead of tuples)."""
        out = dataclasses.asdict(self)
        out["axes_dim"] = list(self.axes_dim)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MusicFluxConfig:
        """Build from a dict, ignoring the reference's inert keys and rejecting unknown ones.

        Raises:
            ValueError: if ``data`` holds a key that is not a field of this config.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        inert = {"guidance_embed"}  # stated by the reference configs but never built by MusicFlux
        unknown = sorted(set(data) - known - inert)
        if unknown:
            raise InputError(f"unknown MusicFlux config keys {unknown}; valid keys are {sorted(known)}")
        return cls(**{k: v for k, v in data.items() if k in known})


def _released(hidden: int, depth: int, single: int, axes: tuple[int, int, int]) -> MusicFluxConfig:
    return MusicFluxConfig(
        hidden_size=hidden, num_heads=16, depth=depth, depth_single_blocks=single, axes_dim=axes
    )


PRESETS: dict[str, MusicFluxConfig] = {
    "tiny": MusicFluxConfig(
        vec_in_dim=24,
        context_in_dim=40,
        hidden_size=64,
        num_heads=4,
        depth=2,
        depth_single_blocks=2,
        axes_dim=(4, 6, 6),
    ),
    "small": _released(512, 8, 16, (8, 12, 12)),
    "base": _released(768, 12, 24, (16, 16, 16)),
    "large": _released(1024, 12, 24, (16, 24, 24)),
    "giant": _released(1408, 16, 32, (16, 36, 36)),
    "giant_full": _released(1408, 12, 24, (16, 36, 36)),
    "biggiant": _released(2048, 19, 38, (32, 48, 48)),
}

RELEASED_PRESETS: tuple[str, ...] = ("small", "base", "large", "giant", "giant_full", "biggiant")
