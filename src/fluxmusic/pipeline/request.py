"""Checking a request's per-row inputs: prompts, per-prompt values, tempo rows."""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from fluxmusic.errors import InputError
from fluxmusic.sampling import SampleSettings
from fluxmusic.text.tempo import prompt_bpm

__all__ = ["micro_batches", "per_row", "repeat_prompts", "tempo_rows", "with_seed"]


def repeat_prompts(prompt: object, num_per_prompt: object) -> list[str]:
    """One prompt or a list, each a non-empty string, repeated ``num_per_prompt`` times (row order).

    Raises:
        TypeError: not a string or a list of strings; a count that is not an integer.
        ValueError: an empty prompt or a count below 1.
    """
    if isinstance(prompt, str):
        prompts = [prompt]
    elif isinstance(prompt, Sequence) and all(isinstance(p, str) for p in prompt):
        prompts = list(prompt)
    else:
        raise TypeError(f"prompt must be a string or a list of strings, got {prompt!r}")
    if not prompts or any(not p.strip() for p in prompts):
        raise InputError("give at least one non-empty prompt")
    if isinstance(num_per_prompt, bool) or not isinstance(num_per_prompt, numbers.Integral):
        raise TypeError(f"num_per_prompt must be an integer, got {num_per_prompt!r}")
    if num_per_prompt < 1:
        raise InputError(f"num_per_prompt must be >= 1, got {num_per_prompt}")
    return [p for p in prompts for _ in range(int(num_per_prompt))]


def per_row(what: str, value: Any, rows: int, num_per_prompt: int) -> list[Any]:
    """One value for every row from one for all, or a tuple of one per prompt.

    Raises:
        ValueError: a tuple whose length is not the number of prompts.
    """
    if not isinstance(value, tuple):
        return [value] * rows
    if len(value) * num_per_prompt != rows:
        raise InputError(
            f"got {len(value)} {what} for {rows // num_per_prompt} prompts; give one, or one per prompt"
        )
    return [v for v in value for _ in range(num_per_prompt)]


def tempo_rows(
    has_tempo_input: bool,
    prompts: list[str],
    bpm: float | tuple[float | None, ...] | None,
    num_per_prompt: int,
    device: torch.device,
) -> Tensor | None:
    """The (bpm, phase 0) row of every clip for a model with a tempo input, else ``None``.

    ``prompts`` is already repeated ``num_per_prompt`` times; ``bpm`` (checked by ``SampleSettings``)
    is one value, one per original prompt, or ``None`` (read each prompt).

    Shapes:
        -> (B, 2), bpm 0 for clips without a tempo.
    """
    if not has_tempo_input:
        if bpm is not None:
            raise InputError("this model has no tempo input; ask for the tempo in the prompt instead")
        return None
    given = per_row("bpm values", bpm, len(prompts), num_per_prompt)
    rows = [(prompt_bpm(p) if b is None else b) or 0.0 for p, b in zip(prompts, given, strict=True)]
    return torch.tensor([(b, 0.0) for b in rows], dtype=torch.float32, device=device)


def with_seed(settings: SampleSettings) -> SampleSettings:
    """``settings`` with a seed: its own, or one drawn from torch's global generator (so
    ``torch.manual_seed`` makes an unseeded run repeatable) and recorded."""
    if settings.seed is not None:
        return settings
    return settings.with_seed(int(torch.randint(0, 2**31 - 1, (1,)).item()))


def micro_batches(
    prompts: list[str], settings: SampleSettings, batch_size: int
) -> Iterator[tuple[int, list[str], SampleSettings]]:
    """Split one request (rows already repeated per prompt) into batches of at most ``batch_size`` rows.

    Each batch keeps what its rows would have had in one call: row ``i`` of the request uses seed
    ``seed + i`` (``settings`` must hold a seed, see :func:`with_seed`) and its own negative prompt and
    tempo, so the clips are the same whatever the batch size.

    Yields:
        (index of the batch's first row, its prompts, its settings with one value per row).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise InputError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if settings.seed is None:
        raise InputError("micro_batches needs settings with a seed; use with_seed(settings)")
    rows = len(prompts)
    negatives = per_row("negative prompts", settings.negative_prompt, rows, 1)
    tempi = None if settings.bpm is None else per_row("bpm values", settings.bpm, rows, 1)
    for start in range(0, rows, batch_size):
        end = min(start + batch_size, rows)
        yield (
            start,
            prompts[start:end],
            replace(
                settings,
                seed=settings.seed + start,
                negative_prompt=tuple(negatives[start:end]),
                bpm=None if tempi is None else tuple(tempi[start:end]),
            ),
        )
