"""The released FluxMusic sizes: their checkpoints, the AudioLDM2 VAE and vocoder, SD3's T5-XXL and CLAP."""

from __future__ import annotations

from pathlib import Path

import torch

from fluxmusic.checkpoints import load_musicflux
from fluxmusic.hub import resolve_file
from fluxmusic.modelfolder.index import PipelineSpec
from fluxmusic.modelfolder.load import Components, collect

__all__ = ["AUDIOLDM2_REPO", "FLUXMUSIC_REPO", "RELEASED", "load_released", "released_spec"]

FLUXMUSIC_REPO = "feizhengcong/FluxMusic"
AUDIOLDM2_REPO = "cvssp/audioldm2"
RELEASED: dict[str, tuple[str, str]] = {  # name -> (checkpoint file, preset)
    "small": ("musicflow_s.pt", "small"),
    "base": ("musicflow_b.pt", "base"),
    "large": ("musicflow_l.pt", "large"),
    "giant": ("musicflow_g.pt", "giant"),
    "giant-full": ("musicflow_g_full.pt", "giant_full"),
}


def released_checkpoint(name: str) -> Path:
    """The cached (or downloaded) reference checkpoint of a released size."""
    return resolve_file(FLUXMUSIC_REPO, RELEASED[name][0], component="transformer")


def released_spec(name: str) -> PipelineSpec:
    """The reference sampling script's settings (50 Euler steps, guidance 7, its negative prompt)."""
    return PipelineSpec(
        default_duration=10.24,
        max_duration=40.96,
        defaults={"steps": 50, "guidance": 7.0, "negative_prompt": "low quality, gentle", "sampler": "euler"},
        name=f"fluxmusic-{name}",
    )


def load_released(
    name: str, device: torch.device, text_mode: str = "training", text_dtype: torch.dtype | None = None
) -> Components:
    """Load a released FluxMusic size with the AudioLDM2 VAE/vocoder and SD3 T5 + CLAP text encoders.

    Raises:
        fluxmusic.hub.WeightsNotFoundError: one line naming every component that could not be found.
    """
    from fluxmusic.audio import AudioVAE, HifiGanVocoder
    from fluxmusic.text.clap import CLAP_REPO, ClapTextEncoder
    from fluxmusic.text.conditioner import FluxMusicConditioner
    from fluxmusic.text.t5 import SD3_REPO, T5Encoder

    preset = RELEASED[name][1]
    loaded = collect(
        {
            "transformer": lambda: load_musicflux(released_checkpoint(name), preset=preset, device=device),
            "vae": lambda: AudioVAE.from_pretrained(AUDIOLDM2_REPO, "vae", device=device),
            "vocoder": lambda: HifiGanVocoder.from_pretrained(AUDIOLDM2_REPO, "vocoder", device=device),
            "t5": lambda: T5Encoder.from_pretrained(SD3_REPO, device=device, dtype=text_dtype),
            "clap": lambda: ClapTextEncoder.from_pretrained(CLAP_REPO, device=device, dtype=text_dtype),
        }
    )
    loaded["text_encoder"] = FluxMusicConditioner(loaded.pop("t5"), loaded.pop("clap"), text_mode)
    entry = {"type": "t5-clap", "mode": text_mode}
    return Components(spec=released_spec(name), text_encoder_entry=entry, **loaded)
