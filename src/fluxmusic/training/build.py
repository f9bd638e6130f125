"""Build a run's components from its config: transformer (random, ``init_from``, LoRA), VAE, vocoder, text.

Random components (the transformer without ``init_from``, and the ``random`` VAE / vocoder used by tests)
are initialised from seeds derived from ``run.seed``, so every rank and every resumed run builds the
same weights.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch

from fluxmusic.errors import InputError
from fluxmusic.model import MusicFlux, MusicFluxConfig
from fluxmusic.seeding import derive_seed
from fluxmusic.training.config import TrainConfig

__all__ = ["build_model", "build_text", "build_vae", "build_vocoder", "text_entry"]

logger = logging.getLogger(__name__)


def _initial_weights(path: str, key: str) -> MusicFlux:
    """``init_from`` in fp32 master weights (also from bf16-stored ones, such as the bundled model's).

    A pipeline folder (with ``fluxmusic.json``, e.g. ``src/fluxmusic/bundled/model``) gives its
    transformer with the adapters it lists folded in, after the weight-hash check: the model it samples.
    """
    from fluxmusic.checkpoints import load_musicflux
    from fluxmusic.modelfolder.index import MODEL_INDEX, adapter_names, read_model_index, verify_weights
    from fluxmusic.modelfolder.load import load_transformer

    root = Path(path)
    if (root / MODEL_INDEX).is_file():
        index = read_model_index(root)
        verify_weights(root, index)
        return load_transformer(root, index, adapter_names(root, index), torch.device("cpu"))
    if (root.parent / MODEL_INDEX).is_file() and read_model_index(root.parent).get("adapters"):
        logger.warning(
            "init_from %s is a transformer whose model folder also lists adapters; they are not included "
            "(pass the folder %s to start from the model it samples)",
            root,
            root.parent,
        )
    return load_musicflux(path, key=key or None, device="cpu", dtype=torch.float32)


def build_model(config: TrainConfig, device: torch.device | str = "cpu") -> MusicFlux:
    """The transformer to train: ``init_from`` weights or a seeded random init; LoRA layers if enabled.

    Raises:
        fluxmusic.checkpoints.CheckpointError: unreadable ``init_from``.
        ValueError: ``init_from`` weights of another size than ``model.preset`` (+ overrides).
    """

    wanted = config.model.musicflux()
    if config.model.init_from:
        model = _initial_weights(config.model.init_from, config.model.init_key)
        if model.config != wanted and _adds_tempo(model.config, wanted):
            model = _add_tempo_input(model, wanted, derive_seed(config.run.seed, "init"))
        if model.config != wanted:
            diff = {
                k: (v, getattr(model.config, k))
                for k, v in wanted.to_dict().items()
                if model.config.to_dict()[k] != v
            }
            raise InputError(
                f"model.init_from {config.model.init_from} holds a different transformer than model.preset "
                f"{config.model.preset!r} (config vs weights: {diff}); set model.preset / model.overrides "
                "to match"
            )
        logger.info("initialised from %s", config.model.init_from)
    else:
        torch.manual_seed(derive_seed(config.run.seed, "init"))
        model = MusicFlux(wanted)
    model.gradient_checkpointing = config.model.gradient_checkpointing
    if config.lora.enabled:
        from fluxmusic.model.lora import add_lora, lora_config

        lora = config.lora
        add_lora(
            model, lora_config(lora.rank, lora.alpha, lora.dropout, lora.targets, config.model.init_from)
        )
    return model.to(device).train()


def _adds_tempo(have: MusicFluxConfig, wanted: MusicFluxConfig) -> bool:
    """Whether ``wanted`` is ``have`` plus a tempo input (and nothing else changed)."""
    return (
        not have.has_tempo_input
        and wanted.has_tempo_input
        and dataclasses.replace(have, tempo_frame_seconds=wanted.tempo_frame_seconds) == wanted
    )


def _add_tempo_input(model: MusicFlux, wanted: MusicFluxConfig, seed: int) -> MusicFlux:
    """``model`` with a new, zero-initialised tempo input: same outputs until fine-tuned."""
    torch.manual_seed(seed)
    grown = MusicFlux(wanted)
    result = grown.load_state_dict(model.state_dict(), strict=False)
    assert not result.unexpected_keys and all(k.startswith("tempo_in.") for k in result.missing_keys)
    assert grown.tempo_in is not None
    count = sum(p.numel() for p in grown.tempo_in.parameters())
    logger.info("added a zero-initialised tempo input (%d parameters)", count)
    return grown.eval()


def build_vae(config: TrainConfig, device: torch.device | str = "cpu") -> Any:
    """The frozen ``AudioVAE`` (pretrained, or random from ``vae.random`` with a derived seed)."""
    from fluxmusic.audio import AudioVAE

    if config.vae.random:
        torch.manual_seed(derive_seed(config.run.seed, "vae"))
        vae = AudioVAE.from_config(**config.vae.random)
    else:
        vae = AudioVAE.from_pretrained(config.vae.pretrained, config.vae.subfolder or None)
    return vae.to(device).eval().requires_grad_(False)


def build_vocoder(config: TrainConfig, device: torch.device | str = "cpu") -> Any:
    """The vocoder for samples and export (HiFi-GAN pretrained or random, or Griffin-Lim), built through
    the model-folder component registry like any model folder's."""
    from fluxmusic.modelfolder.registry import build_component

    voc = config.vocoder
    if voc.type == "hifigan" and voc.random:  # a random HiFi-GAN: a training-only choice
        from fluxmusic.audio import HifiGanVocoder

        torch.manual_seed(derive_seed(config.run.seed, "vocoder"))
        return HifiGanVocoder.from_config(**voc.random).to(device).eval()
    entry: dict[str, Any] = {"type": voc.type}
    if voc.type == "griffin-lim":
        entry["n_iter"] = voc.n_iter
    else:
        entry.update(path=voc.pretrained, subfolder=voc.subfolder or None)
    vocoder = build_component("vocoder", entry, Path.cwd(), torch.device(device))
    return vocoder.eval() if isinstance(vocoder, torch.nn.Module) else vocoder


def text_entry(config: TrainConfig) -> dict[str, Any]:
    """The ``text_encoder`` entry of an exported model folder (``fluxmusic.json``)."""
    entry: dict[str, Any] = {"type": config.text.encoder, **config.text.options}
    if config.text.encoder != "minilm":
        entry["mode"] = config.text.mode
    return entry


def build_text(config: TrainConfig, device: torch.device | str = "cpu", cache: bool = True) -> Any:
    """The frozen text conditioner (through the component registry, from the entry the exported model
    folder will hold), wrapped in an embedding cache (``text.cache_dir`` or the run's)."""
    from fluxmusic.modelfolder.registry import build_component

    cache_dir = None
    if cache:
        cache_dir = config.text.cache_dir or str(Path(config.run.dir) / "text_cache")
    return build_component(
        "text_encoder", text_entry(config), Path.cwd(), torch.device(device), embedding_cache_dir=cache_dir
    )
