"""The ``--embedding`` names and how each backend is built (:data:`EMBEDDINGS`, :func:`build_embedder`).

The backends themselves live in :mod:`~fluxmusic.evaluation.embedders` (the interface and the family
embedding), :mod:`~fluxmusic.evaluation.clap`, :mod:`~fluxmusic.evaluation.encodec` and
:mod:`~fluxmusic.evaluation.notes` (basic-pitch); this table imports each only when it is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fluxmusic.errors import InputError
from fluxmusic.evaluation.embedders import Embedder, FamilyEmbedder

__all__ = ["EMBEDDINGS", "build_embedder"]


def _clap(checkpoint: str) -> Callable[..., Embedder]:
    def build(**kw: Any) -> Embedder:
        from fluxmusic.evaluation.clap import ClapEmbedder

        return ClapEmbedder.from_pretrained(kw.get("checkpoint") or checkpoint, device=kw.get("device"))

    return build


def _encodec(**kw: Any) -> Embedder:
    from fluxmusic.evaluation.encodec import ENCODEC_CHECKPOINT, EncodecEmbedder

    return EncodecEmbedder.from_pretrained(
        kw.get("checkpoint") or ENCODEC_CHECKPOINT, device=kw.get("device")
    )


def _family(**kw: Any) -> Embedder:
    folder = kw.get("classifier") or kw.get("checkpoint")
    if not folder:
        raise InputError(
            "the family embedding needs a family-classifier folder: pass --classifier DIR (train one with "
            "`fluxmusic evaluate judge --data DEMO --out DIR`)"
        )
    return FamilyEmbedder.from_folder(folder)


def _basic_pitch(**kw: Any) -> Embedder:
    from fluxmusic.evaluation.notes import NoteStatsEmbedder

    return NoteStatsEmbedder(kw.get("checkpoint"))


EMBEDDINGS: dict[str, Callable[..., Embedder]] = {
    "clap-music": _clap("laion/larger_clap_music"),
    "clap-general": _clap("laion/clap-htsat-unfused"),
    "encodec": _encodec,
    "family": _family,
    "basic-pitch": _basic_pitch,
}
"""``--embedding`` name -> builder (keyword options: ``checkpoint``, ``classifier``, ``device``)."""


def build_embedder(name: str, **options: Any) -> Embedder:
    """The backend called ``name`` (:data:`EMBEDDINGS`).

    Raises:
        fluxmusic.errors.InputError: unknown name, or a missing option (the family classifier).
        fluxmusic.hub.WeightsNotFoundError: hub weights missing (offline: not in the cache).
    """
    if name not in EMBEDDINGS:
        raise InputError(f"unknown embedding {name!r}; use one of {', '.join(EMBEDDINGS)}")
    return EMBEDDINGS[name](**options)
