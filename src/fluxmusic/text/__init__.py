"""Text conditioning: T5-XXL + CLAP (FluxMusic), a small bundled MiniLM encoder, and an embedding cache.

All conditioners implement ``TextConditioner.encode(prompts) -> TextEmbedding``.
"""

from fluxmusic.lazy import lazy_exports

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
    "clap_text_config": "fluxmusic.text.clap",
    "load_clap_text_tower": "fluxmusic.text.clap",
    "FluxMusicConditioner": "fluxmusic.text.conditioner",
    "CONDITIONERS": "fluxmusic.text.factory",
    "build_conditioner": "fluxmusic.text.factory",
    "WeightsNotFoundError": "fluxmusic.hub",
    "ChecksumError": "fluxmusic.text.minilm",
    "MINILM_SHA256": "fluxmusic.text.minilm",
    "MiniLMConditioner": "fluxmusic.text.minilm",
    "bundled_minilm_dir": "fluxmusic.text.minilm",
    "SD3_REPO": "fluxmusic.text.t5",
    "T5XXL_CONFIG": "fluxmusic.text.t5",
    "T5Encoder": "fluxmusic.text.t5",
    "byte_level_tokenizer": "fluxmusic.text.toy",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
