"""build_conditioner and the lazy package namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

import fluxmusic.text as text
from fluxmusic.text import CachedConditioner, FluxMusicConditioner, build_conditioner


def test_build_tiny_with_cache(tmp_path: Path) -> None:
    cond = build_conditioner(
        "tiny", mode="reference-sampling", embedding_cache_dir=tmp_path, txt_dim=16, pooled_dim=8
    )
    assert isinstance(cond, CachedConditioner) and isinstance(cond.conditioner, FluxMusicConditioner)
    assert cond.mode == "reference-sampling"
    emb = cond.encode(["hello"])
    assert emb.txt.shape == (1, 256, 16) and emb.y.shape == (1, 8)


def test_unknown_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="minilm"):
        build_conditioner("bert")


def test_every_exported_name_resolves() -> None:
    for name in text.__all__:
        assert getattr(text, name) is not None
    with pytest.raises(AttributeError):
        text.not_a_name  # noqa: B018
