"""Pipelines: prompts (and, with editing, audio) to audio.

- :mod:`.text_to_music`: ``FluxMusicPipeline``, text-to-music in numbered stages;
- :mod:`.request`: per-row inputs and micro-batches;
- :mod:`.paths`: output naming and the checks made before any work (no silent overwrite);
- :mod:`.outputs`: ``AudioOutput``, sidecars from ``SampleSettings``, spectrograms, atomic writes;
- :mod:`.prepare`: the request stages shared by text-to-music and the edits;
- :mod:`.editing`: variation and inpainting; :mod:`.long_form`: long pieces and continuation, window by
  window; :mod:`.joins`: crossfades and level matching; :mod:`.edit_inputs`: the edits' checks and
  ``EditSettings``; :mod:`.methods`: the pipeline's editing methods (docs/editing.md).
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
    "EditSettings": "fluxmusic.pipeline.edit_inputs",
    "LONG_FORM_MAX_SECONDS": "fluxmusic.pipeline.edit_inputs",
    "InputAudio": "fluxmusic.pipeline.editing",
    "load_input": "fluxmusic.pipeline.editing",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
