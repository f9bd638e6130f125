"""Model folders: the ``fluxmusic.json`` format, the component registry, loading, saving and bundling.

- :mod:`.index`: the index file, weight hashes, ``PipelineSpec``;
- :mod:`.registry`: the one place that knows vocoder and text-encoder types;
- :mod:`.load`: load/save a folder, the bundled model's folder;
- :mod:`.find`: find a model by name (bundled, released size, folder);
- :mod:`.released`: the released FluxMusic sizes through the Hugging Face cache;
- :mod:`.bundle`: freeze a folder for shipping.
"""

from fluxmusic.lazy import lazy_exports

_LAZY = {
    "MODEL_INDEX": "fluxmusic.modelfolder.index",
    "PipelineSpec": "fluxmusic.modelfolder.index",
    "read_model_index": "fluxmusic.modelfolder.index",
    "verify_weights": "fluxmusic.modelfolder.index",
    "REGISTRY": "fluxmusic.modelfolder.registry",
    "ComponentType": "fluxmusic.modelfolder.registry",
    "build_component": "fluxmusic.modelfolder.registry",
    "BUNDLED_NAME": "fluxmusic.modelfolder.load",
    "Components": "fluxmusic.modelfolder.load",
    "bundled_model_dir": "fluxmusic.modelfolder.load",
    "load_components": "fluxmusic.modelfolder.find",
    "load_model_dir": "fluxmusic.modelfolder.load",
    "save_model_dir": "fluxmusic.modelfolder.load",
    "RELEASED": "fluxmusic.modelfolder.released",
    "load_released": "fluxmusic.modelfolder.released",
    "bundle_model_dir": "fluxmusic.modelfolder.bundle",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
