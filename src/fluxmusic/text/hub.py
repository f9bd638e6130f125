"""Finding, fingerprinting and reading encoder weight files: local folders or the Hugging Face cache.

Nothing here ever falls back to random weights: a folder that lacks a file raises
``WeightsNotFoundError`` naming the files, the repository and how to supply them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor

__all__ = ["WEIGHT_FILES", "WeightsNotFoundError", "folder_fingerprint", "read_state_dict", "resolve_folder"]

logger = logging.getLogger(__name__)

# Accepted weight layouts, in order of preference.
WEIGHT_FILES = ("model.safetensors.index.json", "model.safetensors", "pytorch_model.bin")
# Files of other frameworks that a download skips.
_OTHER_FRAMEWORKS = ["*.msgpack", "*.h5", "*.onnx", "*.ot", "*.tflite", "*.mlmodel", "*.gguf"]


class WeightsNotFoundError(FileNotFoundError):
    """Encoder files are missing; the message (one line) says which and how to supply them."""


def _offline(local_files_only: bool | None) -> bool:
    if local_files_only is not None:
        return local_files_only
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return constants.HF_HUB_OFFLINE or flag.upper() in {"1", "ON", "YES", "TRUE"}


def _how_to(repo: str, subfolder: str | None) -> str:
    include = f" --include '{subfolder}/*'" if subfolder else ""
    return (
        f"download them on a machine with network (`hf download {repo}{include}`, then set HF_HUB_OFFLINE=1 "
        f"to use the cache) or pass a local folder holding them"
    )


def resolve_folder(
    name_or_dir: str | os.PathLike[str],
    subfolder: str | None = None,
    required: Iterable[str | tuple[str, ...]] = ("config.json",),
    *,
    need_weights: bool = False,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """Return the local folder holding a model's files, downloading into the HF cache when allowed.

    Args:
        name_or_dir: A local folder or a Hugging Face repo id.
        subfolder: Subfolder inside the folder or repo (e.g. ``"text_encoder_3"``).
        required: File names that must exist in the folder; a tuple means "one of these".
        need_weights: Also require one of ``WEIGHT_FILES`` (and every shard an index names).
        revision: Repo revision (branch, tag or commit).
        cache_dir: HF cache directory (default: the hub's).
        local_files_only: Only use the cache; ``None`` follows ``HF_HUB_OFFLINE``.

    Raises:
        WeightsNotFoundError: a file is missing, the folder does not exist, or the repo is not cached
            and cannot be downloaded.
    """
    local = Path(name_or_dir).expanduser()
    label = str(name_or_dir) + (f" (subfolder {subfolder})" if subfolder else "")
    if local.is_dir():
        folder = local / subfolder if subfolder else local
        how = "put them in the folder or pass another folder"
    else:
        repo = str(name_or_dir)
        if local.is_absolute() or repo.startswith(".") or repo.count("/") > 1:
            raise WeightsNotFoundError(f"{label}: no such local folder, and not a Hugging Face repo id")
        how = _how_to(repo, subfolder)
        from huggingface_hub import snapshot_download

        offline = _offline(local_files_only)
        try:
            snapshot = snapshot_download(
                repo,
                revision=revision,
                cache_dir=cache_dir,
                local_files_only=offline,
                allow_patterns=[f"{subfolder}/*"] if subfolder else None,
                ignore_patterns=_OTHER_FRAMEWORKS,
            )
        except Exception as err:
            mode = "offline, not in the Hugging Face cache" if offline else f"could not download ({err})"
            raise WeightsNotFoundError(f"{label}: {mode}; {how}") from err
        folder = Path(snapshot) / subfolder if subfolder else Path(snapshot)
    missing = []
    for entry in required:
        names = (entry,) if isinstance(entry, str) else entry
        if not any((folder / name).is_file() for name in names):
            missing.append(" or ".join(names))
    if need_weights:
        missing += _missing_weights(folder)
    if missing:
        raise WeightsNotFoundError(f"{label}: missing {', '.join(missing)} in {folder}; {how}")
    return folder


def _missing_weights(folder: Path) -> list[str]:
    index = folder / WEIGHT_FILES[0]
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [name for name in shards if not (folder / name).is_file()]
    if any((folder / name).is_file() for name in WEIGHT_FILES[1:]):
        return []
    return [" or ".join(WEIGHT_FILES)]


def _weight_paths(folder: Path) -> list[Path]:
    index = folder / WEIGHT_FILES[0]
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / name for name in shards]
    for name in WEIGHT_FILES[1:]:
        if (folder / name).is_file():
            return [folder / name]
    raise WeightsNotFoundError(f"{folder}: missing {' or '.join(WEIGHT_FILES)}")


def folder_fingerprint(folder: Path, extra: Iterable[str] = ("config.json",)) -> str:
    """Short hash of a model folder: its weight files' names, sizes and modification times plus the
    contents of ``extra`` files. Changes whenever the weights are replaced; costs no weight reads."""
    digest = hashlib.sha256()
    for path in _weight_paths(folder):
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    for name in extra:
        if (folder / name).is_file():
            digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:16]


def read_state_dict(folder: Path, prefixes: tuple[str, ...] = ("",)) -> dict[str, Tensor]:
    """Read the tensors whose names start with one of ``prefixes`` from a model folder's weights.

    safetensors files (single or sharded) are read lazily, key by key; a ``pytorch_model.bin`` is read
    with ``torch.load(weights_only=True)`` (no arbitrary unpickling).

    Shapes:
        Tensors keep their stored shapes and dtypes.
    """
    state: dict[str, Tensor] = {}
    for path in _weight_paths(folder):
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():
                    if key.startswith(prefixes):
                        state[key] = handle.get_tensor(key)
        else:
            logger.info("reading %s with torch.load(weights_only=True)", path)
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            state.update({k: v for k, v in loaded.items() if k.startswith(prefixes)})
    return state
