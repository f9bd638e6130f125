"""Demo text-to-music dataset rendered from the music21 corpus with FluidSynth (see docs/demo-dataset.md)."""

from fluxmusic.data.demo.builder import DemoDatasetReport, build_demo_dataset, plan_tasks
from fluxmusic.data.demo.catalogue import COLLECTIONS, list_pieces
from fluxmusic.data.demo.cli import add_build_demo_arguments, run_build_demo
from fluxmusic.data.demo.config import ClipRequest, DemoDatasetConfig
from fluxmusic.data.demo.instruments import FAMILIES, INSTRUMENTS
from fluxmusic.data.demo.stats import format_report

__all__ = [
    "COLLECTIONS",
    "FAMILIES",
    "INSTRUMENTS",
    "ClipRequest",
    "DemoDatasetConfig",
    "DemoDatasetReport",
    "add_build_demo_arguments",
    "build_demo_dataset",
    "format_report",
    "list_pieces",
    "plan_tasks",
    "run_build_demo",
]
