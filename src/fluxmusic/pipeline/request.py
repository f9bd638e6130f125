"""Checking a request's per-row inputs: prompts, per-prompt values, tempo rows."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from fluxmusic.errors import InputError
from fluxmusic.text.tempo import prompt_bpm

__all__ = ["per_row", "repeat_prompts", "tempo_rows"]


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
