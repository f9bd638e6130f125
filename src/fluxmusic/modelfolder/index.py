"""The model-folder index ``fluxmusic.json``: reading it, checking its weight hashes, the pipeline spec.

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

Component types (``vocoder``, ``text_encoder``) are those of :mod:`fluxmusic.modelfolder.registry`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluxmusic.checkpoints import CheckpointError
from fluxmusic.errors import InputError
from fluxmusic.files import atomic_write_text, sha256_file
from fluxmusic.hub import WeightsNotFoundError
from fluxmusic.sampling import check_defaults

__all__ = [
    "MODEL_INDEX",
    "PipelineSpec",
    "adapter_names",
    "read_model_index",
    "spec_from_index",
    "verify_weights",
    "weight_files",
    "write_model_index",
]

MODEL_INDEX = "fluxmusic.json"
FORMAT = {"format": "fluxmusic-pipeline", "version": 1}
_SPEC_KEYS = ("sample_rate", "default_duration", "max_duration", "defaults", "name")


@dataclass
class PipelineSpec:
    """Non-weight settings of a pipeline, stored in ``fluxmusic.json``.

    ``defaults`` holds sampling defaults (keys of ``fluxmusic.sampling.DEFAULT_KEYS``); what it leaves
    out falls back to ``fluxmusic.sampling.FALLBACKS``.
    """

    sample_rate: int = 16_000
    default_duration: float = 10.24
    max_duration: float = 40.96
    defaults: dict[str, Any] = field(default_factory=dict)
    name: str = "custom"

    def __post_init__(self) -> None:
        for key in ("default_duration", "max_duration"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"{key} must be a number of seconds, got {value!r}")
        if not 0 < self.default_duration <= self.max_duration:
            raise InputError(
                f"need 0 < default_duration <= max_duration, got {self.default_duration}, {self.max_duration}"
            )
        if (
            isinstance(self.sample_rate, bool)
            or not isinstance(self.sample_rate, int)
            or self.sample_rate < 1
        ):
            raise InputError(f"sample_rate must be a positive integer, got {self.sample_rate!r}")
        self.defaults = check_defaults(self.defaults)


def spec_from_index(index: dict[str, Any], where: Path | str) -> PipelineSpec:
    """The ``PipelineSpec`` a parsed index describes; bad values raise ``ValueError`` naming ``where``."""
    try:
        return PipelineSpec(**{k: index[k] for k in _SPEC_KEYS if k in index})
    except (TypeError, ValueError) as err:
        raise InputError(f"{where}: {err}") from None


def read_model_index(root: Path) -> dict[str, Any]:
    """Parse ``fluxmusic.json``; errors name the file and the problem.

    Raises:
        WeightsNotFoundError: the folder has no index.
        ValueError: the index is not a JSON object with the four component entries.
    """
    index_path = root / MODEL_INDEX
    if not index_path.is_file():
        raise WeightsNotFoundError(
            f"{root} is not a fluxmusic model folder (no {MODEL_INDEX}); pass a released name "
            "(small, base, large, giant, giant-full), 'bundled', or a folder written by "
            "FluxMusicPipeline.save_pretrained"
        )
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{index_path} is not valid JSON: {err}") from None
    if not isinstance(index, dict):
        raise InputError(f"{index_path} must hold a JSON object; see docs/pipeline.md for the format")
    missing = [k for k in ("transformer", "vae", "vocoder", "text_encoder") if k not in index]
    if missing:
        raise InputError(f"{index_path} lacks {', '.join(missing)}; see docs/pipeline.md for the format")
    for key in ("transformer", "vae"):
        if not isinstance(index[key], str) or not index[key]:
            raise InputError(f"{index_path}: {key!r} must name a subfolder, got {index[key]!r}")
    return index


def write_model_index(root: Path, index: dict[str, Any]) -> Path:
    """Write ``fluxmusic.json`` atomically (the format tag first)."""
    return atomic_write_text(root / MODEL_INDEX, json.dumps({**FORMAT, **index}, indent=2) + "\n")


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
