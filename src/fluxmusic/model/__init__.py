"""The MusicFlux transformer: layers, blocks, rotary embedding and latent packing (no I/O)."""

from fluxmusic.config import PRESETS, MusicFluxConfig
from fluxmusic.model.musicflux import MusicFlux
from fluxmusic.model.packing import image_ids, pack, text_ids, unpack

__all__ = ["PRESETS", "MusicFlux", "MusicFluxConfig", "image_ids", "pack", "text_ids", "unpack"]
