"""The optional tempo input of MusicFlux: a requested BPM and beat phase, as a beat grid and a vector.

FluxMusic has no tempo input: the tempo is asked for in words, through the text encoder. A small model
trained on a few CPU-hours does not learn to keep a steady beat that way (docs/bundled-model.md), so
a model built with ``MusicFluxConfig.tempo_frame_seconds > 0`` takes the tempo explicitly:

- a *beat grid* on the audio tokens: for every latent frame of a token, ``cos`` and ``sin`` of
  ``2 pi k phi(t)`` for the beat harmonics ``k`` in :data:`HARMONICS`, where
  ``phi(t) = phase + t * bpm / 60`` counts beats from the clip start; a linear layer adds it to the
  token embedding, so where each beat falls is a local fact of every token rather than something to
  infer across the sequence;
- the *BPM* itself, as a sinusoidal embedding through an MLP, added to ``vec`` (the timestep and
  pooled-text vector), for what depends on the tempo as a whole (note density, articulation).

Both layers start at zero, so adding them to a trained model leaves its output unchanged until it is
fine-tuned. A row whose BPM is 0 (or negative) has no tempo: both inputs are zero for it (the
unconditional branch of guidance, prompts that name no tempo, tempo dropout in training).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from fluxmusic.model.layers import MLPEmbedder, timestep_embedding

__all__ = ["HARMONICS", "TempoEmbedder", "beat_grid", "check_tempo"]

HARMONICS: tuple[float, ...] = (0.5, 1.0, 2.0)
"""Beat harmonics of the grid: half notes, beats and half beats (of a quarter-note BPM)."""

BPM_FEATURES = 256
"""Width of the sinusoidal BPM embedding."""


def check_tempo(tempo: Tensor, batch: int) -> Tensor:
    """Validate a tempo tensor: (B, 2) rows of ``(bpm, phase)``, finite, BPM 0 for "no tempo".

    Raises:
        ValueError: wrong shape or non-finite values.
    """
    if tempo.ndim != 2 or tempo.shape != (batch, 2):
        raise ValueError(
            f"tempo must be a ({batch}, 2) tensor of (bpm, phase) rows, got {tuple(tempo.shape)}"
        )
    if not bool(torch.isfinite(tempo).all()):
        raise ValueError("tempo holds NaN or infinite values; use bpm 0 for a row without a tempo")
    return tempo


def beat_grid(tempo: Tensor, img_ids: Tensor, patch: int, frame_seconds: float) -> Tensor:
    """Beat-phase features of every latent frame of every token, zero for rows without a tempo.

    A token at time row ``r`` holds latent frames ``r * patch ... r * patch + patch - 1``; frame ``f``
    starts ``f * frame_seconds`` after the clip start.

    Shapes:
        tempo: (B, 2) rows of (bpm, phase in beats at t = 0); img_ids: (B, Lx, 3)
        -> (B, Lx, patch * 2 * len(HARMONICS)) fp32, ordered (frame, [cos..., sin...]).
    """
    bpm, phase = tempo[:, 0].float(), tempo[:, 1].float()
    offsets = torch.arange(patch, device=img_ids.device, dtype=torch.float32)
    frames = img_ids[..., 1:2].float() * patch + offsets  # (B, Lx, patch)
    beats = phase[:, None, None] + frames * frame_seconds * bpm[:, None, None] / 60.0
    harmonics = torch.tensor(HARMONICS, device=img_ids.device, dtype=torch.float32)
    angles = 2 * math.pi * beats[..., None] * harmonics  # (B, Lx, patch, K)
    features = torch.cat((torch.cos(angles), torch.sin(angles)), dim=-1)
    features = features * (bpm > 0).float()[:, None, None, None]
    return features.flatten(2)


class TempoEmbedder(nn.Module):
    """The two zero-initialised tempo inputs: ``grid_in`` (beat grid -> tokens), ``bpm_in`` (-> vec).

    Args:
        hidden: Transformer width H.
        patch: Latent patch side (frames per token along time).
        frame_seconds: Seconds per latent frame.

    Shapes:
        tempo: (B, 2); img_ids: (B, Lx, 3) -> token term (B, Lx, H), vector term (B, H).
    """

    def __init__(self, hidden: int, patch: int, frame_seconds: float) -> None:
        super().__init__()
        self.patch = patch
        self.frame_seconds = frame_seconds
        self.grid_in = nn.Linear(patch * 2 * len(HARMONICS), hidden, bias=False)
        self.bpm_in = MLPEmbedder(BPM_FEATURES, hidden)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero the output layers: a fresh tempo input changes nothing until trained."""
        nn.init.zeros_(self.grid_in.weight)
        nn.init.zeros_(self.bpm_in.out_layer.weight)
        nn.init.zeros_(self.bpm_in.out_layer.bias)

    def forward(self, tempo: Tensor, img_ids: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        bpm = tempo[:, 0].float()
        grid = beat_grid(tempo, img_ids, self.patch, self.frame_seconds).to(dtype)
        has = (bpm > 0).to(dtype)[:, None]
        # BPM on a log scale (octaves above 30 BPM), through the timestep sinusoids (time_factor 1000)
        octaves = torch.log2(bpm.clamp(min=1.0) / 30.0) / 8.0
        vector = self.bpm_in(timestep_embedding(octaves, BPM_FEATURES).to(dtype)) * has
        return self.grid_in(grid), vector
