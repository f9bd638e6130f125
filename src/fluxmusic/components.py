"""Where a pipeline's components come from: released FluxMusic names, our model folders, the bundled model.

A *model folder* (what our trainer and ``FluxMusicPipeline.save_pretrained`` write) holds
``fluxmusic.json`` naming its components::

    {"format": "fluxmusic-pipeline", "version": 1,
     "transformer": "transformer",                       # subfolder: config.json + model.safetensors
     "vae": "vae",                                       # AudioVAE folder
     "vocoder": {"type": "hifigan", "path": "vocoder"},  # or {"type": "griffin-lim", "n_iter": 32}
     "text_encoder": {"type": "minilm", "max_length": 64},
                     # or {"type": "t5-clap", "t5": REPO_OR_DIR, "clap": REPO_OR_DIR, "mode": "training"}
     "sample_rate": 16000, "default_duration": 10.24, "max_duration": 40.96,
     "defaults": {"steps": 50, "guidance": 7.0, "negative_prompt": "", "sampler": "euler"},
     "adapters": ["adapter"],   # optional: LoRA folders (peft format) folded into the transformer on load
     "sha256": {"transformer/model.safetensors": "..."}}  # optional; required for the bundled model

Released names (``small``, ``base``, ``large``, ``giant``, ``giant-full``) resolve through the Hugging
Face cache to the FluxMusic checkpoint, the AudioLDM2 VAE and vocoder, SD3's T5-XXL and CLAP.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fluxmusic.audio import AudioVAE, GriffinLimVocoder, HifiGanVocoder, Vocoder
from fluxmusic.checkpoints import CheckpointError, load_musicflux
from fluxmusic.flow.guidance import check_eta, check_interval
from fluxmusic.model import MusicFlux
from fluxmusic.text.base import TextConditioner
from fluxmusic.text.minilm import sha256_file

MODEL_INDEX = "fluxmusic.json"
FLUXMUSIC_REPO = "feizhengcong/FluxMusic"
AUDIOLDM2_REPO = "cvssp/audioldm2"
RELEASED: dict[str, tuple[str, str]] = {  # name -> (checkpoint file, preset)
    "small": ("musicflow_s.pt", "small"),
    "base": ("musicflow_b.pt", "base"),
    "large": ("musicflow_l.pt", "large"),
    "giant": ("musicflow_g.pt", "giant"),
    "giant-full": ("musicflow_g_full.pt", "giant_full"),
}
BUNDLED_NAME = "bundled"


class ComponentsUnavailableError(FileNotFoundError):
    """One or more components could not be found; the one-line message lists each and how to supply it."""


@dataclass
class PipelineSpec:
    """Non-weight settings of a pipeline, stored in ``fluxmusic.json``."""

    sample_rate: int = 16_000
    default_duration: float = 10.24
    max_duration: float = 40.96
    defaults: dict[str, Any] = field(
        default_factory=lambda: {"steps": 50, "guidance": 7.0, "negative_prompt": "", "sampler": "euler"}
    )
    name: str = "custom"

    def __post_init__(self) -> None:
        if not 0 < self.default_duration <= self.max_duration:
            raise ValueError(
                f"need 0 < default_duration <= max_duration, got {self.default_duration}, {self.max_duration}"
            )


@dataclass
class Components:
    """Everything a ``FluxMusicPipeline`` is made of."""

    transformer: MusicFlux
    vae: AudioVAE
    vocoder: Vocoder
    text_encoder: TextConditioner
    spec: PipelineSpec
    text_encoder_entry: dict[str, Any] | None = None


def bundled_model_dir() -> Path:
    """Folder of the small model shipped inside the package."""
    return Path(__file__).parent / "bundled" / "model"


def _offline() -> bool:
    flag = os.environ.get("HF_HUB_OFFLINE", "") or os.environ.get("TRANSFORMERS_OFFLINE", "")
    return flag.strip().lower() in {"1", "true", "yes", "on"}


def _released_checkpoint(filename: str) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(FLUXMUSIC_REPO, filename, local_files_only=_offline()))
    except Exception as err:  # offline, missing, auth or network: one message either way
        raise ComponentsUnavailableError(
            f"transformer: cannot get {FLUXMUSIC_REPO}/{filename} ({type(err).__name__}); download it with "
            f"`hf download {FLUXMUSIC_REPO} {filename}` or pass a model folder"
        ) from None


def _collect(loaders: dict[str, Any]) -> dict[str, Any]:
    """Run every loader; raise one error naming every component that failed to load."""
    loaded, failures = {}, []
    for name, load in loaders.items():
        try:
            loaded[name] = load()
        except (FileNotFoundError, CheckpointError, OSError) as err:
            failures.append(str(err).splitlines()[0])
    if failures:
        raise ComponentsUnavailableError("missing model files: " + " | ".join(failures))
    return loaded


def load_released(
    name: str, device: torch.device, text_mode: str = "training", text_dtype: torch.dtype | None = None
) -> Components:
    """Load a released FluxMusic size with the AudioLDM2 VAE/vocoder and SD3 T5 + CLAP text encoders."""
    from fluxmusic.text.clap import CLAP_REPO, ClapTextEncoder
    from fluxmusic.text.conditioner import FluxMusicConditioner
    from fluxmusic.text.t5 import SD3_REPO, T5Encoder

    filename, preset = RELEASED[name]
    loaded = _collect(
        {
            "transformer": lambda: load_musicflux(
                _released_checkpoint(filename), preset=preset, device=device
            ),
            "vae": lambda: AudioVAE.from_pretrained(AUDIOLDM2_REPO, "vae", device=device),
            "vocoder": lambda: HifiGanVocoder.from_pretrained(AUDIOLDM2_REPO, "vocoder", device=device),
            "t5": lambda: T5Encoder.from_pretrained(SD3_REPO, device=device, dtype=text_dtype),
            "clap": lambda: ClapTextEncoder.from_pretrained(CLAP_REPO, device=device, dtype=text_dtype),
        }
    )
    loaded["text_encoder"] = FluxMusicConditioner(loaded.pop("t5"), loaded.pop("clap"), text_mode)
    spec = PipelineSpec(
        default_duration=10.24,
        max_duration=40.96,
        defaults={"steps": 50, "guidance": 7.0, "negative_prompt": "low quality, gentle", "sampler": "euler"},
        name=f"fluxmusic-{name}",
    )
    return Components(spec=spec, text_encoder_entry={"type": "t5-clap", "mode": text_mode}, **loaded)


def text_encoder_from_entry(entry: dict[str, Any], root: Path, device: torch.device) -> TextConditioner:
    """Build the text encoder a model folder names (``minilm``, ``t5-clap`` or the test-only ``tiny``)."""
    from fluxmusic.text.factory import CONDITIONERS, build_conditioner

    options = {k: v for k, v in entry.items() if k != "type"}
    kind = entry.get("type")
    if kind not in CONDITIONERS:
        raise ValueError(
            f"unknown text_encoder type {kind!r} in {root / MODEL_INDEX}; "
            f"use one of {', '.join(CONDITIONERS)}"
        )
    for key in ("t5", "clap", "model_dir"):  # folders may be given relative to the model folder
        if key in options and (root / options[key]).exists():
            options[key] = str(root / options[key])
    return build_conditioner(kind, device=device, **options)


def _vocoder_from_entry(entry: dict[str, Any] | str, root: Path, device: torch.device) -> Vocoder:
    entry = {"type": "hifigan", "path": entry} if isinstance(entry, str) else entry
    if entry.get("type") == "griffin-lim":
        return GriffinLimVocoder(**{k: v for k, v in entry.items() if k != "type"})
    if entry.get("type") == "hifigan":
        return HifiGanVocoder.from_pretrained(root / entry.get("path", "vocoder"), None, device=device)
    raise ValueError(f"unknown vocoder type {entry.get('type')!r} in {root / MODEL_INDEX}")


def read_model_index(root: Path) -> dict[str, Any]:
    """Parse ``fluxmusic.json``; errors name the file and the problem."""
    index_path = root / MODEL_INDEX
    if not index_path.is_file():
        raise ComponentsUnavailableError(
            f"{root} is not a fluxmusic model folder (no {MODEL_INDEX}); pass a released name "
            f"({', '.join(RELEASED)}), '{BUNDLED_NAME}', or a folder written by "
            "FluxMusicPipeline.save_pretrained"
        )
    try:
        index = json.loads(index_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{index_path} is not valid JSON: {err}") from None
    missing = [k for k in ("transformer", "vae", "vocoder", "text_encoder") if k not in index]
    if missing:
        raise ValueError(f"{index_path} lacks {', '.join(missing)}; see docs/pipeline.md for the format")
    return index


def weight_files(root: Path) -> list[str]:
    """Every ``*.safetensors`` file under ``root``, as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.safetensors"))


