"""The released FluxMusic sizes: their checkpoints, the AudioLDM2 VAE and vocoder, SD3's T5-XXL and CLAP."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from fluxmusic.checkpoints import load_musicflux
from fluxmusic.devices import resolve_dtype
from fluxmusic.hub import resolve_file
from fluxmusic.modelfolder.index import PipelineSpec
from fluxmusic.modelfolder.load import Components, collect
from fluxmusic.sampling import FALLBACK_PRESETS

if TYPE_CHECKING:
    from fluxmusic.audio import AudioVAE, HifiGanVocoder

__all__ = [
    "AUDIOLDM2_REPO",
    "FLUXMUSIC_REPO",
    "RELEASED",
    "lean_audio_",
    "lean_text",
    "load_released",
    "released_spec",
]

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
    """The reference sampling script's guidance (7) and negative prompt, integrated with the ``balanced``
    preset (16 ``ab2`` steps, shift 3: on the bundled model equal to 50 Euler steps within the sampling
    noise, docs/performance.md); ``quality="reference"`` gives the script's own 50 uniform Euler steps."""
    defaults = {**FALLBACK_PRESETS["balanced"], "guidance": 7.0, "negative_prompt": "low quality, gentle"}
    return PipelineSpec(
        default_duration=10.24, max_duration=40.96, defaults=defaults, name=f"fluxmusic-{name}"
    )


def lean_text(device: torch.device) -> bool:
    """Whether T5-XXL streams its blocks from the safetensors files: on a CPU (bit-identical output,
    about 9 GB less resident memory); on an accelerator it stays resident."""
    return device.type == "cpu"


def lean_audio_(vae: AudioVAE, vocoder: HifiGanVocoder, device: torch.device) -> bool:
    """Decode in bf16 (VAE channels-last) where bf16 is native on ``device``; within 2% relative L2 of
    fp32 (``tests/audio/test_lean_decode.py``). Returns whether it did."""
    if resolve_dtype("auto", device) != torch.bfloat16:
        return False
    vae.lean_decode_()
    vocoder.lean_()
    return True


def load_released(
    name: str,
    device: torch.device,
    text_mode: str = "training",
    text_dtype: torch.dtype | None = None,
    lean: bool = True,
) -> Components:
    """Load a released FluxMusic size with the AudioLDM2 VAE/vocoder and SD3 T5 + CLAP text encoders.

    ``lean`` streams T5 on a CPU (:func:`lean_text`) and decodes in bf16 where it is native
    (:func:`lean_audio_`); ``False`` holds every stage resident in its own precision.

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
            "t5": lambda: T5Encoder.from_pretrained(
                SD3_REPO, device=device, dtype=text_dtype, stream=lean and lean_text(device)
            ),
            "clap": lambda: ClapTextEncoder.from_pretrained(CLAP_REPO, device=device, dtype=text_dtype),
        }
    )
    if lean:
        lean_audio_(loaded["vae"], loaded["vocoder"], device)
    loaded["text_encoder"] = FluxMusicConditioner(loaded.pop("t5"), loaded.pop("clap"), text_mode)
    entry = {"type": "t5-clap", "mode": text_mode}
    return Components(spec=released_spec(name), text_encoder_entry=entry, **loaded)
