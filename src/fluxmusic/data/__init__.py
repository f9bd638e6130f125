"""Datasets and dataset builders: manifests, checks, training datasets, preprocessed shards, the demo set.

- ``data.manifest``: the manifest formats (``.json``, ``.jsonl``, ``.csv``);
- ``data.check``: ``fluxmusic data check``, every item opened and decoded;
- ``data.items``: one item's audio for training, with the corruption checks (truncated, NaN/Inf) all share;
- ``data.dataset``: training datasets (clips from audio files, latents from shards) and the seeded sampler;
- ``data.outputs``: output paths checked before the work (never onto an input, writable);
- ``data.shards``: the preprocessed-shard format; ``data.preprocess`` writes it;
- ``data.clip_bank``: fixed clip sets for the component trainers;
- ``data.demo``: the rendered demo dataset builder (see docs/demo-dataset.md).

The names below load their module on first use, so ``import fluxmusic.data`` stays cheap.
"""

from fluxmusic.lazy import lazy_exports

_LAZY = {
    "CheckReport": "fluxmusic.data.check",
    "ItemCheck": "fluxmusic.data.check",
    "check_manifest": "fluxmusic.data.check",
    "AudioClipDataset": "fluxmusic.data.dataset",
    "EpochSampler": "fluxmusic.data.dataset",
    "LatentShardDataset": "fluxmusic.data.dataset",
    "SkippedItem": "fluxmusic.data.dataset",
    "collate": "fluxmusic.data.dataset",
    "ClipRequest": "fluxmusic.data.demo.config",
    "DemoDatasetConfig": "fluxmusic.data.demo.config",
    "DemoDatasetReport": "fluxmusic.data.demo.stats",
    "build_demo_dataset": "fluxmusic.data.demo.builder",
    "ManifestError": "fluxmusic.data.manifest",
    "ManifestItem": "fluxmusic.data.manifest",
    "read_manifest": "fluxmusic.data.manifest",
    "write_manifest": "fluxmusic.data.manifest",
    "read_index": "fluxmusic.data.shards",
    "shard_items": "fluxmusic.data.shards",
    "write_index": "fluxmusic.data.shards",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
