"""Training a model with a tempo input: tempi flow from the manifest (and shards) into the batches,
dropout removes them where it should, and a tempo input can be added to trained weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_helpers import tiny_config, write_toml, write_tones

from fluxmusic.data.dataset import LatentShardDataset, collate
from fluxmusic.text.base import TextEmbedding
from fluxmusic.training.batches import prepare_batch
from fluxmusic.training.config import TrainConfig, load_config
from fluxmusic.training.loop import train

TEMPO = {"tempo_frame_seconds": 0.04}


@pytest.fixture(scope="module")
def tempo_tones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tone clips with a bpm and beat phase on every item but the last."""
    root = tmp_path_factory.mktemp("tempo_tones")
    manifest = write_tones(root)
    items = json.loads(manifest.read_text())
    for i, item in enumerate(items[:-1]):
        item["bpm"], item["beat_phase"] = 60 + 10 * i, 0.25
    manifest.write_text(json.dumps(items))
    return manifest


def test_preprocess_stores_the_tempo_at_each_crop(tempo_tones: Path, tmp_path: Path) -> None:
    from fluxmusic.training.prepare import prepare_shards

    config = TrainConfig.from_dict(tiny_config(tmp_path / "unused", tempo_tones))
    prepare_shards(config, tempo_tones, tmp_path / "shards", crop="random", batch_size=4, shard_size=3)
    data = LatentShardDataset(tmp_path / "shards")
    by_index = {data.item_info(i)["index"]: data.item_info(i) for i in range(len(data))}
    assert "tempo" not in by_index[7]  # the item without a bpm
    for index in range(7):
        info = by_index[index]
        bpm = 60 + 10 * index
        assert info["tempo"][0] == bpm
        assert info["tempo"][1] == pytest.approx((0.25 + info["offset"] * bpm / 60) % 1, abs=1e-5)
    batch = collate([data[(i, 0)] for i in range(len(data))])
    assert batch.tempo.shape == (8, 2) and int((batch.tempo[:, 0] > 0).sum()) == 7


def test_tempo_dropout_follows_caption_dropout(tempo_tones: Path, tmp_path: Path) -> None:
    from fluxmusic.data.dataset import LatentBatch

    rows = 4000
    batch = LatentBatch(
        torch.zeros(rows, 1, 1, 1),
        ["x"] * rows,
        list(range(rows)),
        torch.ones(rows, 2, 3),
        torch.ones(rows, 2, dtype=torch.bool),
        torch.ones(rows, 3),
        tempo=torch.tensor([[120.0, 0.5]]).repeat(rows, 1),
    )
    empty = TextEmbedding(torch.zeros(1, 2, 3), torch.zeros(1, 2, dtype=torch.bool), torch.zeros(1, 3))
    raw = tiny_config(tmp_path, tempo_tones, data={"caption_dropout": 0.2, "tempo_dropout": 0.3})
    config = TrainConfig.from_dict(raw)
    _, text, tempo = prepare_batch(
        batch, torch.Generator().manual_seed(0), config, torch.device("cpu"), (1, 1, 1), empty, tempo=True
    )
    assert tempo is not None
    dropped_caption = ~text.txt_mask[:, 0]  # token states dropped (independently of y in this mode)
    no_tempo = tempo[:, 0] == 0
    assert bool(no_tempo[dropped_caption].all())  # the unconditional rows never keep a tempo
    kept_caption = ~dropped_caption
    assert no_tempo[kept_caption].float().mean().item() == pytest.approx(0.3, abs=0.04)
    assert torch.equal(tempo[~no_tempo], torch.tensor([[120.0, 0.5]]).expand(int((~no_tempo).sum()), 2))
    _, again, none = prepare_batch(
        batch, torch.Generator().manual_seed(0), config, torch.device("cpu"), (1, 1, 1), empty
    )
    assert none is None and torch.equal(again.y, text.y)  # the caption draws do not depend on tempo


def test_tempo_model_trains_from_audio_and_exports(tempo_tones: Path, tmp_path: Path) -> None:
    from fluxmusic import FluxMusicPipeline

    config = tiny_config(tmp_path / "run", tempo_tones, run={"max_steps": 4, "export": True})
    config["model"]["overrides"] = TEMPO
    result = train(load_config(write_toml(config, tmp_path / "c.toml")))
    pipe = FluxMusicPipeline.from_pretrained(result.export, device="cpu", dtype="float32")
    assert pipe.transformer.config.tempo_frame_seconds == 0.04
    assert pipe.transformer.tempo_in is not None
    assert pipe.transformer.tempo_in.grid_in.weight.abs().sum() > 0  # the tempo input was trained
    audio = pipe("a tone number 1", steps=2, seed=0, progress=False, bpm=100)
    assert audio.bpm == [100.0] and torch.isfinite(audio.waveforms).all()


def test_tempo_input_is_added_to_trained_weights(tempo_tones: Path, tmp_path: Path) -> None:
    base = tiny_config(tmp_path / "base", tempo_tones, run={"max_steps": 2, "export": True})
    first = train(load_config(write_toml(base, tmp_path / "base.toml")))
    grown = tiny_config(tmp_path / "grown", tempo_tones, run={"max_steps": 2})
    grown["model"] = {"preset": "tiny", "overrides": TEMPO, "init_from": str(first.export / "transformer")}
    from fluxmusic.checkpoints import load_musicflux
    from fluxmusic.training.build import build_model

    config = load_config(write_toml(grown, tmp_path / "grown.toml"))
    model, old = build_model(config), load_musicflux(first.export / "transformer")
    assert model.tempo_in is not None
    state, before = model.state_dict(), old.state_dict()
    assert all(torch.equal(state[k], v) for k, v in before.items())
    assert model.tempo_in.grid_in.weight.abs().sum() == 0  # zero-initialised: same outputs as before
    assert train(config).step == 2


def test_tempo_model_without_tempo_data_is_refused(tones: Path, tmp_path: Path) -> None:
    config = tiny_config(tmp_path / "run", tones, run={"max_steps": 1})
    config["model"]["overrides"] = TEMPO
    with pytest.raises(ValueError, match="no training item has a tempo"):
        train(load_config(write_toml(config, tmp_path / "c.toml")))
