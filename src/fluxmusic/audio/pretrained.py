"""Locating the files of a pretrained audio component (VAE, vocoder) on disk or on the Hugging Face hub.

Only safetensors weights are accepted (never pickled ``.bin`` files). A local folder is used as is; any
other ``owner/name`` is fetched through ``huggingface_hub`` (which honours ``HF_HUB_OFFLINE`` and its
cache). Every failure raises :class:`PretrainedNotFoundError` with a one-line message naming the missing
files; nothing falls back to random weights.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

logger = logging.getLogger(__name__)

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class PretrainedNotFoundError(FileNotFoundError):
    """The files of a pretrained component could not be found locally or fetched."""


def _missing(folder: Path, files: tuple[str, ...]) -> list[str]:
    return [name for name in files if not (folder / name).is_file()]


def resolve_component_dir(
    name_or_dir: str | os.PathLike[str],
    subfolder: str | None,
    files: tuple[str, ...],
    *,
    component: str,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
) -> Path:
    """Return a local folder that holds ``files`` of one component.

    For a local folder, ``name_or_dir/subfolder`` is used when it exists, else ``name_or_dir`` itself (so
    both a pipeline folder and the component folder work). Otherwise ``name_or_dir`` must be a hub id
    and each file is fetched as ``subfolder/file``.

    Args:
        name_or_dir: Local folder or hub repository id (e.g. ``cvssp/audioldm2``).
        subfolder: Component subfolder (``vae``, ``vocoder``) or ``None``.
        files: File names the folder must hold (config and safetensors weights).
        component: Name used in error messages.
        revision: Hub revision.
        cache_dir: Hub cache folder.
        local_files_only: Only look in the hub cache (also implied by ``HF_HUB_OFFLINE=1``, read at call
            time).

    Returns:
        The folder holding all ``files``.

    Raises:
        PretrainedNotFoundError: Files missing locally, or not obtainable from the hub.
    """
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        folder = path / subfolder if subfolder and (path / subfolder).is_dir() else path
        missing = _missing(folder, files)
        if missing:
            raise PretrainedNotFoundError(
                f"{component}: {folder} is missing {', '.join(missing)}; "
                f"write the folder with {component}.save_pretrained() or pass the folder that holds them"
            )
        return folder
    name = str(name_or_dir)
    if not _REPO_ID.match(name) or os.path.isabs(name) or name.startswith((".", "~")):
        raise PretrainedNotFoundError(
            f"{component}: folder {path} does not exist; pass an existing folder or a hub id like "
            "'cvssp/audioldm2'"
        )
    return _download(name, subfolder, files, component, revision, cache_dir, local_files_only)


def _download(
    repo_id: str,
    subfolder: str | None,
    files: tuple[str, ...],
    component: str,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    local_files_only: bool,
) -> Path:
    from huggingface_hub import constants, hf_hub_download

    env_offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    offline = local_files_only or env_offline or bool(constants.HF_HUB_OFFLINE)
    where = f"{repo_id}/{subfolder}" if subfolder else repo_id
    folder: Path | None = None
    for name in files:
        try:
            local = hf_hub_download(
                repo_id,
                name,
                subfolder=subfolder,
                revision=revision,
                cache_dir=cache_dir,
                local_files_only=offline,
            )
        except Exception as err:  # hub errors are many (offline, 404, auth, network); report them as one
            hint = (
                "offline and not in the hub cache: download once with network access or pass a local folder"
                if offline
                else f"could not fetch it ({type(err).__name__}); check the id and network or pass a folder"
            )
            raise PretrainedNotFoundError(f"{component}: cannot get {where}/{name}; {hint}") from err
        folder = Path(local).parent
    if folder is None:
        raise ValueError("files must name at least one file")
    logger.info("%s: using %s", component, folder)
    return folder
