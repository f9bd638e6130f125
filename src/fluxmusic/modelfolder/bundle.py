"""``bundle_model_dir``: freeze a model folder for shipping (weights cast, adapters kept, hashes recorded)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from fluxmusic.checkpoints import load_musicflux, save_musicflux
from fluxmusic.files import sha256_file
from fluxmusic.modelfolder.index import adapter_names, read_model_index, weight_files, write_model_index
from fluxmusic.modelfolder.registry import component_folders
from fluxmusic.sampling import check_defaults

__all__ = ["bundle_model_dir"]


def bundle_model_dir(
    src: str | Path,
    dst: str | Path,
    *,
    dtype: torch.dtype = torch.bfloat16,
    defaults: dict[str, Any] | None = None,
    name: str | None = None,
    adapter: str | Path | None = None,
) -> Path:
    """Freeze a model folder for shipping: transformer weights cast to ``dtype``, hashes recorded.

    The copy holds the same components as ``src`` with the transformer's floating-point weights stored in
    ``dtype`` (the VAE and vocoder are copied unchanged), ``defaults`` and ``name`` updated, and a
    ``sha256`` table over every weight file that ``load_model_dir`` checks before loading. ``adapter``
    (a LoRA folder, e.g. a LoRA run's ``export``) is stored beside the transformer, also in ``dtype``,
    and folded into it whenever the folder loads: a fine-tune shipped as a file of a few hundred kB.

    Raises:
        FileExistsError: ``dst`` exists and is not empty.
        FileNotFoundError: ``adapter`` is not an adapter folder.
        ValueError: ``adapter`` does not fit the transformer, or ``defaults`` holds an unknown key or value.
    """
    from fluxmusic.model.lora import load_lora, remove_lora, ship_adapter

    src, dst = Path(src), Path(dst)
    index = read_model_index(src)
    if dst.exists() and any(dst.iterdir()):
        raise FileExistsError(f"{dst} exists and is not empty; choose a new folder or remove it first")
    defaults = check_defaults(defaults or {}, "pipeline defaults")
    transformer = load_musicflux(src / index["transformer"], device=torch.device("cpu"))
    adapters = adapter_names(src, index)
    if adapter is not None:
        remove_lora(load_lora(transformer, adapter))  # ValueError now, not at load, if it does not fit
    transformer.to(dtype)
    save_musicflux(transformer, dst / "transformer")
    for folder in adapters:
        shutil.copytree(src / folder, dst / folder)
    if adapter is not None:
        adapters.append(f"adapter{len(adapters)}" if adapters else "adapter")
        ship_adapter(adapter, dst / adapters[-1], dtype)
    shutil.copytree(src / index["vae"], dst / "vae")
    vocoder = index["vocoder"]
    for folder in component_folders("vocoder", vocoder, src):
        shutil.copytree(src / folder, dst / "vocoder")
        vocoder = {"type": "hifigan", "path": "vocoder"}
    for folder in component_folders("text_encoder", index["text_encoder"], src):
        shutil.copytree(src / folder, dst / folder)
    out = {**index, "transformer": "transformer", "vae": "vae", "vocoder": vocoder}
    for key in ("format", "version"):  # written again, current, by write_model_index
        out.pop(key, None)
    if adapters:
        out["adapters"] = adapters
    out["defaults"] = {**index.get("defaults", {}), **defaults}
    if name is not None:
        out["name"] = name
    out["sha256"] = {f: sha256_file(dst / f) for f in weight_files(dst)}
    write_model_index(dst, out)
    return dst
