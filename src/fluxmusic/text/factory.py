"""``build_conditioner(name, ...)``: pick a text conditioner by name (for configs and the CLI)."""

from __future__ import annotations

import os
from typing import Any

import torch

from fluxmusic.errors import InputError
from fluxmusic.text.base import TextConditioner, TextMode
from fluxmusic.text.cache import CachedConditioner, EmbeddingCache

__all__ = ["CONDITIONERS", "build_conditioner"]

CONDITIONERS = ("t5-clap", "minilm", "tiny")


def build_conditioner(
    name: str,
    *,
    mode: str | TextMode = "training",
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    embedding_cache_dir: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> TextConditioner:
    """Build a text conditioner by name.

    Args:
        name: ``"t5-clap"``: FluxMusic's T5-XXL + CLAP (``FluxMusicConditioner.from_pretrained``; extra
            kwargs ``t5``, ``clap``, ``local_files_only``, ``cache_dir`` (the HF cache), ...).
            ``"minilm"``: the bundled all-MiniLM-L6-v2 (``MiniLMConditioner``; kwargs ``max_length``,
            ``model_dir``, ``txt_scale``, ``y_scale``).
            ``"tiny"``: random tiny T5 + CLAP for tests (``FluxMusicConditioner.tiny``; kwargs
            ``txt_dim``, ``pooled_dim``, ``seed``).
        mode: Text mode for ``"t5-clap"`` / ``"tiny"`` (``"training"`` or ``"reference-sampling"``).
        device: Device to run on.
        dtype: Encoder compute dtype (default: bf16 on CPU/CUDA for T5/CLAP, fp32 for MiniLM).
        embedding_cache_dir: If given, wrap in a ``CachedConditioner`` storing embeddings there.
        **kwargs: Passed to the constructor named above.

    Raises:
        ValueError: unknown name.
    """
    from fluxmusic.text.conditioner import FluxMusicConditioner

    conditioner: TextConditioner
    if name == "t5-clap":
        conditioner = FluxMusicConditioner.from_pretrained(mode=mode, device=device, dtype=dtype, **kwargs)
    elif name == "minilm":
        from fluxmusic.text.minilm import MiniLMConditioner

        conditioner = MiniLMConditioner(device=device, dtype=dtype or torch.float32, **kwargs)
    elif name == "tiny":
        conditioner = FluxMusicConditioner.tiny(mode=mode, device=device, **kwargs)
    else:
        raise InputError(f"unknown text conditioner {name!r}; choose one of {list(CONDITIONERS)}")
    if embedding_cache_dir is not None:
        conditioner = CachedConditioner(conditioner, EmbeddingCache(embedding_cache_dir))
    return conditioner