def verify_weights(root: Path, index: dict[str, Any], require: bool = False) -> None:
    """Check every weight file of a model folder against the ``sha256`` table of its ``fluxmusic.json``.

    Raises:
        CheckpointError: a file differs from its recorded hash, is missing, or is not listed; or
            ``require`` is set and the folder records no hashes.
    """
    table = index.get("sha256")
    if table is None:
        if require:
            raise CheckpointError(f"{root / MODEL_INDEX} records no sha256 hashes; reinstall fluxmusic")
        return
    if not isinstance(table, dict):
        raise CheckpointError(f"{root / MODEL_INDEX}: 'sha256' must map file names to hex digests")
    unlisted = sorted(set(weight_files(root)) - set(table))
    if unlisted:
        raise CheckpointError(
            f"{root}: weight files {unlisted} have no recorded sha256; remove them or rebuild the folder "
            "with `fluxmusic bundle`"
        )
    for name, expected in sorted(table.items()):
        path = root / name
        if not path.is_file():
            raise CheckpointError(
                f"{path} is missing (listed in {MODEL_INDEX}); reinstall or rebuild the folder"
            )
        actual = sha256_file(path)
        if actual != expected:
            raise CheckpointError(
                f"{path} has sha256 {actual[:16]}..., expected {str(expected)[:16]}...: the weights are "
                "corrupt or were modified; reinstall fluxmusic or rebuild the folder with `fluxmusic bundle`"
            )


