"""The MusicFlux transformer: layers, blocks, rotary embedding and latent packing (no I/O)."""

from fluxmusic.lazy import lazy_exports

_LAZY = {
    "PRESETS": "fluxmusic.config",
    "MusicFluxConfig": "fluxmusic.config",
    "MusicFlux": "fluxmusic.model.musicflux",
    "image_ids": "fluxmusic.model.packing",
    "pack": "fluxmusic.model.packing",
    "text_ids": "fluxmusic.model.packing",
    "unpack": "fluxmusic.model.packing",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
