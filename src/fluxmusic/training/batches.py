"""The training data stream: dataset + seeded sampler + DataLoader, and micro-batch preparation.

Preparation turns a micro-batch into what the flow loss needs: latents (VAE-encoded on the fly from
audio, or drawn from stored posteriors), text embeddings (from the cache) and caption dropout.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from fluxmusic.data.dataset import (
    AudioBatch,
    AudioClipDataset,
    DataPosition,
    EpochSampler,
    LatentBatch,
    LatentShardDataset,
    collate,
)
from fluxmusic.errors import InputError
from fluxmusic.text.base import TextEmbedding
from fluxmusic.training.config import DataConfig, TrainConfig
from fluxmusic.training.distributed import DistContext

__all__ = [
    "DataStream",
    "TrainData",
    "apply_caption_dropout",
    "build_data",
    "caption_dropout_masks",
    "encode_captions",
    "prepare_batch",
]

logger = logging.getLogger(__name__)

TEXT_CHUNK = 16
"""Captions per text-encoder call when pre-encoding (fixed, so embeddings do not depend on the rank count)."""


@dataclass
class TrainData:
    """A run's dataset and what the loop needs to know about it.

    Attributes:
        dataset: ``AudioClipDataset`` or ``LatentShardDataset``.
        captions: Every caption the dataset can yield (to pre-encode), audio path only.
        latent_shape: (C, T, F) of one latent.
        from_audio: Whether clips are encoded on the fly.
    """

    dataset: Dataset
    captions: list[str]
    latent_shape: tuple[int, int, int]
    from_audio: bool


def build_data(config: TrainConfig, ctx: DistContext, run_dir: Path, vae: Any | None) -> TrainData:
    """Dataset of a run. A manifest is checked first (``data.check``) on rank 0, the report written to
    ``RUN_DIR/logs/data_check.json`` and reused on resume, so the item list never changes mid-run."""
    from fluxmusic.audio import frames_for

    data = config.data
    if data.shards:
        dataset = LatentShardDataset(data.shards)
        index = dataset.index
        if abs(float(index["duration"]) - data.duration) > 1e-9:
            logger.warning(
                "shards hold %.3f s clips, data.duration is %.3f s", index["duration"], data.duration
            )
        shape = tuple(int(s) for s in index["latent_shape"])
        return TrainData(dataset, [], (shape[0], shape[1], shape[2]), from_audio=False)
    if vae is None:
        raise InputError("training from a manifest needs the VAE")
    frames = frames_for(data.duration)
    step = config.model.musicflux().patch_size * vae.downsample  # whole patches of latent
    if frames % step:
        raise InputError(
            f"data.duration {data.duration} s gives {frames} mel frames; it must be a multiple of {step} "
            f"(e.g. {step * max(1, round(frames / step)) / 100:g} s)"
        )
    items = _checked_items(data, ctx, run_dir)
    dataset = AudioClipDataset(items, data.duration, data.max_tries)
    shape = (vae.latent_channels, frames // vae.downsample, 64 // vae.downsample)
    return TrainData(dataset, sorted({item.caption for item in items}), shape, from_audio=True)


def _checked_items(data: DataConfig, ctx: DistContext, run_dir: Path) -> list[Any]:
    from fluxmusic.data.check import CheckReport, check_items
    from fluxmusic.data.manifest import read_manifest

    items = read_manifest(data.manifest)
    report_path = run_dir / "logs" / "data_check.json"
    good: list[int] | None = None
    if report_path.is_file():
        saved = json.loads(report_path.read_text(encoding="utf-8"))
        good = [entry["index"] for entry in saved["items"] if entry["status"] == "ok"]
    elif data.check == "off":
        good = [item.index for item in items]
    elif ctx.is_main:
        verdicts = check_items(items, data.min_duration, decode=data.check == "full", workers=4)
        report = CheckReport(
            data.manifest, verdicts, {"check": data.check, "min_duration": data.min_duration}
        )
        report.write(report_path)
        for verdict in report.bad:
            logger.warning("skipping %s", verdict.describe())
        good = report.good_indices
        logger.info("data: %d of %d items usable", len(good), len(items))
    if ctx.distributed:
        shared = [good]
        torch.distributed.broadcast_object_list(shared, src=0)
        good = shared[0]
    assert good is not None
    keep = set(good)
    return [item for item in items if item.index in keep]


class DataStream:
    """Endless micro-batches for this rank from a data position; one DataLoader per epoch.

    Args:
        dataset: Map-style dataset taking ``(index, seed)`` keys.
        sampler: The seeded sampler.
        position: Where to start (the position after the last consumed micro-batch).
        num_workers: DataLoader workers.
    """

    def __init__(
        self, dataset: Dataset, sampler: EpochSampler, position: DataPosition, num_workers: int
    ) -> None:
        self.dataset = dataset
        self.sampler = sampler
        self.position = position
        self.num_workers = num_workers

    def __iter__(self) -> Iterator[tuple[DataPosition, AudioBatch | LatentBatch]]:
        epoch, start = self.position.epoch, self.position.batch
        while True:
            if start >= self.sampler.batches_per_epoch:
                epoch, start = epoch + 1, 0
            batches = self.sampler.epoch_batches(epoch, start)
            loader = DataLoader(
                self.dataset,
                batch_sampler=batches,
                collate_fn=collate,
                num_workers=self.num_workers,
                prefetch_factor=2 if self.num_workers else None,
            )
            for offset, batch in enumerate(loader):
                yield DataPosition(epoch, start + offset + 1), batch
            epoch, start = epoch + 1, 0


def encode_captions(conditioner: Any, captions: list[str], ctx: DistContext) -> None:
    """Fill the embedding cache with every caption (and ""), split across ranks in fixed chunks."""
    unique = sorted(set(captions) | {""})
    chunks = [unique[i : i + TEXT_CHUNK] for i in range(0, len(unique), TEXT_CHUNK)]
    with torch.inference_mode():
        for chunk in chunks[ctx.rank :: ctx.world_size]:
            conditioner.encode(chunk)
    ctx.barrier()


def caption_dropout_masks(
    batch: int, p: float, mode: str, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Which rows lose their token states and which their pooled vector, each with probability ``p``.

    ``independent`` draws the two separately, as the reference does for T5 and CLAP; ``joint`` drops
    both together. Two draws are made in both modes, so the generator advances the same way.

    Shapes:
        -> drop_txt (B,) bool, drop_y (B,) bool.
    """
    drop_txt = torch.rand(batch, generator=generator) < p
    drop_y = torch.rand(batch, generator=generator) < p
    return drop_txt, drop_txt if mode == "joint" else drop_y


