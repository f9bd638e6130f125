"""The in-memory embedding memo: each prompt encoded alone and once, order-independent results, bounded."""

from __future__ import annotations

import pytest
import torch

from fluxmusic.text import FluxMusicConditioner
from fluxmusic.text.base import TextEmbedding
from fluxmusic.text.cache import EmbeddingMemo


class Counting:
    """A conditioner wrapper that records every batch it is asked to encode."""

    def __init__(self, inner: FluxMusicConditioner) -> None:
        self.inner, self.batches = inner, []

    def encode(self, prompts: list[str]) -> TextEmbedding:
        self.batches.append(list(prompts))
        return self.inner.encode(prompts)


@pytest.fixture(scope="module")
def conditioner() -> FluxMusicConditioner:
    return FluxMusicConditioner.tiny()


def test_each_prompt_is_encoded_alone_and_once(conditioner: FluxMusicConditioner) -> None:
    counting, memo = Counting(conditioner), EmbeddingMemo(size=4)
    with torch.inference_mode():
        first = memo.encode(counting, ["a jig", "", "a reel"])
        again = memo.encode(counting, ["a reel", "", "a jig"])
    assert counting.batches == [["a jig"], [""], ["a reel"]]
    assert (memo.hits, memo.misses) == (3, 3)
    assert torch.equal(again.txt[0], first.txt[2]) and torch.equal(again.y[2], first.y[0])
    alone = conditioner.encode(["a reel"])
    assert torch.equal(first.txt[2:], alone.txt) and torch.equal(first.y[2:], alone.y)


def test_results_do_not_depend_on_what_came_before(conditioner: FluxMusicConditioner) -> None:
    fresh, warm = EmbeddingMemo(), EmbeddingMemo()
    with torch.inference_mode():
        warm.encode(conditioner, ["", "a slow air", "a march"])
        a = warm.encode(conditioner, ["a jig", ""])
        b = fresh.encode(conditioner, ["a jig", ""])
    assert torch.equal(a.txt, b.txt) and torch.equal(a.y, b.y) and torch.equal(a.txt_mask, b.txt_mask)


def test_bounded_and_emptied_for_another_conditioner(conditioner: FluxMusicConditioner) -> None:
    counting, memo = Counting(conditioner), EmbeddingMemo(size=2)
    with torch.inference_mode():
        memo.encode(counting, ["a", "b", "c"])
        assert list(memo.entries) == ["b", "c"]
        memo.encode(counting, ["a"])  # dropped: encoded again
        assert counting.batches[-1] == ["a"]
        other = Counting(conditioner)
        memo.encode(other, ["b"])
    assert other.batches == [["b"]] and list(memo.entries) == ["b"]
    with pytest.raises(ValueError, match="size must be >= 0"):
        EmbeddingMemo(size=-1)


def test_pipeline_reuses_the_negative_prompt(tiny_pipeline) -> None:  # noqa: ANN001
    pipe = tiny_pipeline
    misses = pipe.text_memo.misses
    first = pipe("a jig", duration=0.64, steps=2, seed=0, progress=False, negative_prompt="harsh noise")
    assert pipe.text_memo.misses >= misses + 1
    before = pipe.text_memo.misses
    pipe("a hornpipe", duration=0.64, steps=2, seed=0, progress=False, negative_prompt="harsh noise")
    assert pipe.text_memo.misses == before + 1  # only the new prompt
    again = pipe("a jig", duration=0.64, steps=2, seed=0, progress=False, negative_prompt="harsh noise")
    assert torch.equal(first.waveforms, again.waveforms)
