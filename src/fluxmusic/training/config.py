"""Typed training configuration: TOML files, ``--set section.key=value`` overrides, strict validation.

Every trainer's config is a frozen dataclass of sections (a :class:`SectionedConfig`): the transformer's
:class:`TrainConfig` (``run``, ``model``, ``text``, ``vae``, ``vocoder``, ``data``, ``optim``, ``ema``,
``flow``, ``sample``, ``lora``; see :mod:`fluxmusic.training.sections`) and the component trainers'
(:mod:`fluxmusic.training.components`). Every section is a frozen dataclass validated in
``__post_init__``; unknown sections or keys are errors that list the valid ones. ``run.trainer`` names
the trainer a file is for (:mod:`fluxmusic.training.trainers` dispatches on it). The resolved config is
saved as JSON in the run folder and beside every checkpoint, so a run can be resumed and a checkpoint
rebuilt from its folder alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from fluxmusic.errors import InputError, MissingFilesError
from fluxmusic.training.sections import (  # the section classes are importable from here too
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
    "CONFIG_NAME",
    "RESUMABLE",
    "SectionedConfig",
    "TrainConfig",
    "absolute_paths",
    "apply_overrides",
    "load_config",
    "parse_override",
    "plain",
    "read_config",
    "saved_config",
]

C = TypeVar("C", bound="SectionedConfig")

CONFIG_NAME = "train_config.json"

RESUMABLE: tuple[str, ...] = (
    "run.dir", "run.max_steps", "run.log_every", "run.checkpoint_every", "run.keep_last", "run.export",
    "run.tensorboard", "run.threads", "run.max_nonfinite", "optim.lr", "optim.betas", "optim.eps",
    "optim.weight_decay", "optim.warmup_steps", "optim.schedule", "optim.min_lr_ratio", "optim.grad_clip",
)  # fmt: skip
"""Keys every trainer's resume may change (``fnmatch`` patterns); each trainer adds its own."""


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check (and lightly convert) a TOML value against a field annotation."""
    origin = typing.get_origin(annotation)
    if annotation is bool:
        if not isinstance(value, bool):
            raise InputError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where} must be an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise InputError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise InputError(f"{where} must be a string, got {value!r}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise InputError(f"{where} must be a table, got {value!r}")
        return dict(value)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise InputError(f"{where} must be a list, got {value!r}")
        args = typing.get_args(annotation)
        inner = args[0] if args else Any
        return tuple(value) if inner is Any else tuple(_coerce(v, inner, f"{where}[]") for v in value)
    return value


def _section(cls: type, data: dict[str, Any], name: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise InputError(
            f"unknown key(s) {', '.join(f'{name}.{k}' for k in unknown)}; [{name}] has {sorted(fields)}"
        )
    return cls(**{k: _coerce(v, hints[k], f"{name}.{k}") for k, v in data.items()})


def plain(value: Any) -> Any:
    """``value`` ready for JSON: dataclasses as dicts, tuples as lists (nested ones too)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class SectionedConfig:
    """Base of every trainer's config: a frozen dataclass whose fields are section dataclasses.

    A subclass declares its sections as fields and names its local paths (``PATHS``: section -> keys,
    made absolute by :func:`absolute_paths`). A section declared without a default defaults to its class's
    defaults (``run: RunConfig`` means ``field(default_factory=RunConfig)``), as do sections missing from a
    file. The trainer a config is for (``TRAINER``, what ``run.trainer`` must say) is the default
    ``trainer`` of its ``run`` section unless the subclass sets it.
    """

    TRAINER: ClassVar[str] = ""
    PATHS: ClassVar[dict[str, tuple[str, ...]]] = {}
    RESUMABLE: ClassVar[tuple[str, ...]] = RESUMABLE
    """Keys a resume may change (``fnmatch`` patterns; :func:`fluxmusic.training.runs.check_resume`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hints = typing.get_type_hints(cls)
        for name in cls.__dict__.get("__annotations__", {}):
            section = hints[name]
            if name not in cls.__dict__ and dataclasses.is_dataclass(section) and isinstance(section, type):
                setattr(cls, name, field(default_factory=section))
        if "TRAINER" not in cls.__dict__ and "run" in cls.__dict__:
            cls.TRAINER = next(f.default for f in dataclasses.fields(hints["run"]) if f.name == "trainer")

    def __post_init__(self) -> None:
        trainer = self.run.trainer  # type: ignore[attr-defined]
        if trainer != self.TRAINER:
            raise InputError(
                f"run.trainer = {trainer!r}, but {type(self).__name__} is the config of {self.TRAINER!r}"
            )

    @classmethod
    def sections(cls) -> dict[str, type]:
        """Section name -> section dataclass, in file order."""
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Build from nested dicts (a parsed TOML file); unknown sections or keys raise ``ValueError``."""
        sections = cls.sections()
        unknown = sorted(set(data) - set(sections))
        if unknown:
            raise InputError(f"unknown config section(s) {unknown}; valid sections are {list(sections)}")
        built = {}
        for name, section_cls in sections.items():
            raw = data.get(name, {})
            if not isinstance(raw, dict):
                raise InputError(f"[{name}] must be a table, got {raw!r}")
            built[name] = _section(section_cls, raw, name)
        return cls(**built)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (tuples as lists)."""
        return {name: plain(getattr(self, name)) for name in self.sections()}

    def replace(self: C, **sections: Any) -> C:
        """A copy with whole sections replaced (``config.replace(run=...)``)."""
        return dataclasses.replace(self, **sections)  # type: ignore[type-var]

    def save_json(self, path: str | os.PathLike[str]) -> Path:
        """Write ``to_dict()`` as JSON, atomically."""
        from fluxmusic.files import atomic_write_text

        return atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")


@dataclass(frozen=True)
class TrainConfig(SectionedConfig):
    """A whole transformer training experiment (see the section classes for every key)."""

    PATHS: ClassVar[dict[str, tuple[str, ...]]] = {
        "run": ("dir",),
        "data": ("manifest", "shards"),
        "model": ("init_from",),
        "text": ("cache_dir",),
        "vae": ("pretrained",),
        "vocoder": ("pretrained",),
    }
    RESUMABLE: ClassVar[tuple[str, ...]] = (
        *RESUMABLE, "run.device", "run.precision", "run.strategy", "model.gradient_checkpointing",
        "ema.decay", "flow.*", "sample.*", "vocoder.*", "data.num_workers", "data.caption_dropout",
        "data.caption_dropout_mode", "data.tempo_dropout", "data.max_tries",
    )  # fmt: skip

    run: RunConfig
    model: ModelConfig
    text: TextConfig
    vae: VAEConfig
    vocoder: VocoderConfig
    data: DataConfig = field(default_factory=lambda: DataConfig(manifest="train.json"))
    optim: OptimConfig
    ema: EMAConfig
    flow: FlowConfig
    sample: SampleConfig
    lora: LoRAConfig

    def __post_init__(self) -> None:
        super().__post_init__()
        self.model.musicflux()  # validates the transformer config (in_channels vs patch_size, ...)
        if self.lora.enabled and self.run.strategy == "fsdp":
            raise InputError("LoRA with FSDP is not supported; use run.strategy = 'ddp' (adapters are small)")


def absolute_paths(config: C) -> C:
    """The config with its local paths (``config.PATHS``) made absolute, as ``train_config.json`` records
    them, so a run resumes from any working directory. ``dir`` keys are always local; other values
    (hub ids such as ``cvssp/audioldm2``) change only when such a path exists."""
    sections = {}
    for name, keys in config.PATHS.items():
        section = getattr(config, name)
        changes = {}
        for key in keys:
            value = getattr(section, key)
            if value and (key == "dir" or Path(value).exists()):
                changes[key] = str(Path(value).resolve())
        if changes:
            sections[name] = dataclasses.replace(section, **changes)
    return config.replace(**sections)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``section.key[.subkey]=value``; the value is read as TOML, else taken as a bare string.

    Examples: ``run.max_steps=100``, ``optim.lr=1e-4``, ``data.manifest=data/train.json``,
    ``sample.prompts=["a calm piano piece"]``, ``text.options.seed=3``.
    """
    if "\n" in text or "\r" in text:
        raise InputError(f"--set takes one line (section.key=value), got {text!r}")
    if "=" not in text:
        raise InputError(f"--set expects section.key=value, got {text!r}")
    key, raw = text.split("=", 1)
    path = [part.strip() for part in key.strip().split(".")]
    if len(path) < 2 or not all(path):
        raise InputError(f"--set expects section.key=value, got {text!r}")
    try:
        parsed = tomllib.loads(f"v = {raw.strip()}")
    except tomllib.TOMLDecodeError:
        return path, raw.strip()
    if set(parsed) != {"v"}:
        raise InputError(f"--set {text!r}: the value must be one TOML value")
    return path, parsed["v"]


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
                raise InputError(f"--set {text!r}: {part} is not a section or table")
            node = existing
        node[path[-1]] = value
    return data


