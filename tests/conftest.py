"""Shared fixtures: golden tensors from the reference implementation and tiny random models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from fluxmusic.config import MusicFluxConfig
from fluxmusic.model import MusicFlux

GOLDEN = Path(__file__).parent / "fixtures" / "golden"


@pytest.fixture(scope="session")
def golden_tiny() -> dict[str, torch.Tensor]:
    """Tensors of ``musicflux_tiny.safetensors`` (reference weights, inputs and outputs)."""
    return load_file(str(GOLDEN / "musicflux_tiny.safetensors"))


@pytest.fixture(scope="session")
def golden_tiny_config() -> MusicFluxConfig:
    with safe_open(str(GOLDEN / "musicflux_tiny.safetensors"), "pt") as f:
        return MusicFluxConfig.from_dict(json.loads(f.metadata()["config"]))


@pytest.fixture()
def golden_model(golden_tiny: dict[str, torch.Tensor], golden_tiny_config: MusicFluxConfig) -> MusicFlux:
    """The reference's tiny model with its weights loaded strictly."""
    model = MusicFlux(golden_tiny_config)
    state = {k.removeprefix("model."): v for k, v in golden_tiny.items() if k.startswith("model.")}
    model.load_state_dict(state, strict=True)
    return model.eval()


@pytest.fixture(scope="session")
def manifest() -> dict:
    """Keys, shapes and parameter counts of every released checkpoint."""
    return json.loads((GOLDEN / "checkpoint_manifest.json").read_text())
