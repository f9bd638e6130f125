"""Fixtures for the text tests: offline tokenizers, tiny and full-width random encoders."""

from __future__ import annotations

from typing import Any

import pytest

from fluxmusic.text import (
    T5XXL_CONFIG,
    ClapTextEncoder,
    FluxMusicConditioner,
    T5Encoder,
    byte_level_tokenizer,
)


@pytest.fixture(scope="session")
def t5_tokenizer() -> Any:
    return byte_level_tokenizer("t5")


@pytest.fixture(scope="session")
def clap_tokenizer() -> Any:
    return byte_level_tokenizer("roberta")


@pytest.fixture(scope="module")
def tiny() -> FluxMusicConditioner:
    """Tiny fp32 T5 + CLAP (txt 40, y 24), training mode."""
    return FluxMusicConditioner.tiny()


@pytest.fixture(scope="module")
def wide_t5(t5_tokenizer: Any) -> T5Encoder:
    """T5-XXL at full width (d_model 4096, 64 heads, d_ff 10240, vocab 32128) but 2 of its 24 layers, bf16."""
    return T5Encoder.from_config(t5_tokenizer, T5XXL_CONFIG, num_layers=2)


@pytest.fixture(scope="module")
def exact_clap(clap_tokenizer: Any) -> ClapTextEncoder:
    """CLAP text tower in its exact shape (``ClapTextConfig()`` defaults), random weights, bf16."""
    return ClapTextEncoder.from_config(clap_tokenizer)
