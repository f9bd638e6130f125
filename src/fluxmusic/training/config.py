"""Typed training configuration: TOML files, ``--set section.key=value`` overrides, strict validation.

A config has one section per concern (``run``, ``model``, ``text``, ``vae``, ``vocoder``, ``data``,
``optim``, ``ema``, ``flow``, ``sample``, ``lora``; see :mod:`fluxmusic.training.sections`); every
section is a frozen dataclass validated in ``__post_init__``. Unknown sections or keys are errors that
list the valid ones. The resolved config is saved as JSON in the run folder and beside every checkpoint,
so a run can be resumed and a checkpoint rebuilt from its folder alone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from fluxmusic.training.sections import (
    DataConfig,
    EMAConfig,
    FlowConfig,
    LoRAConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    SampleConfig,
    TextConfig,
    VAEConfig,
    VocoderConfig,
)

__all__ = [
    "DataConfig",
    "EMAConfig",
    "FlowConfig",
    "LoRAConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "SampleConfig",
    "TextConfig",
    "TrainConfig",
    "VAEConfig",
    "VocoderConfig",
    "load_config",
    "parse_override",
]


SECTIONS: dict[str, type] = {
    "run": RunConfig,
    "model": ModelConfig,
    "text": TextConfig,
    "vae": VAEConfig,
    "vocoder": VocoderConfig,
    "data": DataConfig,
    "optim": OptimConfig,
    "ema": EMAConfig,
    "flow": FlowConfig,
    "sample": SampleConfig,
    "lora": LoRAConfig,
}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check (and lightly convert) a TOML value against a field annotation."""
    origin = typing.get_origin(annotation)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be a table, got {value!r}")
        return dict(value)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where} must be a list, got {value!r}")
        args = typing.get_args(annotation)
        inner = args[0] if args else Any
        return tuple(value) if inner is Any else tuple(_coerce(v, inner, f"{where}[]") for v in value)
    return value


def _section(cls: type, data: dict[str, Any], name: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(f'{name}.{k}' for k in unknown)}; [{name}] has {sorted(fields)}"
        )
    return cls(**{k: _coerce(v, hints[k], f"{name}.{k}") for k, v in data.items()})


@dataclass(frozen=True)
class TrainConfig:
    """A whole training experiment (see the section classes for every key)."""

    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    text: TextConfig = field(default_factory=TextConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    vocoder: VocoderConfig = field(default_factory=VocoderConfig)
    data: DataConfig = field(default_factory=lambda: DataConfig(manifest="train.json"))
    optim: OptimConfig = field(default_factory=OptimConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)

    def __post_init__(self) -> None:
        self.model.musicflux()  # validates the transformer config (in_channels vs patch_size, ...)
        if self.lora.enabled and self.run.strategy == "fsdp":
            raise ValueError("LoRA with FSDP is not supported; use run.strategy = 'ddp' (adapters are small)")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from nested dicts (a parsed TOML file); unknown sections or keys raise ``ValueError``."""
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise ValueError(f"unknown config section(s) {unknown}; valid sections are {list(SECTIONS)}")
        sections = {}
        for name, section_cls in SECTIONS.items():
            raw = data.get(name, {})
            if not isinstance(raw, dict):
                raise ValueError(f"[{name}] must be a table, got {raw!r}")
            sections[name] = _section(section_cls, raw, name)
        return cls(**sections)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (tuples as lists)."""

        def plain(value: Any) -> Any:
            if isinstance(value, tuple | list):
                return [plain(v) for v in value]
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return {name: plain(dataclasses.asdict(getattr(self, name))) for name in SECTIONS}

    def replace(self, **sections: Any) -> TrainConfig:
        """A copy with whole sections replaced (``config.replace(run=...)``)."""
        return dataclasses.replace(self, **sections)

    def save_json(self, path: str | os.PathLike[str]) -> Path:
        """Write ``to_dict()`` as JSON, atomically."""
        from fluxmusic.checkpoints import atomic_write

        text = json.dumps(self.to_dict(), indent=2) + "\n"
        atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        return Path(path)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``section.key[.subkey]=value``; the value is read as TOML, else taken as a bare string.

    Examples: ``run.max_steps=100``, ``optim.lr=1e-4``, ``data.manifest=data/train.json``,
    ``sample.prompts=["a calm piano piece"]``, ``text.options.seed=3``.
    """
    if "=" not in text:
        raise ValueError(f"--set expects section.key=value, got {text!r}")
    key, raw = text.split("=", 1)
    path = [part.strip() for part in key.strip().split(".")]
    if len(path) < 2 or not all(path):
        raise ValueError(f"--set expects section.key=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides to a nested dict (a copy); unknown keys fail later, in ``from_dict``."""
    data = json.loads(json.dumps(data))
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            existing = node.get(part)
            if existing is None:
                node[part] = existing = {}
            if not isinstance(existing, dict):
                raise ValueError(f"--set {text!r}: {part} is not a section or table")
            node = existing
        node[path[-1]] = value
    return data


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    """Read a TOML (or a saved ``.json``) config, apply ``--set`` overrides, validate.

    Raises:
        FileNotFoundError: no such file.
        ValueError: bad TOML, unknown keys, wrong types or invalid values (the message names the key).
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot parse {path}: {err}") from None
    return TrainConfig.from_dict(apply_overrides(data, list(overrides or [])))
