"""Pipelines: prompts (and, with editing, audio) to audio.

- :mod:`.text_to_music`: ``FluxMusicPipeline``, text-to-music in numbered stages;
- :mod:`.request`: per-row inputs and micro-batches;
- :mod:`.paths`: output naming and the checks made before any work (no silent overwrite);
- :mod:`.outputs`: ``AudioOutput``, sidecars from ``SampleSettings``, spectrograms, atomic writes.
"""

from fluxmusic.lazy import lazy_exports

_LAZY = {
    "FluxMusicPipeline": "fluxmusic.pipeline.text_to_music",
    "AudioOutput": "fluxmusic.pipeline.outputs",
    "FORMATS": "fluxmusic.pipeline.paths",
    "output_paths": "fluxmusic.pipeline.paths",
    "plan_outputs": "fluxmusic.pipeline.paths",
    "save_outputs": "fluxmusic.pipeline.outputs",
    "save_spectrogram": "fluxmusic.pipeline.outputs",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
