"""Pipelines: prompts (and, with editing, audio) to audio.

- :mod:`.text_to_music`: ``FluxMusicPipeline``, text-to-music in numbered stages;
- :mod:`.outputs`: ``AudioOutput``, file naming, sidecars from ``SampleSettings``, spectrograms.
"""

from fluxmusic.lazy import lazy_exports

_LAZY = {
    "FluxMusicPipeline": "fluxmusic.pipeline.text_to_music",
    "AudioOutput": "fluxmusic.pipeline.outputs",
    "check_writable": "fluxmusic.pipeline.outputs",
    "output_paths": "fluxmusic.pipeline.outputs",
    "save_outputs": "fluxmusic.pipeline.outputs",
    "save_spectrogram": "fluxmusic.pipeline.outputs",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
