"""Training datasets: clips straight from audio files, or VAE latents from preprocessed shards.

Both are map-style datasets indexed by a ``(index, sample_seed)`` key that the :class:`EpochSampler`
makes: the seed drives every random choice for that sample (crop offset, silent-window redraws, the
fresh latent drawn from a stored posterior), so a sample is the same whichever worker, rank or resumed
run loads it. An item that cannot be used (missing, corrupt, only silence) comes back as
:class:`SkippedItem` with its path and reason; batches simply leave it out. Nothing is replaced by zeros.
Corrupt means: undecodable, truncated, NaN/Inf samples (the checks of :mod:`fluxmusic.data.items`, where
``AudioSample`` and ``read_item_clip`` live), or a shard row whose stored posterior is not finite.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from fluxmusic.data.items import AudioSample, read_item_clip
from fluxmusic.data.manifest import ManifestItem
from fluxmusic.data.shards import read_index, shard_metadata
from fluxmusic.errors import InputError
from fluxmusic.seeding import derive_seed

__all__ = [
    "AudioBatch",
    "AudioClipDataset",
    "AudioSample",
    "DataPosition",
    "EpochSampler",
    "LatentBatch",
    "LatentSample",
    "LatentShardDataset",
    "SkippedItem",
    "collate",
    "read_item_clip",
]


@dataclass(frozen=True)
class SkippedItem:
    """An item left out of a batch: its manifest index, path and why."""

    index: int
    path: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``item`` is 1-based)."""
        return {"item": self.index + 1, "index": self.index, "path": self.path, "reason": self.reason}


@dataclass
class LatentSample:
    """A fresh latent drawn from a stored posterior, with the stored text embedding and tempo.

    Shapes:
        latent: (C, T, F); txt: (L, D); txt_mask: (L,); y: (Dy,); tempo: (bpm, beat phase), (0, 0) if none.
    """

    index: int
    latent: Tensor
    caption: str
    txt: Tensor
    txt_mask: Tensor
    y: Tensor
    tempo: tuple[float, float] = (0.0, 0.0)


@dataclass
class AudioBatch:
    """Clips of one micro-batch (skipped items are listed, not included).

    Shapes:
        waveforms: (B, S); tempo: (B, 2) rows of (bpm, beat phase), bpm 0 where unknown.
    """

    waveforms: Tensor
    captions: list[str]
    indices: list[int]
    skipped: list[SkippedItem] = field(default_factory=list)
    tempo: Tensor = field(default_factory=lambda: torch.zeros(0, 2))


@dataclass
class LatentBatch:
    """Latents of one micro-batch with their text embeddings.

    Shapes:
        latents: (B, C, T, F); txt: (B, L, D); txt_mask: (B, L); y: (B, Dy); tempo: (B, 2).
    """

    latents: Tensor
    captions: list[str]
    indices: list[int]
    txt: Tensor
    txt_mask: Tensor
    y: Tensor
    skipped: list[SkippedItem] = field(default_factory=list)
    tempo: Tensor = field(default_factory=lambda: torch.zeros(0, 2))


class AudioClipDataset(Dataset):
    """Clips straight from audio files (the reference's crop/pad/normalise rules, seeded).

    Args:
        items: Manifest items (usually those that passed ``data check``).
        duration: Clip length in seconds.
        max_tries: Windows drawn before a silent item is skipped.
        silence_threshold: See :func:`fluxmusic.audio.normalize_peak`.

    Shapes:
        dataset[(i, seed)]: AudioSample with waveform (round(duration * 16000),), or SkippedItem.
    """

    def __init__(
        self,
        items: Sequence[ManifestItem],
        duration: float,
        max_tries: int = 3,
        silence_threshold: float | None = None,
    ) -> None:
        self.items = list(items)
        self.duration = duration
        self.max_tries = max_tries
        self.silence_threshold = silence_threshold

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: tuple[int, int]) -> AudioSample | SkippedItem:
        from fluxmusic.audio import AudioFileError

        index, seed = key
        item = self.items[index]
        try:
            return read_item_clip(
                item,
                self.duration,
                torch.Generator().manual_seed(seed),
                self.max_tries,
                self.silence_threshold,
            )
        except (AudioFileError, ValueError) as err:  # SilentAudioError is a ValueError
            reason = str(err).splitlines()[0].removeprefix(f"{item.path}: ")
            return SkippedItem(item.index, str(item.path), reason)


