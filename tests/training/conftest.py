"""Fixtures for the training tests (helpers live in ``train_helpers``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import tiny_config, write_tones


@pytest.fixture(scope="session")
def tones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Manifest of 8 tone clips (shared, read-only)."""
    return write_tones(tmp_path_factory.mktemp("tones"))


@pytest.fixture(autouse=True)
def _restore_threads():  # noqa: ANN202 - run.threads sets the process-wide torch thread count
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tone_shards(tones: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tone clips preprocessed with the tiny VAE and text encoder (shared, read-only)."""
    from fluxmusic.training.config import TrainConfig
    from fluxmusic.training.prepare import prepare_shards

    out = tmp_path_factory.mktemp("shards")
    config = TrainConfig.from_dict(tiny_config(out / "unused-run", tones))
    prepare_shards(config, tones, out, crop="random", batch_size=4, shard_size=3)
    return out
