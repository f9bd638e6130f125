"""Audio embedding backends behind one interface, for Fréchet distances and the other set metrics.

Every backend is an :class:`Embedder`: a ``name`` (the ``--embedding`` word), the ``checkpoint`` it uses
(a hub id, a folder or a bundled file), the ``sample_rate`` it runs at, and
``embed(waveforms, sample_rate) -> (N, D)``: one row per clip, whatever the clips' rates and lengths.

The same rules hold for every backend:

- **channels**: a clip is ``(S,)`` (mono) or ``(C, S)``; several channels are averaged to mono first
  (every model here is a mono model);
- **rate**: each clip is resampled with soxr to the backend's ``sample_rate``;
- **length**: a clip is cut into non-overlapping windows of ``window_seconds`` (the model's own input
  length); the last, shorter window is kept when it is at least half a window long (or is the only one);
  a clip shorter than a window is one window (the model pads it its own way). The clip's row is the mean
  of its windows' embeddings, weighted by their lengths. ``window_seconds = None`` hands the whole clip
  to the model (``basic-pitch``, which windows internally).

Backends (:data:`fluxmusic.evaluation.backends.EMBEDDINGS`; each hub-backed one loads its weights
through :mod:`fluxmusic.hub`, so offline it fails with one line naming the hub id):

- ``clap-music``: ``laion/larger_clap_music``, 48 kHz, D = 512, 10 s windows;
- ``clap-general``: ``laion/clap-htsat-unfused``, 48 kHz, D = 512, 10 s windows;
- ``encodec``: ``facebook/encodec_24khz``, 24 kHz, D = 128 (encoder frames averaged), 10 s windows;
- ``family``: a family-classifier folder, 16 kHz, D = 64, 5.12 s windows;
- ``basic-pitch``: the ``nmp.onnx`` inside basic-pitch's wheel, 22.05 kHz, D = 22, the whole clip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from fluxmusic.errors import InputError

__all__ = ["Embedder", "EmbeddingInfo", "FamilyEmbedder", "split_windows", "to_mono", "window_count"]


def to_mono(waveform: Tensor) -> Tensor:
    """A clip as mono float32: ``(S,)`` is kept, ``(C, S)`` is averaged over channels.

    Shapes:
        waveform: (S,) or (C, S) -> (S,)
    """
    if waveform.dim() == 2:
        waveform = waveform.float().mean(dim=0)
    if waveform.dim() != 1 or waveform.shape[0] == 0:
        raise InputError(f"a clip must be (S,) or (C, S) with S > 0, got shape {tuple(waveform.shape)}")
    return waveform.float()


def split_windows(waveform: Tensor, window: int | None) -> list[Tensor]:
    """Non-overlapping windows of ``window`` samples (see the module docstring for the last one).

    Shapes:
        waveform: (S,) -> a list of (S_w,) with S_w <= window
    """
    length = waveform.shape[0]
    if window is None or length <= window:
        return [waveform]
    pieces = list(waveform.split(window))
    if len(pieces) > 1 and pieces[-1].shape[0] * 2 < window:
        pieces = pieces[:-1]
    return pieces


@dataclass(frozen=True)
class EmbeddingInfo:
    """What a set of embeddings was made with (recorded beside every metric).

    Attributes:
        backend: The backend name (``clap-music``, ``family``, ...).
        checkpoint: Hub id, folder or file of its weights.
        sample_rate: The rate the model ran at (Hz).
        window_seconds: Its window length (None: the whole clip).
        dim: Embedding width D.
    """

    backend: str
    checkpoint: str
    sample_rate: int
    window_seconds: float | None
    dim: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "backend": self.backend,
            "checkpoint": self.checkpoint,
            "sample_rate": self.sample_rate,
            "window_seconds": self.window_seconds,
            "dim": self.dim,
        }


class Embedder:
    """Base of every backend: channel, rate and window rules around :meth:`embed_windows`.

    Subclasses set ``name``, ``checkpoint``, ``sample_rate``, ``window_seconds`` and ``dim`` and implement
    :meth:`embed_windows`. ``cache_token`` names anything else that changes the numbers (weights' hash,
    settings); it is part of the on-disk cache key.
    """

    name: str = ""
    checkpoint: str = ""
    sample_rate: int = 16000
    window_seconds: float | None = None
    dim: int = 0
    cache_token: str = ""

    @property
    def info(self) -> EmbeddingInfo:
        """The backend's record (:class:`EmbeddingInfo`)."""
        return EmbeddingInfo(self.name, self.checkpoint, self.sample_rate, self.window_seconds, self.dim)

    def embed_windows(self, windows: list[Tensor]) -> Tensor:
        """Embeddings of one clip's windows, already mono at ``sample_rate``.

        Shapes:
            windows: a list of W tensors (S_w,) -> (W, D)
        """
        raise NotImplementedError

    def prepare(self, waveform: Tensor, sample_rate: int) -> Tensor:
        """Mono at the backend's rate. Shapes: (S,) or (C, S) -> (S',)."""
        from fluxmusic.audio import resample

        if sample_rate <= 0:
            raise InputError(f"sample rate must be > 0, got {sample_rate}")
        return resample(to_mono(waveform), sample_rate, self.sample_rate)

    def embed_clip(self, waveform: Tensor, sample_rate: int) -> Tensor:
        """One clip's row: the length-weighted mean of its windows' embeddings. Shapes: -> (D,)."""
        wave = self.prepare(waveform, sample_rate)
        window = None if self.window_seconds is None else int(round(self.window_seconds * self.sample_rate))
        pieces = split_windows(wave, window)
        rows = self.embed_windows(pieces).double()
        weights = torch.tensor([p.shape[0] for p in pieces], dtype=torch.float64)
        return ((rows * weights[:, None]).sum(0) / weights.sum()).float()

    @torch.no_grad()
    def embed(
        self,
        waveforms: Tensor | Sequence[Tensor],
        sample_rate: int,
        progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None,
    ) -> Tensor:
        """One embedding per clip.

        Args:
            waveforms: A batch ``(N, S)`` of mono clips or a list of ``(S,)`` / ``(C, S)`` clips of any
                lengths.
            sample_rate: Their rate (Hz); each clip is resampled to :attr:`sample_rate`.
            progress: Optional wrapper over the clips (e.g. ``tqdm``).

        Shapes:
            waveforms: (N, S) or N x (S,) / (C, S) -> (N, D) float32
        """
        clips = list(waveforms) if isinstance(waveforms, (list, tuple)) else list(waveforms.unbind(0))
        if not clips:
            raise InputError(f"{self.name}: no clips to embed")
        rows = [self.embed_clip(clip, sample_rate) for clip in (progress(clips) if progress else clips)]
        return torch.stack(rows)


