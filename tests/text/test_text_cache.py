"""EmbeddingCache / CachedConditioner: hits skip the encoder and return identical tensors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fluxmusic.text import CachedConditioner, EmbeddingCache, FluxMusicConditioner, TextEmbedding


class CountingConditioner(FluxMusicConditioner):
    """The tiny conditioner, counting how many prompts it encodes."""

    encoded: list[str]

    def encode(self, prompts: list[str]) -> TextEmbedding:
        self.encoded = getattr(self, "encoded", []) + list(prompts)
        return super().encode(prompts)


def _counting(mode: str = "training", seed: int = 0) -> CountingConditioner:
    tiny = FluxMusicConditioner.tiny(mode=mode, seed=seed)
    return CountingConditioner(tiny.t5, tiny.clap, mode)


@pytest.fixture(scope="module")
def counting() -> CountingConditioner:
    return _counting()


def test_second_encode_hits_the_cache_with_identical_tensors(tmp_path: Path) -> None:
    inner = _counting()
    cached = CachedConditioner(inner, EmbeddingCache(tmp_path))
    prompts = ["soft piano", "drums", "soft piano"]
    first = cached.encode(prompts)
    assert inner.encoded == ["soft piano", "drums"]  # duplicates encoded once
    direct = inner.encode(["soft piano", "drums"])
    assert torch.equal(first.txt[:2], direct.txt) and torch.equal(first.y[:2], direct.y)
    assert torch.equal(first.txt[0], first.txt[2])
    inner.encoded = []
    second = cached.encode(prompts)
    assert inner.encoded == [] and cached.hits == 2 and cached.misses == 2
    for a, b in ((first.txt, second.txt), (first.txt_mask, second.txt_mask), (first.y, second.y)):
        assert torch.equal(a, b) and a.dtype == b.dtype
    third = cached.encode(["new prompt", "drums"])
    assert inner.encoded == ["new prompt"] and torch.equal(third.y[1], first.y[1])
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporaries
    assert len(list(tmp_path.rglob("*.safetensors"))) == 3


def test_other_mode_or_encoder_misses(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    train = _counting("training")
    CachedConditioner(train, cache).encode(["soft piano"])
    sampling = _counting("reference-sampling")
    CachedConditioner(sampling, cache).encode(["soft piano"])
    assert sampling.encoded == ["soft piano"]
    other_weights = _counting(seed=1)
    CachedConditioner(other_weights, cache).encode(["soft piano"])
    assert other_weights.encoded == ["soft piano"]
    assert len({train.cache_key, sampling.cache_key, other_weights.cache_key}) == 3


def test_corrupt_or_foreign_entries_are_re_encoded(tmp_path: Path, counting: CountingConditioner) -> None:
    cache = EmbeddingCache(tmp_path)
    cached = CachedConditioner(counting, cache)
    good = cached.encode(["soft piano"])
    path = cache.path(counting.cache_key, counting.mode, "soft piano")
    path.write_bytes(b"not a safetensors file")
    assert cache.get(counting.cache_key, counting.mode, "soft piano") is None
    again = cached.encode(["soft piano"])
    assert torch.equal(again.txt, good.txt) and cached.misses == 2
    foreign = cache.path(counting.cache_key, counting.mode, "drums")
    foreign.parent.mkdir(parents=True, exist_ok=True)
    foreign.write_bytes(path.read_bytes())  # an entry whose metadata names another prompt
    assert cache.get(counting.cache_key, counting.mode, "drums") is None


def test_put_takes_one_row(tmp_path: Path, counting: CountingConditioner) -> None:
    emb = counting.encode(["a", "b"])
    with pytest.raises(ValueError, match="one prompt"):
        EmbeddingCache(tmp_path).put("k", "m", "a", emb)
