"""``fluxmusic preprocess``: encode audio to VAE posteriors and captions to text embeddings, in shards.

The output folder is the shard format of :mod:`fluxmusic.data.shards` (index, shards, skip logs).

The posterior's mean and log-variance are kept (not a sample), so training draws a fresh latent every
time. Text embeddings are stored in bf16 when that is lossless (T5/CLAP compute in bf16), else fp32.

Under ``torchrun`` rank ``r`` of ``W`` encodes the items whose manifest index is ``r`` modulo ``W`` (no
coordination needed). Shards are written atomically and name the items they hold, so an interrupted run
resumes where it stopped, even with a different number of ranks; finished and skipped items are not redone.

Corrupt items (missing, undecodable, truncated, NaN/Inf samples) are skipped and logged with their reason,
and so is an item whose encoding comes out non-finite: no shard ever holds a NaN or Inf. Options and the
output folder are checked before any work.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from fluxmusic.data.dataset import SkippedItem
from fluxmusic.data.items import item_info, read_item_clip, require_finite
from fluxmusic.data.manifest import ManifestItem, read_manifest
from fluxmusic.data.outputs import check_output_folder
from fluxmusic.data.shards import (
    done_items,
    lossless_dtype,
    read_index,
    save_tensors,
    shard_items,
    write_index,
)
from fluxmusic.errors import InputError, WriteError
from fluxmusic.files import describe_write_error
from fluxmusic.seeding import generator

# read_index, shard_items and write_index live in fluxmusic.data.shards; importable from here too
__all__ = ["CROP_MODES", "PreprocessReport", "preprocess", "read_index", "shard_items", "write_index"]

logger = logging.getLogger(__name__)

CROP_MODES = ("random", "start", "windows")


@dataclass
class PreprocessReport:
    """What one rank did: items encoded now, rows written, items skipped (with reasons), items done before."""

    encoded: int
    rows: int
    skipped: list[dict[str, Any]]
    already_done: int
    out_dir: Path


def _windows(item: ManifestItem, duration: float, mode: str, min_duration: float) -> list[float | None]:
    """Crop starts (seconds, relative to the item's region) for one item; ``None`` = random draw."""
    if mode != "windows":
        return [0.0] if mode == "start" else [None]
    region = _region_seconds(item)
    starts, start = [], 0.0
    while start == 0.0 or region - start >= min_duration:
        starts.append(start)
        start += duration
        if start >= region:
            break
    return starts


def preprocess(
    manifest: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    vae: Any,
    conditioner: Any,
    duration: float,
    *,
    crop: str = "random",
    seed: int = 0,
    batch_size: int = 8,
    shard_size: int = 256,
    min_duration: float = 1.0,
    max_tries: int = 3,
    rank: int = 0,
    world_size: int = 1,
    progress: Callable[[int], None] | None = None,
) -> PreprocessReport:
    """Encode this rank's share of a manifest into shards (skipping what earlier runs finished).

    Args:
        manifest: The manifest (``.json``/``.jsonl``/``.csv``).
        out_dir: Output folder (resumed if it exists).
        vae: An ``AudioVAE`` (frozen; on the device to encode on).
        conditioner: A ``TextConditioner``.
        duration: Clip length in seconds (the training length).
        crop: ``"random"`` (one seeded window per item), ``"start"`` (the region's start) or
            ``"windows"`` (every consecutive window; a tail shorter than ``min_duration`` is dropped).
        seed: Seed of the random crops (a crop depends on ``(seed, item)`` only).
        batch_size: Clips per VAE / text-encoder call.
        shard_size: Rows per shard (a shard is flushed at item boundaries).
        min_duration: Items whose region is shorter are skipped as ``too_short``.
        max_tries: Windows drawn before a silent item is skipped.
        rank: This process's rank.
        world_size: Number of ranks.
        progress: Called with the number of items finished.

    Returns:
        This rank's :class:`PreprocessReport` (call :func:`write_index` once every rank is done).
    """
    from fluxmusic.audio import AudioFileError, SilentAudioError, clip_log_mel, frames_for

    _check_options(crop, duration, batch_size, shard_size, min_duration, max_tries, rank, world_size)
    frames = frames_for(duration)
    if frames % (2 * vae.downsample):
        raise InputError(
            f"duration {duration} s gives {frames} mel frames; it must be a multiple of {2 * vae.downsample} "
            f"(e.g. {2 * vae.downsample * max(1, round(frames / (2 * vae.downsample))) / 100:g} s)"
        )
    out = check_output_folder(out_dir, "preprocess output folder", subfolders=("shards",))
    items = read_manifest(manifest)
    try:
        (out / "shards").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot make the preprocess output folder {out / 'shards'}: {err}") from None
    done, skipped_before = done_items(out)
    finished = done | {int(s["index"]) for s in skipped_before}
    mine = [item for item in items if item.index % world_size == rank and item.index not in finished]
    logger.info("preprocess rank %d: %d items (%d finished earlier)", rank, len(mine), len(finished))
    if rank == 0:
        empty = conditioner.encode([""]).to("cpu")
        save_tensors(
            {
                "txt": empty.txt.float().contiguous(),
                "txt_mask": empty.txt_mask,
                "y": empty.y.float().contiguous(),
            },
            out / "empty_text.safetensors",
            {"cache_key": conditioner.cache_key},
        )

    skip_log = out / f"skipped-r{rank}.jsonl"
    skipped: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any], Tensor, ManifestItem]] = []  # waiting for a full encode batch
    poisoned: set[int] = set()  # items with a non-finite encoding: skipped, none of their rows written
    encoded: list[tuple[dict[str, Any], Tensor, Tensor, Any]] = []  # rows ready for a shard
    rows_written, items_encoded = 0, 0

    def skip(item: ManifestItem, reason: str) -> None:
        record = SkippedItem(item.index, str(item.path), reason).to_dict()
        skipped.append(record)
        try:
            with skip_log.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError as err:
            raise WriteError(describe_write_error(skip_log, err)) from None
        logger.warning("skipping item %d: %s: %s", item.index + 1, item.path, reason)

    def encode_pending() -> None:
        if not pending:
            return
        waves = torch.stack([w for _, w, _ in pending])
        mel = clip_log_mel(waves.to(vae.device), duration).unsqueeze(1)
        with torch.inference_mode():
            posterior = vae.encode(mel)
            text = conditioner.encode([info["label"] for info, _, _ in pending]).to("cpu")
        for row, (info, _, item) in enumerate(pending):
            mean, logvar = posterior.mean[row].float().cpu(), posterior.logvar[row].float().cpu()
            bad = [
                name for name, t in (("mean", mean), ("logvar", logvar)) if not bool(torch.isfinite(t).all())
            ]
            bad += [name for name in ("txt", "y") if not bool(torch.isfinite(getattr(text, name)[row]).all())]
            if bad and item.index not in poisoned:
                poisoned.add(item.index)
                skip(
                    item, f"corrupt: the encoding of window {info['window']} is not finite ({', '.join(bad)})"
                )
            encoded.append((info, mean, logvar, text[row]))
        pending.clear()

    def flush_shard() -> None:
        nonlocal rows_written
        encoded[:] = [row for row in encoded if row[0]["index"] not in poisoned]  # whole items only
        if not encoded:
            return
        from fluxmusic.text.base import TextEmbedding

        infos = [info for info, *_ in encoded]
        text = TextEmbedding.cat([t for *_, t in encoded])
        txt, y = text.txt.contiguous(), text.y.contiguous()
        tensors = {
            "mean": torch.stack([m for _, m, _, _ in encoded]).contiguous(),
            "logvar": torch.stack([v for _, _, v, _ in encoded]).contiguous(),
            "txt": txt.to(lossless_dtype(txt)),
            "txt_mask": text.txt_mask.contiguous(),
            "y": y.to(lossless_dtype(y)),
        }
        first, last = min(i["index"] for i in infos), max(i["index"] for i in infos)
        name = f"shard-{first:08d}-{last:08d}-r{rank}.safetensors"
        save_tensors(tensors, out / "shards" / name, {"items": json.dumps(infos, ensure_ascii=False)})
        rows_written += len(infos)
        encoded.clear()

    for item in mine:
        try:
            starts = _windows(item, duration, crop, min_duration)
            region = _region_seconds(item)
            if region < min_duration:
                raise ValueError(f"too_short: {region:.3f} s < minimum {min_duration:g} s")
            require_finite(item, item_info(item))
            clips = []
            for k, start in enumerate(starts):
                gen = generator(seed, "preprocess", item.index, k)
                try:
                    clips.append((k, read_item_clip(item, duration, gen, max_tries, start_s=start)))
                except SilentAudioError:
                    if len(starts) == 1:
                        raise
                    logger.info("item %d: window %d is silent; left out", item.index + 1, k)
            if not clips:
                raise SilentAudioError(f"{item.path}: every {duration:g} s window is silent")
        except (AudioFileError, ValueError) as err:
            skip(item, str(err).splitlines()[0].removeprefix(f"{item.path}: "))
            if progress is not None:
                progress(1)
            continue
        for k, clip in clips:
            info = {"index": item.index, "wav": str(item.path), "label": item.caption,
                    "offset": round(clip.offset_s, 6), "window": k}  # fmt: skip
            if item.bpm is not None:
                info["tempo"] = [clip.tempo[0], round(clip.tempo[1], 6)]
            pending.append((info, clip.waveform, item))
            if len(pending) >= batch_size:
                encode_pending()
        items_encoded += 1
        if len(encoded) + len(pending) >= shard_size:
            encode_pending()
            flush_shard()
        if progress is not None:
            progress(1)
    encode_pending()
    flush_shard()
    return PreprocessReport(items_encoded - len(poisoned), rows_written, skipped, len(finished), out)


def _check_options(
    crop: str,
    duration: float,
    batch_size: int,
    shard_size: int,
    min_duration: float,
    max_tries: int,
    rank: int,
    world_size: int,
) -> None:
    """Refuse a bad option before any work, naming it (and the value)."""
    if crop not in CROP_MODES:
        raise InputError(f"unknown crop mode {crop!r}; use one of {', '.join(CROP_MODES)}")
    if not (math.isfinite(duration) and duration > 0):
        raise InputError(f"duration must be a number of seconds > 0, got {duration}")
    if not (math.isfinite(min_duration) and min_duration >= 0):
        raise InputError(f"min_duration must be a number of seconds >= 0, got {min_duration}")
    for name, value in (("batch_size", batch_size), ("shard_size", shard_size), ("max_tries", max_tries),
                        ("world_size", world_size)):  # fmt: skip
        if not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a whole number >= 1, got {value}")
    if not isinstance(rank, int) or not 0 <= rank < world_size:
        raise InputError(f"rank must be in [0, world_size={world_size}), got {rank}")


def _region_seconds(item: ManifestItem) -> float:
    info = item_info(item)
    region = info.duration_s - (item.offset or 0.0)
    return region if item.duration is None else min(region, item.duration)
