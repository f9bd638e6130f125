"""fluxmusic: text-to-music generation with rectified-flow transformers (FluxMusic)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "FluxMusicPipeline": "fluxmusic.pipeline",
    "AudioOutput": "fluxmusic.pipeline",
    "MusicFlux": "fluxmusic.model",
    "PRESETS": "fluxmusic.config",
    "MusicFluxConfig": "fluxmusic.config",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fluxmusic' has no attribute {name!r}")


__all__ = sorted(_LAZY) + ["__version__"]
