"""Audio samples from the EMA weights during training, and the run's export at the end.

Both build a stand-alone EMA transformer on rank 0 (the training model is never touched):
full training: a fresh ``MusicFlux`` holding the EMA weights; LoRA: a copy of the model whose adapter
holds the EMA adapter weights.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from fluxmusic.model import MusicFlux
from fluxmusic.training.config import TrainConfig

__all__ = ["ema_transformer", "export_run", "render_samples"]

logger = logging.getLogger(__name__)


def ema_transformer(
    config: TrainConfig, model: nn.Module, ema_state: dict[str, Tensor], device: torch.device
) -> MusicFlux:
    """A transformer holding the EMA weights (``ema_state`` is the full EMA, as gathered on rank 0)."""
    from fluxmusic.checkpoints import load_state_strict

    if config.lora.enabled:
        twin = copy.deepcopy(model)
        missing = twin.load_state_dict(ema_state, strict=False).unexpected_keys
        if missing:
            raise KeyError(f"EMA names not in the model: {missing[:3]}")
        return twin.to(device).eval()
    with torch.device("meta"):
        twin = MusicFlux(config.model.musicflux())
    load_state_strict(twin, {k: v.to(device) for k, v in ema_state.items()}, source="EMA weights")
    return twin.eval()


def _pipeline(
    config: TrainConfig, transformer: MusicFlux, vae: Any, vocoder: Any, text: Any, device: torch.device
) -> Any:
    from fluxmusic.modelfolder.index import PipelineSpec
    from fluxmusic.pipeline import FluxMusicPipeline
    from fluxmusic.training.build import text_entry

    duration = config.data.duration
    spec = PipelineSpec(
        default_duration=duration,
        max_duration=max(4 * duration, 40.96),
        defaults={
            "steps": config.sample.steps,
            "guidance": config.sample.guidance,
            "negative_prompt": config.sample.negative_prompt,
            "sampler": "euler",
        },
        name=Path(config.run.dir).name,
    )
    dtype = "bfloat16" if config.run.precision == "bf16" else "float32"
    return FluxMusicPipeline(
        transformer,
        vae,
        vocoder,
        text,
        spec,
        device=device,
        dtype=dtype,
        text_encoder_entry=text_entry(config),
    )


def render_samples(
    config: TrainConfig,
    step: int,
    transformer: MusicFlux,
    vae: Any,
    vocoder: Any,
    text: Any,
    device: torch.device,
) -> Path:
    """Render ``sample.prompts`` with the EMA transformer into ``RUN_DIR/samples/step_XXXXXX/``."""
    from fluxmusic.audio import write_audio

    out = Path(config.run.dir) / "samples" / f"step_{step:06d}"
    pipe = _pipeline(config, transformer, vae, vocoder, text, device)
    sample = config.sample
    audio = pipe(
        list(sample.prompts),
        negative_prompt=sample.negative_prompt,
        duration=sample.duration or config.data.duration,
        steps=sample.steps,
        guidance=sample.guidance,
        seed=sample.seed,
        progress=False,
    )
    for i, waveform in enumerate(audio.waveforms):
        write_audio(out / f"{i:02d}.wav", waveform, audio.sample_rate)
    listing = [
        {"file": f"{i:02d}.wav", "prompt": p, "seed": s}
        for i, (p, s) in enumerate(zip(audio.prompts, audio.seeds or []))
    ]
    (out / "prompts.json").write_text(json.dumps(listing, indent=1) + "\n", encoding="utf-8")
    logger.info("wrote %d samples to %s", len(listing), out)
    return out


def export_run(
    config: TrainConfig,
    model: nn.Module,
    ema_state: dict[str, Tensor],
    vae: Any,
    vocoder: Any,
    text: Any,
    device: torch.device,
) -> Path:
    """Write ``RUN_DIR/export``: a model folder with the EMA transformer, or for LoRA the EMA adapter.

    ``FluxMusicPipeline.from_pretrained(RUN_DIR/export)`` loads the folder; an adapter loads with
    ``pipe.load_lora(RUN_DIR/export)`` on a pipeline built from the base model.
    """
    out = Path(config.run.dir) / "export"
    if config.lora.enabled:
        from fluxmusic.model.lora import save_adapter

        save_adapter(out, model.peft_config["default"], ema_state)  # type: ignore[index]
        logger.info("exported the EMA LoRA adapter to %s", out)
        return out
    transformer = ema_transformer(config, model, ema_state, torch.device("cpu"))
    _pipeline(config, transformer, vae, vocoder, text, torch.device("cpu")).save_pretrained(out)
    logger.info("exported the EMA model to %s (FluxMusicPipeline.from_pretrained loads it)", out)
    return out
