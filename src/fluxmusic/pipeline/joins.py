"""Joining kept input audio and generated audio: equal-power crossfades and level matching.

Editing never replaces audio outside a region by its lossy VAE + vocoder reconstruction: the output
holds the input's own samples there, and the generated audio only inside the regions, brought to the
input's level (:func:`level_gain`, measured on the samples both share) and joined by short
equal-power crossfades: ``cos``/``sin`` gains, which keep the power of two uncorrelated signals constant,
divided by ``sqrt(1 + 2 rho cos sin)`` where ``rho >= 0`` is the two signals' correlation over the
crossfade, so that correlated ones (a window re-making the audio it continues) do not swell by up to
3 dB in the middle (``rho = 0``: plain equal power; ``rho = 1``: constant amplitude). The crossfades lie on
the kept side of each boundary: a region is generated audio from start to end.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["MAX_GAIN", "append_window", "correlation", "level_gain", "region_weights", "splice"]

MAX_GAIN = 100.0
"""The level correction is clamped to [1 / MAX_GAIN, MAX_GAIN]."""

_QUIET = 1e-6  # RMS below which a signal gives no level to match


def region_weights(num_samples: int, regions: list[tuple[int, int]], crossfade: int) -> Tensor:
    """The generated audio's share at every sample: 1 inside the regions, ramping to 0 over ``crossfade``
    samples outside each boundary, 0 elsewhere (the kept input).

    Args:
        num_samples: Length of the audio.
        regions: ``(start, end)`` sample ranges, end exclusive.
        crossfade: Ramp length in samples (0: hard cuts).

    Shapes:
        -> (num_samples,) fp32 in [0, 1].
    """
    weight = torch.zeros(num_samples)
    ramp = torch.arange(crossfade, 0, -1, dtype=torch.float32) / (crossfade + 1)  # near 1 ... near 0
    for start, end in regions:
        weight[start:end] = 1.0
        before = ramp[:start].flip(0)  # rises towards the region's start
        lo = start - before.shape[0]
        weight[lo:start] = torch.maximum(weight[lo:start], before)
        after = ramp[: max(0, num_samples - end)]
        weight[end : end + after.shape[0]] = torch.maximum(weight[end : end + after.shape[0]], after)
    return weight


def level_gain(reference: Tensor, generated: Tensor, known: Tensor) -> Tensor:
    """Per-row gain bringing ``generated`` to ``reference``'s RMS over the ``known`` samples (those where
    the generated audio reconstructs the reference); 1 where either is silent there.

    Shapes:
        reference: (S,) or (B, S); generated: (B, S); known: (S,) bool -> (B, 1).
    """
    if not bool(known.any()):
        return torch.ones(generated.shape[0], 1)
    ref = reference.expand_as(generated)[:, known].pow(2).mean(1).sqrt()
    gen = generated[:, known].pow(2).mean(1).sqrt()
    gain = torch.where((ref > _QUIET) & (gen > _QUIET), ref / gen.clamp_min(_QUIET), torch.ones_like(ref))
    return gain.clamp(1.0 / MAX_GAIN, MAX_GAIN)[:, None]


def correlation(a: Tensor, b: Tensor, where: Tensor) -> Tensor:
    """Per-row correlation of two signals over the samples ``where``, clamped to [0, 1] (0 if silent).

    Shapes:
        a, b: (B, S); where: (S,) bool -> (B, 1).
    """
    if not bool(where.any()):
        return torch.zeros(b.shape[0], 1)
    x, y = a.expand_as(b)[:, where], b[:, where]
    norm = (x.pow(2).sum(1) * y.pow(2).sum(1)).sqrt()
    rho = torch.where(norm > 0, (x * y).sum(1) / norm.clamp_min(1e-12), torch.zeros_like(norm))
    return rho.clamp(0.0, 1.0)[:, None]


def splice(original: Tensor, generated: Tensor, weight: Tensor) -> Tensor:
    """``original`` where ``weight`` is 0 (bit for bit), ``generated`` where it is 1, an equal-power
    crossfade (corrected for the signals' correlation, see the module docstring) between.

    Shapes:
        original: (S,) or (B, S); generated: (B, S); weight: (S,) -> (B, S).
    """
    angle = weight * (math.pi / 2)
    fade_out, fade_in = torch.cos(angle), torch.sin(angle)
    rho = correlation(original, generated, (weight > 0) & (weight < 1))
    mixed = (original * fade_out + generated * fade_in) / torch.sqrt(1.0 + 2.0 * rho * fade_out * fade_in)
    out = torch.where(weight == 0, original.expand_as(generated), mixed)
    return torch.where(weight == 1, generated, out)


def append_window(
    audio: Tensor, window: Tensor, context: int, crossfade: int, end: int | None = None
) -> Tensor:
    """Continue ``audio`` with a window whose first ``context`` samples re-make ``audio``'s last ones.

    The window is brought to ``audio``'s level (measured on the shared context outside the crossfade)
    and crossfaded into ``audio`` over the ``crossfade`` samples that end ``end`` samples into the context
    (default: at its end, so all of ``audio`` but its last ``crossfade`` samples is kept exactly; long form
    fades in the middle, away from the decoding edge at the end of the previous window).

    Shapes:
        audio: (B, S); window: (B, W) with W > context -> (B, S + W - context).
    """
    if context == 0:
        return torch.cat((audio, window), dim=1)
    end = context if end is None else min(max(end, 1), context)
    crossfade = min(crossfade, end // 2)
    head, shared = audio[:, : audio.shape[1] - context], audio[:, audio.shape[1] - context :]
    weight = torch.zeros(context)
    weight[end:] = 1.0
    if crossfade:
        weight[end - crossfade : end] = torch.arange(1, crossfade + 1, dtype=torch.float32) / (crossfade + 1)
    gain = level_gain(shared, window[:, :context], weight == 0)
    window = (window * gain).clamp(-1, 1)
    tail = splice(shared, window[:, :context], weight)
    return torch.cat((head, tail, window[:, context:]), dim=1)