class FamilyEmbedder(Embedder):
    """The project's own family-judge embedding (64-d, before its ReLU), offline.

    Args:
        classifier: A loaded :class:`~fluxmusic.evaluation.family_classifier.FamilyClassifier`.
        checkpoint: Where it came from (its folder), for the record.
        token: What identifies its weights (e.g. the hash of ``model.safetensors``).
    """

    name = "family"
    window_seconds = 5.12

    def __init__(self, classifier: Any, checkpoint: str = "", token: str = "") -> None:
        self.classifier = classifier
        self.sample_rate = int(classifier.config.sample_rate)
        self.dim = int(classifier.config.embed_dim)
        self.checkpoint = checkpoint or "(in memory)"
        self.cache_token = token

    @classmethod
    def from_folder(cls, folder: str | Path) -> FamilyEmbedder:
        """Load a classifier folder (``fluxmusic evaluate judge`` writes one).

        Raises:
            fluxmusic.errors.MissingFilesError: not a classifier folder.
        """
        from fluxmusic.evaluation.family_classifier import WEIGHTS_NAME, FamilyClassifier
        from fluxmusic.files import sha256_file

        classifier = FamilyClassifier.load(folder)
        return cls(classifier, str(folder), sha256_file(Path(folder) / WEIGHTS_NAME)[:16])

    def embed_windows(self, windows: list[Tensor]) -> Tensor:
        return torch.cat([self.classifier.analyse(w[None])[1] for w in windows])

    def probabilities(self, waveforms: Sequence[Tensor], sample_rate: int) -> Tensor:
        """Family probabilities per clip (mean over windows). Shapes: N clips -> (N, n_families)."""
        rows = []
        window = int(round(self.window_seconds * self.sample_rate))
        for clip in waveforms:
            pieces = split_windows(self.prepare(clip, sample_rate), window)
            probs = torch.cat([self.classifier.analyse(p[None])[0] for p in pieces]).double()
            weights = torch.tensor([p.shape[0] for p in pieces], dtype=torch.float64)
            rows.append((probs * weights[:, None]).sum(0) / weights.sum())
        return torch.stack(rows).float()


def window_count(seconds: float, window_seconds: float | None) -> int:
    """How many windows a clip of ``seconds`` is cut into (see the module docstring)."""
    if window_seconds is None or seconds <= window_seconds:
        return 1
    full, rest = divmod(seconds, window_seconds)
    return int(full) + (1 if rest * 2 >= window_seconds and not math.isclose(rest, 0.0) else 0)
