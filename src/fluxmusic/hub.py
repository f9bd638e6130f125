"""Finding weight files: local folders or the Hugging Face hub, with one offline rule and one error.

Every component (transformer checkpoint, VAE, vocoder, T5, CLAP, MiniLM) is located through
:func:`resolve_folder` or :func:`resolve_file`. Offline means ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``
(read at call time) or huggingface_hub's own ``constants.HF_HUB_OFFLINE``; offline, only the hub cache is
used. Nothing ever falls back to random weights: a missing file raises :class:`WeightsNotFoundError`
whose one-line message names the file and how to supply it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor

from fluxmusic.errors import MissingFilesError

__all__ = [
    "WEIGHT_FILES",
    "WeightsNotFoundError",
    "folder_fingerprint",
    "is_offline",
    "read_state_dict",
    "resolve_file",
    "resolve_folder",
]

logger = logging.getLogger(__name__)

# Accepted weight layouts of transformers models, in order of preference.
WEIGHT_FILES = ("model.safetensors.index.json", "model.safetensors", "pytorch_model.bin")
# Files of other frameworks that a download skips.
_OTHER_FRAMEWORKS = ["*.msgpack", "*.h5", "*.onnx", "*.ot", "*.tflite", "*.mlmodel", "*.gguf"]
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TRUE = {"1", "true", "yes", "on"}


class WeightsNotFoundError(MissingFilesError):
    """Weight or config files are missing; the one-line message says which and how to supply them."""


def is_offline(local_files_only: bool | None = None) -> bool:
    """The one offline rule: an explicit ``local_files_only``, else the environment and huggingface_hub."""
    if local_files_only:
        return True
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    if any(flag.strip().lower() in _TRUE for flag in flags):
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _how_to(repo: str, include: str | None) -> str:
    pattern = f" --include '{include}'" if include else ""
    return (
        f"download them on a machine with network (`hf download {repo}{pattern}`, then set HF_HUB_OFFLINE=1 "
        "to use the cache) or pass a local folder holding them"
    )


def _is_repo_id(name: str) -> bool:
    return bool(_REPO_ID.match(name)) and not os.path.isabs(name) and not name.startswith((".", "~"))


def _missing(folder: Path, required: Iterable[str | tuple[str, ...]], need_weights: bool) -> list[str]:
    missing = []
    for entry in required:
        names = (entry,) if isinstance(entry, str) else entry
        if not any((folder / name).is_file() for name in names):
            missing.append(" or ".join(names))
    if need_weights:
        missing += _missing_weights(folder)
    return missing


def resolve_folder(
    name_or_dir: str | os.PathLike[str],
    subfolder: str | None = None,
    required: Iterable[str | tuple[str, ...]] = ("config.json",),
    *,
    component: str | None = None,
    need_weights: bool = False,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """Return the local folder holding a component's files, downloading into the hub cache when allowed.

    A local folder is used as ``name_or_dir/subfolder`` when that exists, else as ``name_or_dir`` itself
    (so both a pipeline folder and the component's own folder work). Anything else must be a hub id.

    Args:
        name_or_dir: A local folder or a Hugging Face repo id.
        subfolder: Subfolder inside the folder or repo (e.g. ``"vae"``, ``"text_encoder_3"``).
        required: File names that must exist in the folder; a tuple means "one of these".
        component: Name used in messages (default: the name and subfolder).
        need_weights: Also require one of ``WEIGHT_FILES`` (and every shard an index names).
        revision: Repo revision (branch, tag or commit).
        cache_dir: Hub cache directory (default: the hub's).
        local_files_only: Only use the cache (also implied offline, see :func:`is_offline`).

    Raises:
        WeightsNotFoundError: a file is missing, the folder does not exist, or the repo is not cached
            and cannot be downloaded.
    """
    required = list(required)
    local = Path(name_or_dir).expanduser()
    label = component or (str(name_or_dir) + (f" (subfolder {subfolder})" if subfolder else ""))
    if local.is_dir():
        folder = local / subfolder if subfolder and (local / subfolder).is_dir() else local
        how = "put them in the folder or pass the folder that holds them"
    else:
        repo = str(name_or_dir)
        if not _is_repo_id(repo):
            raise WeightsNotFoundError(
                f"{label}: no such local folder ({local} does not exist), and not a Hugging Face repo id "
                "like 'cvssp/audioldm2'"
            )
        folder = _download(
            repo, subfolder, required, need_weights, label, revision, cache_dir, local_files_only
        )
        how = _how_to(repo, f"{subfolder}/*" if subfolder else None)
    missing = _missing(folder, required, need_weights)
    if missing:
        raise WeightsNotFoundError(f"{label}: {folder} is missing {', '.join(missing)}; {how}")
    logger.info("%s: using %s", label, folder)
    return folder


def _download(
    repo: str,
    subfolder: str | None,
    required: list[str | tuple[str, ...]],
    need_weights: bool,
    label: str,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    local_files_only: bool | None,
) -> Path:
    from huggingface_hub import snapshot_download

    prefix = f"{subfolder}/" if subfolder else ""
    exact = not need_weights and all(isinstance(entry, str) for entry in required)
    allow = [prefix + str(name) for name in required] if exact else ([prefix + "*"] if prefix else None)
    offline = is_offline(local_files_only)
    first = required[0] if required else WEIGHT_FILES[1]
    where = f"{repo}/{prefix}{first if isinstance(first, str) else first[0]}"
    try:
        snapshot = snapshot_download(
            repo,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=offline,
            allow_patterns=allow,
            ignore_patterns=_OTHER_FRAMEWORKS,
        )
    except Exception as err:  # hub errors are many (offline, 404, auth, network); report them as one
        mode = (
            "offline and not in the Hugging Face cache"
            if offline
            else f"could not download ({type(err).__name__})"
        )
        raise WeightsNotFoundError(
            f"{label}: cannot get {where}: {mode}; {_how_to(repo, prefix + '*' if prefix else None)}"
        ) from err
    return Path(snapshot) / subfolder if subfolder else Path(snapshot)


def resolve_file(repo: str, filename: str, *, component: str, revision: str | None = None) -> Path:
    """One file of a hub repo (e.g. a released checkpoint), from the cache when offline.

    Raises:
        WeightsNotFoundError: not cached (offline) or not obtainable.
    """
    from huggingface_hub import hf_hub_download

    offline = is_offline()
    try:
        return Path(hf_hub_download(repo, filename, revision=revision, local_files_only=offline))
    except Exception as err:  # offline, missing, auth or network: one message either way
        mode = (
            "offline and not in the Hugging Face cache"
            if offline
            else f"could not download ({type(err).__name__})"
        )
        raise WeightsNotFoundError(
            f"{component}: cannot get {repo}/{filename}: {mode}; download it with `hf download {repo} "
            f"{filename}` (then HF_HUB_OFFLINE=1 uses the cache) or pass a model folder"
        ) from None


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