def read_config(
    path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None
) -> dict[str, Any]:
    """Nested dicts of a TOML (or saved ``.json``) config with ``--set`` overrides applied (not validated).

    Raises:
        FileNotFoundError: no such file.
        ValueError: bad TOML or a malformed override.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise MissingFilesError(f"config file not found: {path}")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(
                f"{path} is not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); "
                "a config is a TOML file"
            ) from None
        try:
            data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
            raise InputError(f"cannot parse {path}: {err}") from None
    return apply_overrides(data, list(overrides or []))


def saved_config(run_dir: str | os.PathLike[str], overrides: list[str] | None = None) -> dict[str, Any]:
    """The saved ``train_config.json`` of a run (``run.dir`` set to the folder) with ``--set`` overrides.

    Raises:
        FileNotFoundError: ``run_dir`` holds no ``train_config.json``.
    """
    path = Path(run_dir) / CONFIG_NAME
    if not path.is_file():
        raise MissingFilesError(f"{path} not found: {run_dir} is not a fluxmusic run folder")
    return read_config(path, [f"run.dir={json.dumps(str(Path(run_dir).resolve()))}", *(overrides or [])])


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: list[str] | None = None,
    cls: type[C] = TrainConfig,  # type: ignore[assignment]
) -> C:
    """Read a TOML (or a saved ``.json``) config, apply ``--set`` overrides, validate as ``cls``.

    :func:`fluxmusic.training.trainers.load_experiment` picks ``cls`` from the file's ``run.trainer``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: bad TOML, unknown keys, wrong types or invalid values (the message names the key).
    """
    return cls.from_dict(read_config(path, overrides))