def apply_caption_dropout(
    text: TextEmbedding,
    empty: TextEmbedding,
    p: float,
    mode: str,
    generator: torch.Generator,
    masks: tuple[Tensor, Tensor] | None = None,
) -> TextEmbedding:
    """Replace captions by the empty caption's embedding with probability ``p``.

    ``masks`` (from :func:`caption_dropout_masks`) gives the dropped rows instead of drawing them.

    Shapes:
        text: (B, L, D) / (B, L) / (B, Dy); empty: batch 1 -> like ``text``.
    """
    drop_txt, drop_y = masks or caption_dropout_masks(text.batch_size, p, mode, generator)
    device = text.txt.device
    drop_txt, drop_y = drop_txt.to(device), drop_y.to(device)
    return TextEmbedding(
        torch.where(drop_txt[:, None, None], empty.txt.to(device, text.txt.dtype), text.txt),
        torch.where(drop_txt[:, None], empty.txt_mask.to(device), text.txt_mask),
        torch.where(drop_y[:, None], empty.y.to(device, text.y.dtype), text.y),
    )


def prepare_batch(
    batch: AudioBatch | LatentBatch,
    generator: torch.Generator,
    config: TrainConfig,
    device: torch.device,
    latent_shape: tuple[int, int, int],
    empty: TextEmbedding,
    vae: Any | None = None,
    conditioner: Any | None = None,
    tempo: bool = False,
) -> tuple[Tensor, TextEmbedding, Tensor | None]:
    """Latents, (caption-dropped) text embeddings and, with ``tempo``, the tempo rows of a micro-batch.

    Audio batches are turned into log-mels, encoded by the VAE and a latent is drawn from the posterior
    with ``generator``; the text comes from ``conditioner`` (cache hits after :func:`encode_captions`).
    A row loses its tempo (bpm 0) when its caption's token states are dropped (so always in the
    unconditional rows guidance uses), and with probability ``data.tempo_dropout`` besides, so the
    model also learns to play without one.

    Shapes:
        -> latents (B, C, T, F) fp32, TextEmbedding (B, L, D) / (B, L) / (B, Dy), tempo (B, 2) or None.
    """
    from fluxmusic.audio import clip_log_mel

    rows = len(batch.captions)
    if isinstance(batch, LatentBatch):
        latents = batch.latents.to(device)
        text = TextEmbedding(batch.txt, batch.txt_mask, batch.y).to(device, torch.float32)
    elif rows == 0:
        latents = torch.zeros(0, *latent_shape, device=device)
        text = TextEmbedding(empty.txt[:0].float(), empty.txt_mask[:0], empty.y[:0].float()).to(device)
    else:
        assert vae is not None and conditioner is not None
        mel = clip_log_mel(batch.waveforms.to(device), config.data.duration).unsqueeze(1)
        with torch.no_grad():
            latents = vae.encode(mel).sample(generator).float()
            text = conditioner.encode(batch.captions).to(device, torch.float32)
    data = config.data
    p, mode = data.caption_dropout, data.caption_dropout_mode
    masks = caption_dropout_masks(rows, p, mode, generator)
    text = apply_caption_dropout(text, empty, p, mode, generator, masks)
    if not tempo:
        return latents, text, None
    drop = masks[0] | (torch.rand(rows, generator=generator) < data.tempo_dropout)
    rows_tempo = batch.tempo.reshape(rows, 2).float()
    return latents, text, torch.where(drop[:, None], 0.0, rows_tempo).to(device)
