"""Loading and saving model folders, and finding a model by name (bundled, released size or folder)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fluxmusic.checkpoints import CheckpointError, load_musicflux, save_musicflux
from fluxmusic.errors import InputError
from fluxmusic.hub import WeightsNotFoundError
from fluxmusic.model import MusicFlux
from fluxmusic.modelfolder.index import (
    MODEL_INDEX,
    PipelineSpec,
    adapter_names,
    read_model_index,
    spec_from_index,
    verify_weights,
    write_model_index,
)
from fluxmusic.modelfolder.registry import build_component, save_component

__all__ = [
    "BUNDLED_NAME",
    "Components",
    "bundled_model_dir",
    "collect",
    "load_model_dir",
    "load_transformer",
    "save_model_dir",
]

BUNDLED_NAME = "bundled"


@dataclass
class Components:
    """Everything a ``FluxMusicPipeline`` is made of."""

    transformer: MusicFlux
    vae: Any
    vocoder: Any
    text_encoder: Any
    spec: PipelineSpec
    text_encoder_entry: dict[str, Any] | None = None


def bundled_model_dir() -> Path:
    """Folder of the small model shipped inside the package."""
    return Path(__file__).resolve().parent.parent / "bundled" / "model"


def collect(loaders: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run every loader; raise one error naming every component whose files are missing.

    Raises:
        WeightsNotFoundError: ``"missing model files: A | B"``, one part per failed component.
    """
    loaded, failures = {}, []
    for name, load in loaders.items():
        try:
            loaded[name] = load()
        except (FileNotFoundError, CheckpointError, OSError) as err:
            failures.append(str(err).splitlines()[0])
    if failures:
        raise WeightsNotFoundError("missing model files: " + " | ".join(failures))
    return loaded


def load_transformer(
    root: Path, index: dict[str, Any], adapters: list[str], device: torch.device
) -> MusicFlux:
    """A model folder's transformer in fp32 (bf16 runs under autocast), its adapters folded in, in order.

    Raises:
        FileNotFoundError: a listed adapter folder lacks its files.
        ValueError: an adapter does not fit the transformer.
    """
    from fluxmusic.model.lora import load_lora, merge_lora

    model = load_musicflux(root / index["transformer"], device=device, dtype=torch.float32)
    for name in adapters:
        merge_lora(load_lora(model, root / name))
    return model


def load_model_dir(root: str | Path, device: torch.device, require_hashes: bool = False) -> Components:
    """Load a model folder described by ``fluxmusic.json``, checking its weight hashes when it records them.

    Args:
        root: The model folder.
        device: Where to put the weights.
        require_hashes: Refuse a folder without a ``sha256`` table (the bundled model).
    """
    from fluxmusic.audio import AudioVAE

    root = Path(root)
    index = read_model_index(root)
    spec = spec_from_index(index, root / MODEL_INDEX)
    verify_weights(root, index, require=require_hashes)
    adapters = adapter_names(root, index)
    loaded = collect(
        {
            "transformer": lambda: load_transformer(root, index, adapters, device),
            "vae": lambda: AudioVAE.from_pretrained(root / index["vae"], None, device=device),
            "vocoder": lambda: build_component("vocoder", index["vocoder"], root, device),
            "text_encoder": lambda: build_component("text_encoder", index["text_encoder"], root, device),
        }
    )
    return Components(spec=spec, text_encoder_entry=index["text_encoder"], **loaded)


def save_model_dir(parts: Components, out_dir: str | Path) -> Path:
    """Write a model folder (``fluxmusic.json`` + component subfolders) that ``load_model_dir`` reads."""
    if parts.text_encoder_entry is None:
        raise InputError("cannot save: the pipeline does not know how to describe its text encoder")
    out = Path(out_dir)
    save_musicflux(parts.transformer, out / "transformer")
    parts.vae.save_pretrained(out / "vae")
    spec = parts.spec
    index = {
        "name": spec.name,
        "transformer": "transformer",
        "vae": "vae",
        "vocoder": save_component("vocoder", parts.vocoder, out),
        "text_encoder": parts.text_encoder_entry,
        "sample_rate": spec.sample_rate,
        "default_duration": spec.default_duration,
        "max_duration": spec.max_duration,
        "defaults": spec.defaults,
    }
    write_model_index(out, index)
    return out
