"""Datasets and dataset builders."""

from fluxmusic.data.demo import (
    ClipRequest,
    DemoDatasetConfig,
    DemoDatasetReport,
    add_build_demo_arguments,
    build_demo_dataset,
    run_build_demo,
)

__all__ = [
    "ClipRequest",
    "DemoDatasetConfig",
    "DemoDatasetReport",
    "add_build_demo_arguments",
    "build_demo_dataset",
    "run_build_demo",
]
