"""fluxmusic: text-to-music generation with rectified-flow transformers (FluxMusic).

The root stays lazy (as every package here, see :mod:`fluxmusic.lazy`): ``fluxmusic --help`` and
``import fluxmusic`` import no torch; a name loads its module on first use.
"""

from __future__ import annotations

from fluxmusic.lazy import lazy_exports
from fluxmusic.version import __version__

_LAZY = {
    "FluxMusicPipeline": "fluxmusic.pipeline.text_to_music",
    "AudioOutput": "fluxmusic.pipeline.outputs",
    "SampleSettings": "fluxmusic.sampling",
    "MusicFlux": "fluxmusic.model.musicflux",
    "PRESETS": "fluxmusic.config",
    "MusicFluxConfig": "fluxmusic.config",
}

__getattr__, __dir__, _names = lazy_exports(__name__, _LAZY)
__all__ = [*_names, "__version__"]
