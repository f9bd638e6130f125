"""Seeded datasets: reference crop/pad/normalise rules inside an item's region, skips instead of zeros,
rank-sharded resumable sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fluxmusic.audio import SilentAudioError, prepare_clip, read_audio
from fluxmusic.data.dataset import (
    AudioBatch,
    AudioClipDataset,
    DataPosition,
    EpochSampler,
    SkippedItem,
    collate,
    read_item_clip,
)
from fluxmusic.data.manifest import ManifestItem


def _item(path: Path, index: int = 0, **kwargs: float) -> ManifestItem:
    return ManifestItem(index, path, f"caption {index}", **kwargs)


def _write(path: Path, wave: np.ndarray, rate: int = 16000) -> Path:
    sf.write(path, wave.astype(np.float32), rate)
    return path


def _tone(seconds: float, freq: float = 440.0, rate: int = 16000) -> np.ndarray:
    return 0.3 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate) + 0.1


def test_clip_follows_the_reference_rules_and_the_seed(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.wav", _tone(3.0, rate=22050), 22050)
    item = _item(path)
    a = read_item_clip(item, 1.0, torch.Generator().manual_seed(5))
    b = read_item_clip(item, 1.0, torch.Generator().manual_seed(5))
    c = read_item_clip(item, 1.0, torch.Generator().manual_seed(6))
    assert torch.equal(a.waveform, b.waveform) and a.offset_s == b.offset_s
    assert a.offset_s != c.offset_s
    assert a.waveform.shape == (16000,)
    assert a.waveform.abs().max().item() == pytest.approx(0.5)  # peak 0.5, mean removed
    assert abs(a.waveform.mean().item()) < 1e-3
    window = read_audio(path, sample_rate=None, offset=a.offset_s, duration=1.0)
    expected = prepare_clip(window, 22050, 1.0, offset=0.0).waveform
    assert torch.equal(a.waveform, expected)


def test_clip_stays_inside_the_region(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.wav", np.concatenate([_tone(1.0, 440), _tone(1.0, 1000), _tone(1.0, 440)]))
    item = _item(path, offset=1.0, duration=1.0)
    for seed in range(8):
        clip = read_item_clip(item, 0.5, torch.Generator().manual_seed(seed))
        assert 1.0 <= clip.offset_s <= 1.5
    short = read_item_clip(item, 1.5, torch.Generator().manual_seed(0))  # region shorter than the clip
    assert short.offset_s == 1.0
    assert torch.count_nonzero(short.waveform[16000:]) == 0  # right-padded, not read past the region
    assert torch.count_nonzero(short.waveform[:16000]) > 15000


def test_silent_windows_are_redrawn_then_skipped(tmp_path: Path) -> None:
    half = _write(tmp_path / "half.wav", np.concatenate([np.zeros(16000), _tone(1.0) - 0.1]))
    for seed in range(6):
        clip = read_item_clip(_item(half), 0.5, torch.Generator().manual_seed(seed), max_tries=20)
        assert clip.waveform.abs().max().item() == pytest.approx(0.5)
    silent = _write(tmp_path / "silent.wav", np.zeros(32000))
    with pytest.raises(SilentAudioError):
        read_item_clip(_item(silent), 0.5, torch.Generator().manual_seed(0))


def test_bad_items_are_skipped_never_zero_filled(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.wav", _tone(1.0))
    silent = _write(tmp_path / "silent.wav", np.zeros(16000))
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"not audio at all" * 100)
    items = [_item(good, 0), _item(tmp_path / "missing.wav", 1), _item(silent, 2), _item(corrupt, 3)]
    dataset = AudioClipDataset(items, 0.5)
    samples = [dataset[(i, 7)] for i in range(4)]
    assert not isinstance(samples[0], SkippedItem)
    reasons = {s.index: s for s in samples[1:]}
    assert all(isinstance(s, SkippedItem) for s in reasons.values())
    assert reasons[1].path == str(tmp_path / "missing.wav") and "not found" in reasons[1].reason
    assert "silent" in reasons[2].reason and "decode" in reasons[3].reason
    batch = collate(samples)
    assert isinstance(batch, AudioBatch)
    assert batch.waveforms.shape == (1, 8000) and batch.indices == [0]  # only the real clip
    assert [s.index for s in batch.skipped] == [1, 2, 3]
    empty = collate(samples[1:])
    assert empty.waveforms.shape[0] == 0 and empty.captions == []


def test_sampler_shards_ranks_and_resumes() -> None:
    ranks = [EpochSampler(10, 2, seed=3, rank=r, world_size=2) for r in range(2)]
    assert ranks[0].batches_per_epoch == 2  # 10 items, 4 per global micro-batch: 2 left over
    first, second = (s.epoch_batches(0) for s in ranks)
    seen = [i for batch in first + second for i, _ in batch]
    assert len(seen) == len(set(seen)) == 8  # disjoint across ranks, no repeats
    seeds = [seed for batch in first + second for _, seed in batch]
    assert len(set(seeds)) == 8
    assert ranks[0].epoch_batches(1) != first  # reshuffled each epoch
    assert EpochSampler(10, 2, seed=3, rank=0, world_size=2).epoch_batches(0) == first  # deterministic
    stream = ranks[0].stream(DataPosition())
    full = [next(stream) for _ in range(5)]
    resumed = ranks[0].stream(full[2][0])
    assert [next(resumed) for _ in range(2)] == full[3:5]
    assert full[1][0] == DataPosition(0, 2) and full[2][0] == DataPosition(1, 1)


def test_sampler_needs_one_global_batch() -> None:
    with pytest.raises(ValueError, match="lower the batch size"):
        EpochSampler(3, 2, seed=0, world_size=2)
