"""Text conditioning: T5-XXL + CLAP (FluxMusic), a small bundled MiniLM encoder, and an embedding cache.

All conditioners implement ``TextConditioner.encode(prompts) -> TextEmbedding``. Submodules are
imported on first use of a name, so ``import fluxmusic.text`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "MODES": "fluxmusic.text.base",
    "TextConditioner": "fluxmusic.text.base",
    "TextEmbedding": "fluxmusic.text.base",
    "TextMode": "fluxmusic.text.base",
    "default_dtype": "fluxmusic.text.base",
    "get_mode": "fluxmusic.text.base",
    "CachedConditioner": "fluxmusic.text.cache",
    "EmbeddingCache": "fluxmusic.text.cache",
    "CLAP_REPO": "fluxmusic.text.clap",
    "ClapTextEncoder": "fluxmusic.text.clap",
    "MissingWeightsError": "fluxmusic.text.clap",
    "clap_text_config": "fluxmusic.text.clap",
    "load_clap_text_tower": "fluxmusic.text.clap",
    "FluxMusicConditioner": "fluxmusic.text.conditioner",
    "CONDITIONERS": "fluxmusic.text.factory",
    "build_conditioner": "fluxmusic.text.factory",
    "WeightsNotFoundError": "fluxmusic.text.hub",
    "ChecksumError": "fluxmusic.text.minilm",
    "MINILM_SHA256": "fluxmusic.text.minilm",
    "MiniLMConditioner": "fluxmusic.text.minilm",
    "bundled_minilm_dir": "fluxmusic.text.minilm",
    "SD3_REPO": "fluxmusic.text.t5",
    "T5XXL_CONFIG": "fluxmusic.text.t5",
    "T5Encoder": "fluxmusic.text.t5",
    "byte_level_tokenizer": "fluxmusic.text.toy",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fluxmusic.text' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


__all__ = sorted(_LAZY)
