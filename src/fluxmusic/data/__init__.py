"""Datasets and dataset builders: manifests, ``data check``, training datasets, preprocessing, the demo set.

``fluxmusic.data.dataset`` and ``fluxmusic.data.preprocess`` (which need torch) are imported on use.
"""

from fluxmusic.data.check import CheckReport, ItemCheck, check_manifest
from fluxmusic.data.demo import (
    ClipRequest,
    DemoDatasetConfig,
    DemoDatasetReport,
    add_build_demo_arguments,
    build_demo_dataset,
    run_build_demo,
)
from fluxmusic.data.manifest import ManifestError, ManifestItem, read_manifest, write_manifest

__all__ = [
    "CheckReport",
    "ClipRequest",
    "DemoDatasetConfig",
    "DemoDatasetReport",
    "ItemCheck",
    "ManifestError",
    "ManifestItem",
    "add_build_demo_arguments",
    "build_demo_dataset",
    "check_manifest",
    "read_manifest",
    "run_build_demo",
    "write_manifest",
]
