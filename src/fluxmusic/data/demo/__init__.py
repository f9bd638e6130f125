"""Demo text-to-music dataset rendered from the music21 corpus with FluidSynth (see docs/demo-dataset.md).

Command line: ``fluxmusic data build-demo OUT_DIR [options]`` (:mod:`fluxmusic.cli.data`). The names
below load their module on first use.
"""

from fluxmusic.lazy import lazy_exports

_LAZY = {
    "DemoDatasetReport": "fluxmusic.data.demo.stats",
    "format_report": "fluxmusic.data.demo.stats",
    "build_demo_dataset": "fluxmusic.data.demo.builder",
    "plan_tasks": "fluxmusic.data.demo.builder",
    "COLLECTIONS": "fluxmusic.data.demo.catalogue",
    "list_pieces": "fluxmusic.data.demo.catalogue",
    "ClipRequest": "fluxmusic.data.demo.config",
    "DemoDatasetConfig": "fluxmusic.data.demo.config",
    "FAMILIES": "fluxmusic.data.demo.instruments",
    "INSTRUMENTS": "fluxmusic.data.demo.instruments",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
