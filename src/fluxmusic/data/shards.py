"""The preprocessed-shard format (what ``fluxmusic preprocess`` writes and training reads).

A preprocess folder holds::

    index.json                 format, clip duration, latent shape, VAE and text-encoder identity, shards
    empty_text.safetensors     the empty caption's embedding (caption dropout)
    shards/shard-<first>-<last>-r<rank>.safetensors
                               mean, logvar (n, C, T, F) fp32; txt (n, L, D), txt_mask (n, L), y (n, Dy);
                               metadata "items": [{"index", "wav", "label", "offset", "window",
                                                   "tempo" (bpm, beat phase; items with a bpm)}, ...]
    skipped-r<rank>.jsonl      items that could not be used, with their paths and reasons

Writing shards is :mod:`fluxmusic.data.preprocess`; reading rows is
:class:`fluxmusic.data.dataset.LatentShardDataset`. This module is the format both share.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from fluxmusic.errors import InputError, MissingFilesError

__all__ = [
    "FORMAT",
    "INDEX_NAME",
    "done_items",
    "lossless_dtype",
    "read_index",
    "save_tensors",
    "shard_files",
    "shard_items",
    "shard_metadata",
    "write_index",
]

INDEX_NAME = "index.json"
FORMAT = "fluxmusic-latents"


def lossless_dtype(x: Tensor) -> torch.dtype:
    """bf16 when ``x`` survives the round trip through it unchanged, else fp32."""
    return torch.bfloat16 if torch.equal(x.to(torch.bfloat16).to(x.dtype), x) else torch.float32


def save_tensors(tensors: dict[str, Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Write a safetensors file atomically (a crash never leaves half a shard)."""
    from safetensors.torch import save_file

    from fluxmusic.files import atomic_write

    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def shard_metadata(handle: Any) -> list[dict[str, Any]]:
    """The item infos stored in an open shard's metadata (one per row)."""
    return json.loads((handle.metadata() or {}).get("items", "[]"))


def shard_files(out_dir: str | os.PathLike[str]) -> list[Path]:
    """The shard files of a preprocess folder, in name order."""
    return sorted((Path(out_dir) / "shards").glob("shard-*.safetensors"))


def done_items(out_dir: str | os.PathLike[str]) -> tuple[set[int], list[dict[str, Any]]]:
    """Manifest indices already in a shard, and the skipped records of earlier runs."""
    from safetensors import safe_open

    done: set[int] = set()
    for shard in shard_files(out_dir):
        with safe_open(str(shard), framework="pt") as handle:
            done.update(int(info["index"]) for info in shard_metadata(handle))
    skipped = []
    for path in sorted(Path(out_dir).glob("skipped-r*.jsonl")):
        for line in path.read_text(encoding="utf-8-sig", errors="replace").splitlines():
            if line.strip():
                try:
                    skipped.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut short by a crash: the item is simply redone
                    continue
                if not isinstance(skipped[-1], dict) or "index" not in skipped[-1]:
                    skipped.pop()  # not a skip record: the item is redone
    return done, skipped


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

    from fluxmusic.files import atomic_write_text

    out = Path(out_dir)
    shards, shape, txt_shape = [], None, None
    for path in shard_files(out):
        with safe_open(str(path), framework="pt") as handle:
            count = len(shard_metadata(handle))
            shape = handle.get_slice("mean").get_shape()[1:]
            txt_shape = handle.get_slice("txt").get_shape()[1:]
        shards.append({"file": f"shards/{path.name}", "count": count})
    _, skipped = done_items(out)
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
    atomic_write_text(out / INDEX_NAME, json.dumps(index, ensure_ascii=False, indent=1, default=str) + "\n")
    return index


def read_index(root: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``index.json`` of a preprocess folder.

    Raises:
        fluxmusic.errors.MissingFilesError: no index (preprocessing never finished there).
        fluxmusic.errors.InputError: not a fluxmusic latent folder, or no shards.
    """
    path = Path(root) / INDEX_NAME
    if not path.is_file():
        raise MissingFilesError(
            f"{path} not found: run `fluxmusic preprocess MANIFEST {root}` (to the end) to make the shards"
        )
    try:
        index = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(
            f"cannot read {path}: {err}; run `fluxmusic preprocess` again to rewrite it"
        ) from None
    except (ValueError, RecursionError) as err:
        raise InputError(
            f"{path}: invalid JSON ({str(err).splitlines()[0]}); "
            "run `fluxmusic preprocess` again to rewrite it"
        ) from None
    found = index.get("format") if isinstance(index, dict) else type(index).__name__
    if found != FORMAT:
        raise InputError(f"{path} is not a fluxmusic latent index (format {found!r})")
    shards = index.get("shards")
    if not isinstance(shards, list) or not shards:
        raise InputError(f"{path} lists no shards: every item was skipped (see its 'skipped' list)")
    return index


def shard_items(root: str | os.PathLike[str]) -> Sequence[dict[str, Any]]:
    """Every row's item info (index, wav, label, offset, window), in dataset order."""
    from safetensors import safe_open

    rows: list[dict[str, Any]] = []
    for shard in read_index(root)["shards"]:
        with safe_open(str(Path(root) / shard["file"]), framework="pt") as handle:
            rows.extend(shard_metadata(handle))
    return rows