class LatentShardDataset(Dataset):
    """Preprocessed shards (``fluxmusic preprocess``): posterior mean/log-variance and text embeddings.

    Each access draws a fresh latent ``mean + exp(logvar / 2) * eps`` with ``eps`` from the key's seed,
    so every epoch trains on new posterior samples, as when encoding audio on the fly.

    Args:
        root: The preprocess output folder (holding ``index.json``).

    Shapes:
        dataset[(i, seed)]: LatentSample with latent (C, T, F), txt (L, D), txt_mask (L,), y (Dy,), or
            SkippedItem for a row that is not finite.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.index = read_index(self.root)
        self.rows: list[tuple[str, int]] = [
            (shard["file"], row) for shard in self.index["shards"] for row in range(int(shard["count"]))
        ]
        self._handles: dict[str, Any] = {}
        self._meta: dict[str, list[dict[str, Any]]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handles"] = {}  # open files do not cross process boundaries
        return state

    def _open(self, name: str) -> Any:
        from safetensors import safe_open

        if name not in self._handles:
            handle = safe_open(str(self.root / name), framework="pt")
            self._handles[name] = handle
            self._meta[name] = shard_metadata(handle)
        return self._handles[name]

    def item_info(self, i: int) -> dict[str, Any]:
        """Manifest index, path, caption and crop offset of row ``i``."""
        name, row = self.rows[i]
        self._open(name)
        return self._meta[name][row]

    def __getitem__(self, key: tuple[int, int]) -> LatentSample | SkippedItem:
        i, seed = key
        name, row = self.rows[i]
        handle = self._open(name)
        info = self._meta[name][row]
        get = {k: handle.get_slice(k)[row : row + 1][0] for k in ("mean", "logvar", "txt", "txt_mask", "y")}
        mean, logvar = get["mean"].float(), get["logvar"].float()
        bad = [k for k in ("mean", "logvar", "txt", "y") if not bool(torch.isfinite(get[k]).all())]
        if bad:  # a damaged shard, or one written before preprocess refused non-finite rows
            reason = f"corrupt: non-finite {' and '.join(bad)} in {name} row {row}; preprocess it again"
            return SkippedItem(int(info["index"]), str(info.get("wav", "")), reason)
        eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(seed))
        latent = mean + torch.exp(0.5 * logvar) * eps
        return LatentSample(
            int(info["index"]),
            latent,
            info["label"],
            get["txt"].float(),
            get["txt_mask"].bool(),
            get["y"].float(),
            tuple(float(v) for v in info.get("tempo", (0.0, 0.0))),  # type: ignore[arg-type]
        )

    def empty_text(self) -> tuple[Tensor, Tensor, Tensor]:
        """The stored embedding of the empty caption (for caption dropout). Shapes: (L, D), (L,), (Dy,)."""
        from safetensors.torch import load_file

        empty = load_file(str(self.root / "empty_text.safetensors"))
        return empty["txt"][0].float(), empty["txt_mask"][0].bool(), empty["y"][0].float()


def collate(samples: Sequence[AudioSample | LatentSample | SkippedItem]) -> AudioBatch | LatentBatch:
    """Stack the usable samples of a micro-batch; skipped items are listed in ``skipped``.

    A micro-batch may end up with zero rows (every item skipped); it is then an empty ``AudioBatch``
    (batch size 0) whichever dataset it came from.
    """
    skipped = [s for s in samples if isinstance(s, SkippedItem)]
    kept = [s for s in samples if not isinstance(s, SkippedItem)]
    latent = [s for s in kept if isinstance(s, LatentSample)]
    if latent:
        return LatentBatch(
            torch.stack([s.latent for s in latent]),
            [s.caption for s in latent],
            [s.index for s in latent],
            torch.stack([s.txt for s in latent]),
            torch.stack([s.txt_mask for s in latent]),
            torch.stack([s.y for s in latent]),
            skipped,
            torch.tensor([s.tempo for s in latent], dtype=torch.float32),
        )
    audio = [s for s in kept if isinstance(s, AudioSample)]
    waveforms = torch.stack([s.waveform for s in audio]) if audio else torch.zeros(0, 0)
    tempo = torch.tensor([s.tempo for s in audio], dtype=torch.float32).reshape(-1, 2)
    return AudioBatch(waveforms, [s.caption for s in audio], [s.index for s in audio], skipped, tempo)


@dataclass(frozen=True)
class DataPosition:
    """Where the data stream is: the epoch and the number of micro-batches already consumed in it."""

    epoch: int = 0
    batch: int = 0

    def to_dict(self) -> dict[str, int]:
        """Plain dict for the training state."""
        return {"epoch": self.epoch, "batch": self.batch}


class EpochSampler:
    """Seeded, rank-sharded micro-batches of ``(index, sample_seed)`` keys, resumable at any position.

    Each epoch is a permutation of the dataset drawn from ``(seed, "order", epoch)``. Global micro-batch
    ``b`` covers permutation positions ``[b * W * B, (b + 1) * W * B)`` (W ranks, B per rank); rank ``r``
    takes its ``r``-th slice of ``B``. The remainder of an epoch that does not fill a global micro-batch
    is dropped (it comes first in another epoch's order). A sample's seed depends on ``(seed, epoch,
    permutation position)`` only, so the data seen does not depend on the number of ranks' workers.

    Args:
        num_items: Dataset size.
        batch_size: Micro-batch size per rank.
        seed: Run seed.
        rank: This process's rank.
        world_size: Number of ranks.
        shuffle: Permute each epoch (else manifest order).
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        if num_items < batch_size * world_size:
            raise InputError(
                f"the dataset has {num_items} usable items but one micro-batch needs {batch_size} x "
                f"{world_size} rank(s) = {batch_size * world_size}; lower the batch size or add data"
            )
        self.num_items = num_items
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle

    @property
    def batches_per_epoch(self) -> int:
        """Micro-batches per rank per epoch."""
        return self.num_items // (self.batch_size * self.world_size)

    def order(self, epoch: int) -> Tensor:
        """The epoch's permutation of item indices. Shapes: -> (num_items,) int64."""
        if not self.shuffle:
            return torch.arange(self.num_items)
        gen = torch.Generator().manual_seed(derive_seed(self.seed, "order", epoch))
        return torch.randperm(self.num_items, generator=gen)

    def epoch_batches(self, epoch: int, start: int = 0) -> list[list[tuple[int, int]]]:
        """This rank's micro-batches of ``(index, sample_seed)`` keys, from batch ``start`` to the end."""
        order = self.order(epoch).tolist()
        out = []
        for b in range(start, self.batches_per_epoch):
            first = (b * self.world_size + self.rank) * self.batch_size
            positions = range(first, first + self.batch_size)
            out.append([(order[p], derive_seed(self.seed, "sample", epoch, p)) for p in positions])
        return out

    def stream(self, position: DataPosition) -> Iterator[tuple[DataPosition, list[tuple[int, int]]]]:
        """Endless micro-batches from ``position``; yields the position *after* each batch with it."""
        epoch, start = position.epoch, position.batch
        if start >= self.batches_per_epoch:
            epoch, start = epoch + 1, 0
        while True:
            for offset, keys in enumerate(self.epoch_batches(epoch, start)):
                yield DataPosition(epoch, start + offset + 1), keys
            epoch, start = epoch + 1, 0