def adapter_names(root: Path, index: dict[str, Any]) -> list[str]:
    """The adapter folders a model index lists (``"adapters"``), checked to be a list of names."""
    names = index.get("adapters", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise CheckpointError(f"{root / MODEL_INDEX}: 'adapters' must be a list of adapter folder names")
    return names


def load_transformer(
    root: Path, index: dict[str, Any], adapters: list[str], device: torch.device
) -> MusicFlux:
    """A model folder's transformer in fp32 (bf16 runs under autocast), its adapters folded in, in order.

    Raises:
        FileNotFoundError: a listed adapter folder lacks its files.
        ValueError: an adapter does not fit the transformer.
    """
    model = load_musicflux(root / index["transformer"], device=device, dtype=torch.float32)
    if adapters:
        from fluxmusic.training.lora import load_lora, merge_lora

        for name in adapters:
            merge_lora(load_lora(model, root / name))
    return model


def load_model_dir(root: str | Path, device: torch.device, require_hashes: bool = False) -> Components:
    """Load a model folder described by ``fluxmusic.json``, checking its weight hashes when it records them.

    Args:
        root: The model folder.
        device: Where to put the weights.
        require_hashes: Refuse a folder without a ``sha256`` table (the bundled model).
    """
    root = Path(root)
    index = read_model_index(root)
    verify_weights(root, index, require=require_hashes)
    adapters = adapter_names(root, index)
    loaded = _collect(
        {
            "transformer": lambda: load_transformer(root, index, adapters, device),
            "vae": lambda: AudioVAE.from_pretrained(root / index["vae"], None, device=device),
            "vocoder": lambda: _vocoder_from_entry(index["vocoder"], root, device),
            "text_encoder": lambda: text_encoder_from_entry(index["text_encoder"], root, device),
        }
    )
    known = {"sample_rate", "default_duration", "max_duration", "defaults", "name"}
    spec = PipelineSpec(**{k: v for k, v in index.items() if k in known})
    return Components(spec=spec, text_encoder_entry=index["text_encoder"], **loaded)


def save_model_dir(parts: Components, out_dir: str | Path) -> Path:
    """Write a model folder (``fluxmusic.json`` + component subfolders) that ``load_model_dir`` reads."""
    from fluxmusic.checkpoints import atomic_write, save_musicflux

    if parts.text_encoder_entry is None:
        raise ValueError("cannot save: the pipeline does not know how to describe its text encoder")
    out = Path(out_dir)
    save_musicflux(parts.transformer, out / "transformer")
    parts.vae.save_pretrained(out / "vae")
    if isinstance(parts.vocoder, HifiGanVocoder):
        parts.vocoder.save_pretrained(out / "vocoder")
        vocoder: dict[str, Any] = {"type": "hifigan", "path": "vocoder"}
    elif isinstance(parts.vocoder, GriffinLimVocoder):
        vocoder = {"type": "griffin-lim", "n_iter": parts.vocoder.n_iter, "momentum": parts.vocoder.momentum}
    else:
        raise ValueError(f"cannot save a vocoder of type {type(parts.vocoder).__name__}")
    spec = parts.spec
    index = {
        "format": "fluxmusic-pipeline",
        "version": 1,
        "name": spec.name,
        "transformer": "transformer",
        "vae": "vae",
        "vocoder": vocoder,
        "text_encoder": parts.text_encoder_entry,
        "sample_rate": spec.sample_rate,
        "default_duration": spec.default_duration,
        "max_duration": spec.max_duration,
        "defaults": spec.defaults,
    }
    atomic_write(out / MODEL_INDEX, lambda tmp: Path(tmp).write_text(json.dumps(index, indent=2) + "\n"))
    return out


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
        ValueError: ``adapter`` does not fit the transformer.
    """
    from fluxmusic.checkpoints import atomic_write, save_musicflux

    src, dst = Path(src), Path(dst)
    index = read_model_index(src)
    if dst.exists() and any(dst.iterdir()):
        raise FileExistsError(f"{dst} exists and is not empty; choose a new folder or remove it first")
    known = {"steps", "guidance", "guidance_interval", "guidance_eta", "shift", "negative_prompt", "sampler"}
    unknown = sorted(set(defaults or {}) - known)
    if unknown:
        raise ValueError(f"unknown pipeline defaults {unknown}; use {', '.join(sorted(known))}")
    if (defaults or {}).get("guidance_interval") is not None:
        defaults = {**defaults, "guidance_interval": list(check_interval(defaults["guidance_interval"]))}
    if (defaults or {}).get("guidance_eta") is not None:
        defaults = {**defaults, "guidance_eta": check_eta(defaults["guidance_eta"])}
    transformer = load_musicflux(src / index["transformer"], device=torch.device("cpu"))
    adapters = adapter_names(src, index)
    if adapter is not None:
        from fluxmusic.training.lora import load_lora, remove_lora

        remove_lora(load_lora(transformer, adapter))  # ValueError now, not at load, if it does not fit
    transformer.to(dtype)
    save_musicflux(transformer, dst / "transformer")
    for folder in adapters:
        shutil.copytree(src / folder, dst / folder)
    if adapter is not None:
        from fluxmusic.training.lora import ship_adapter

        adapters.append(f"adapter{len(adapters)}" if adapters else "adapter")
        ship_adapter(adapter, dst / adapters[-1], dtype)
    shutil.copytree(src / index["vae"], dst / "vae")
    vocoder = index["vocoder"]
    if isinstance(vocoder, str) or vocoder.get("type") == "hifigan":
        path = vocoder if isinstance(vocoder, str) else vocoder.get("path", "vocoder")
        shutil.copytree(src / path, dst / "vocoder")
        vocoder = {"type": "hifigan", "path": "vocoder"}
    for key in ("t5", "clap", "model_dir"):  # text-encoder folders stored inside the model folder
        relative = index["text_encoder"].get(key)
        if relative and (src / relative).exists():
            shutil.copytree(src / relative, dst / relative)
    out = {**index, "transformer": "transformer", "vae": "vae", "vocoder": vocoder}
    if adapters:
        out["adapters"] = adapters
    out["defaults"] = {**index.get("defaults", {}), **(defaults or {})}
    if name is not None:
        out["name"] = name
    out["sha256"] = {f: sha256_file(dst / f) for f in weight_files(dst)}
    atomic_write(dst / MODEL_INDEX, lambda tmp: Path(tmp).write_text(json.dumps(out, indent=2) + "\n"))
    return dst
