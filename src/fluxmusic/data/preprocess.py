"""``fluxmusic preprocess``: encode audio to VAE posteriors and captions to text embeddings, in shards.

Output folder::

    index.json                 format, clip duration, latent shape, VAE and text-encoder identity, shards
    empty_text.safetensors     the empty caption's embedding (caption dropout)
    shards/shard-<first>-<last>.safetensors
                               mean, logvar (n, C, T, F) fp32; txt (n, L, D), txt_mask (n, L), y (n, Dy);
                               metadata "items": [{"index", "wav", "label", "offset", "window",
                                                   "tempo" (bpm, beat phase; items with a bpm)}, ...]
    skipped-r<rank>.jsonl      items that could not be used, with their paths and reasons

The posterior's mean and log-variance are kept (not a sample), so training draws a fresh latent every
time. Text embeddings are stored in bf16 when that is lossless (T5/CLAP compute in bf16), else fp32.

Under ``torchrun`` rank ``r`` of ``W`` encodes the items whose manifest index is ``r`` modulo ``W`` (no
coordination needed). Shards are written atomically and name the items they hold, so an interrupted run
resumes where it stopped, even with a different number of ranks; finished and skipped items are not redone.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from fluxmusic.data.manifest import ManifestItem, read_manifest
from fluxmusic.data.seeding import generator

__all__ = ["CROP_MODES", "PreprocessReport", "preprocess", "read_index", "write_index"]

logger = logging.getLogger(__name__)

INDEX_NAME = "index.json"
FORMAT = "fluxmusic-latents"
CROP_MODES = ("random", "start", "windows")


@dataclass
class PreprocessReport:
    """What one rank did: items encoded now, rows written, items skipped (with reasons), items done before."""

    encoded: int
    rows: int
    skipped: list[dict[str, Any]]
    already_done: int
    out_dir: Path


def _lossless_dtype(x: Tensor) -> torch.dtype:
    return torch.bfloat16 if torch.equal(x.to(torch.bfloat16).to(x.dtype), x) else torch.float32


def _atomic_save(tensors: dict[str, Tensor], path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    from fluxmusic.checkpoints import atomic_write

    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def _done_items(out_dir: Path) -> tuple[set[int], list[dict[str, Any]]]:
    """Manifest indices already in a shard, and the skipped records of earlier runs."""
    from safetensors import safe_open

    done: set[int] = set()
    for shard in sorted((out_dir / "shards").glob("shard-*.safetensors")):
        with safe_open(str(shard), framework="pt") as handle:
            done.update(int(info["index"]) for info in json.loads(handle.metadata()["items"]))
    skipped = []
    for path in sorted(out_dir.glob("skipped-r*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    skipped.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut short by a crash: the item is simply redone
                    continue
    return done, skipped


def _windows(item: ManifestItem, duration: float, mode: str, min_duration: float) -> list[float | None]:
    """Crop starts (seconds, relative to the item's region) for one item; ``None`` = random draw."""
    if mode != "windows":
        return [0.0] if mode == "start" else [None]
    from fluxmusic.audio import audio_info

    info = audio_info(item.path)
    region = info.duration_s - (item.offset or 0.0)
    if item.duration is not None:
        region = min(region, item.duration)
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
    from fluxmusic.data.dataset import read_item_clip

    if crop not in CROP_MODES:
        raise ValueError(f"unknown crop mode {crop!r}; use one of {', '.join(CROP_MODES)}")
    frames = frames_for(duration)
    if frames % (2 * vae.downsample):
        raise ValueError(
            f"duration {duration} s gives {frames} mel frames; it must be a multiple of {2 * vae.downsample} "
            f"(e.g. {2 * vae.downsample * max(1, round(frames / (2 * vae.downsample))) / 100:g} s)"
        )
    out = Path(out_dir)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    items = read_manifest(manifest)
    done, skipped_before = _done_items(out)
    finished = done | {int(s["index"]) for s in skipped_before}
    mine = [item for item in items if item.index % world_size == rank and item.index not in finished]
    logger.info("preprocess rank %d: %d items (%d finished earlier)", rank, len(mine), len(finished))
    if rank == 0:
        empty = conditioner.encode([""]).to("cpu")
        _atomic_save(
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
    pending: list[tuple[dict[str, Any], Tensor]] = []  # (info, waveform), waiting for a full encode batch
    encoded: list[tuple[dict[str, Any], Tensor, Tensor, Any]] = []  # rows ready for a shard
    rows_written, items_encoded = 0, 0

    def skip(item: ManifestItem, reason: str) -> None:
        record = {"item": item.index + 1, "index": item.index, "path": str(item.path), "reason": reason}
        skipped.append(record)
        with skip_log.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        logger.warning("skipping item %d: %s: %s", item.index + 1, item.path, reason)

    def encode_pending() -> None:
        if not pending:
            return
        waves = torch.stack([w for _, w in pending])
        mel = clip_log_mel(waves.to(vae.device), duration).unsqueeze(1)
        with torch.inference_mode():
            posterior = vae.encode(mel)
            text = conditioner.encode([info["label"] for info, _ in pending]).to("cpu")
        for row, (info, _) in enumerate(pending):
            encoded.append(
                (info, posterior.mean[row].float().cpu(), posterior.logvar[row].float().cpu(), text[row])
            )
        pending.clear()

    def flush_shard() -> None:
        nonlocal rows_written
        if not encoded:
            return
        from fluxmusic.text.base import TextEmbedding

        infos = [info for info, *_ in encoded]
        text = TextEmbedding.cat([t for *_, t in encoded])
        txt, y = text.txt.contiguous(), text.y.contiguous()
        tensors = {
            "mean": torch.stack([m for _, m, _, _ in encoded]).contiguous(),
            "logvar": torch.stack([v for _, _, v, _ in encoded]).contiguous(),
            "txt": txt.to(_lossless_dtype(txt)),
            "txt_mask": text.txt_mask.contiguous(),
            "y": y.to(_lossless_dtype(y)),
        }
        first, last = min(i["index"] for i in infos), max(i["index"] for i in infos)
        name = f"shard-{first:08d}-{last:08d}-r{rank}.safetensors"
        _atomic_save(tensors, out / "shards" / name, {"items": json.dumps(infos, ensure_ascii=False)})
        rows_written += len(infos)
        encoded.clear()

    for item in mine:
        try:
            starts = _windows(item, duration, crop, min_duration)
            region = _region_seconds(item)
            if region < min_duration:
                raise ValueError(f"too_short: {region:.3f} s < minimum {min_duration:g} s")
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
            pending.append((info, clip.waveform))
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
    return PreprocessReport(items_encoded, rows_written, skipped, len(finished), out)


def _region_seconds(item: ManifestItem) -> float:
    from fluxmusic.audio import audio_info

    info = audio_info(item.path)
    region = info.duration_s - (item.offset or 0.0)
    return region if item.duration is None else min(region, item.duration)


def write_index(
    out_dir: str | os.PathLike[str],
    vae: Any,
    conditioner: Any,
    duration: float,
    manifest: str | os.PathLike[str],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Scan the shards and skip logs and write ``index.json`` (call once, after every rank finished)."""
    from safetensors import safe_open

    from fluxmusic.checkpoints import atomic_write

    out = Path(out_dir)
    shards, shape, txt_shape = [], None, None
    for path in sorted((out / "shards").glob("shard-*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            count = len(json.loads(handle.metadata()["items"]))
            shape = handle.get_slice("mean").get_shape()[1:]
            txt_shape = handle.get_slice("txt").get_shape()[1:]
        shards.append({"file": f"shards/{path.name}", "count": count})
    _, skipped = _done_items(out)
    index = {
        "format": FORMAT,
        "version": 1,
        "manifest": str(manifest),
        "duration": duration,
        "num_rows": sum(s["count"] for s in shards),
        "latent_shape": shape,
        "vae": {
            "config": {k: v for k, v in vae.config.items() if not str(k).startswith("_")},
            "downsample": vae.downsample,
            "scaling_factor": vae.scaling_factor,
        },  # fmt: skip
        "text": {
            "cache_key": conditioner.cache_key,
            "mode": conditioner.mode,
            "txt_dim": conditioner.txt_dim,
            "pooled_dim": conditioner.pooled_dim,
            "txt_length": txt_shape[0] if txt_shape else None,
        },  # fmt: skip
        "shards": shards,
        "skipped": sorted(skipped, key=lambda s: s["index"]),
        **(extra or {}),
    }
    text = json.dumps(index, ensure_ascii=False, indent=1, default=str) + "\n"
    atomic_write(out / INDEX_NAME, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return index


def read_index(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``index.json`` of a preprocess folder.

    Raises:
        FileNotFoundError: no index (preprocessing never finished there).
        ValueError: not a fluxmusic latent folder.
    """
    path = Path(root) / INDEX_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run `fluxmusic preprocess MANIFEST {root}` (to the end) to make the shards"
        )
    index = json.loads(path.read_text(encoding="utf-8"))
    if index.get("format") != FORMAT:
        raise ValueError(f"{path} is not a fluxmusic latent index (format {index.get('format')!r})")
    if not index["shards"]:
        raise ValueError(f"{path} lists no shards: every item was skipped (see its 'skipped' list)")
    return index


def shard_items(root: str | os.PathLike[str]) -> Sequence[dict[str, Any]]:
    """Every row's item info (index, wav, label, offset, window), in dataset order."""
    from safetensors import safe_open

    rows: list[dict[str, Any]] = []
    for shard in read_index(root)["shards"]:
        with safe_open(str(Path(root) / shard["file"]), framework="pt") as handle:
            rows.extend(json.loads(handle.metadata()["items"]))
    return rows
