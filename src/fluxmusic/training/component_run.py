"""Run folders of the bundled-component trainers (VAE, vocoder): TOML configs, checkpoints, resume.

A config is a frozen dataclass whose fields are section dataclasses (``run``, ``model``, ``data``, ...).
:func:`load_config` reads a TOML file, applies ``section.key=value`` overrides and rejects unknown keys.

A checkpoint is a folder ``RUN/checkpoints/step_00001234/`` holding

- ``model.safetensors``: the trained module's state dict;
- ``optimizer.pt``: optimizer state dicts (plain tensors, numbers and lists);
- ``state.pt``: the step, the ``torch.Generator`` states and any other plain tensors;
- ``config.json``: the resolved config (a checkpoint alone rebuilds its model).

The folder is written under a temporary name and renamed when complete, so a crash never leaves a
half-written checkpoint where :func:`latest_checkpoint` looks; ``.pt`` files are read back with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import shutil
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import tomllib
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from fluxmusic.data.clip_bank import ClipBank, snapshot_clips

logger = logging.getLogger(__name__)

C = TypeVar("C")
CHECKPOINTS = "checkpoints"
PREFIX = "step_"


def parse_overrides(pairs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Turn ``["optim.lr=1e-3", "model.block_out_channels=[16, 32, 64]"]`` into nested dicts.

    Values are parsed as TOML values; anything that is not valid TOML is kept as a string.

    Raises:
        ValueError: An item is not ``section.key=value``.
    """
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not section or not name:
            raise ValueError(f"override {pair!r} must look like section.key=value")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        out.setdefault(section, {})[name] = value
    return out


def _coerce(value: Any, hint: Any) -> Any:
    """Lists from TOML/JSON become tuples where the field is a tuple (frozen dataclasses stay hashable)."""
    origin = typing.get_origin(hint)
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(hint)
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner) for v in value)
    return value


def config_from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Build a sectioned config dataclass from nested dicts over its defaults; unknown names are errors.

    Raises:
        ValueError: Unknown section/key, or a value a section's ``__post_init__`` rejects.
    """
    hints = typing.get_type_hints(cls)
    sections = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ValueError(f"unknown config section(s) {unknown}; valid: {sorted(sections)}")
    defaults = cls()
    built = {}
    for name, section_cls in sections.items():
        values = dict(data.get(name, {}))
        section_hints = typing.get_type_hints(section_cls)
        bad = sorted(set(values) - set(section_hints))
        if bad:
            raise ValueError(f"unknown key(s) {bad} in [{name}]; valid: {sorted(section_hints)}")
        coerced = {k: _coerce(v, section_hints[k]) for k, v in values.items()}
        built[name] = dataclasses.replace(getattr(defaults, name), **coerced)
    return cls(**built)


def config_to_dict(config: Any) -> dict[str, Any]:
    """Nested plain dicts (tuples as lists) of a sectioned config, JSON-ready."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def load_config(cls: type[C], path: str | os.PathLike[str] | None = None, overrides: Iterable[str] = ()) -> C:
    """Read a TOML file (or start from the defaults) and apply ``section.key=value`` overrides."""
    data: dict[str, dict[str, Any]] = {}
    if path is not None:
        with open(path, "rb") as f:
            data = {k: dict(v) for k, v in tomllib.load(f).items()}
    for section, values in parse_overrides(overrides).items():
        data.setdefault(section, {}).update(values)
    return config_from_dict(cls, data)


def resolve_run_config(
    cls: type[C],
    run_dir: str | os.PathLike[str],
    path: str | os.PathLike[str] | None,
    overrides: Iterable[str],
    resume: bool,
) -> C:
    """The config of a run: on resume the run's own ``config.json`` (plus overrides), else the TOML file.

    The resolved config is written to ``RUN/config.json``.
    """
    saved = Path(run_dir) / "config.json"
    if resume and saved.is_file():
        data = json.loads(saved.read_text())
        for section, values in parse_overrides(overrides).items():
            data.setdefault(section, {}).update(values)
        config = config_from_dict(cls, data)
    else:
        config = load_config(cls, path, overrides)
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(config_to_dict(config), indent=2) + "\n")
    return config


class _RunConfig(Protocol):
    @property
    def run(self) -> RunSection: ...


R = TypeVar("R", bound=_RunConfig)


class ClipsSection(Protocol):
    """The ``[data]`` keys :func:`load_clip_banks` reads."""

    @property
    def clip_seconds(self) -> float: ...

    @property
    def max_clips(self) -> int: ...

    @property
    def eval_clips(self) -> int: ...


def start_run(
    cls: type[R], description: str, argv: Sequence[str] | None = None
) -> tuple[argparse.Namespace, Path, R]:
    """Shared command line of the component trainers: parse, set up logging, resolve config and threads.

    Flags: ``--config``, ``--data``, ``--out``, ``--resume``, ``--set``, ``--max-minutes``, ``--stop-at``,
    ``--no-export``.

    Returns:
        (the parsed arguments, the run folder, the resolved config; see :func:`resolve_run_config`).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", help="TOML file (sections run, model, data, optim, loss)")
    parser.add_argument("--data", required=True, help="dataset root (train.json/test.json or records/)")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--max-minutes", type=float, default=0.0, help="stop (checkpointed) after this long")
    parser.add_argument("--stop-at", type=int, default=0, help="stop (checkpointed) at this step")
    parser.add_argument("--no-export", action="store_true", help="do not write RUN/final at the end")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out)
    config = resolve_run_config(cls, out, args.config, args.overrides, args.resume)
    if config.run.threads:
        torch.set_num_threads(config.run.threads)
    return args, out, config


def load_clip_banks(
    run_dir: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    data: ClipsSection,
    keep_waveforms: bool = True,
) -> tuple[ClipBank, ClipBank | None]:
    """The train bank and the held-out bank (None when ``data.eval_clips`` is 0) of a run.

    The clip lists are snapshotted into the run folder (see :func:`snapshot_clips`).
    """
    train_paths = snapshot_clips(run_dir, data_dir, "train", data.max_clips)
    bank = ClipBank.load(data_dir, train_paths, data.clip_seconds, keep_waveforms=keep_waveforms)
    eval_bank = None
    if data.eval_clips:
        test_paths = snapshot_clips(run_dir, data_dir, "test", data.eval_clips)
        eval_bank = ClipBank.load(data_dir, test_paths, data.clip_seconds, keep_waveforms=keep_waveforms)
    return bank, eval_bank


@dataclass(frozen=True)
class RunSection:
    """Run bookkeeping. ``threads``: torch intra-op threads (0 leaves the default)."""

    seed: int = 0
    threads: int = 1
    log_every: int = 25
    eval_every: int = 250
    checkpoint_every: int = 200
    keep_last: int = 3
    progress: bool = True

    def __post_init__(self) -> None:
        if self.threads < 0 or self.eval_every < 0:
            raise ValueError(f"[run] threads and eval_every must be >= 0, got {self}")
        if self.log_every < 1 or self.checkpoint_every < 1 or self.keep_last < 1:
            raise ValueError(f"[run] log_every, checkpoint_every and keep_last must be >= 1, got {self}")


@dataclass(frozen=True)
class OptimSection:
    """AdamW with linear warm-up and cosine decay to ``min_lr_ratio * lr`` (see :func:`lr_at`)."""

    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    warmup_steps: int = 100
    max_steps: int = 3000
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.max_steps < 1 or self.warmup_steps < 0 or self.grad_clip < 0:
            raise ValueError(
                f"[optim] needs lr > 0, max_steps >= 1, warmup_steps >= 0, grad_clip >= 0: {self}"
            )
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas) or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"[optim] betas must be two values in [0, 1), min_lr_ratio in [0, 1]: {self}")


def generator_states(generators: Mapping[str, torch.Generator]) -> dict[str, Tensor]:
    """The states (uint8 tensors) of named generators, for ``state.pt``."""
    return {f"rng.{name}": g.get_state() for name, g in generators.items()}


def restore_generators(generators: Mapping[str, torch.Generator], state: Mapping[str, Any]) -> None:
    """Set named generators back to the states saved by :func:`generator_states`."""
    for name, g in generators.items():
        g.set_state(state[f"rng.{name}"])


def checkpoint_dir(run_dir: str | os.PathLike[str], step: int) -> Path:
    """``RUN/checkpoints/step_{step:08d}``."""
    return Path(run_dir) / CHECKPOINTS / f"{PREFIX}{step:08d}"


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoint folders of a run, oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint folder, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(
    run_dir: str | os.PathLike[str],
    step: int,
    weights: Mapping[str, Tensor],
    optimizers: Mapping[str, Mapping[str, Any]],
    state: Mapping[str, Any],
    config: Mapping[str, Any],
    keep_last: int,
) -> Path:
    """Write a checkpoint folder atomically and delete all but the newest ``keep_last``.

    Args:
        run_dir: The run folder.
        step: Optimizer steps done.
        weights: Module state dict (saved as safetensors).
        optimizers: Named optimizer state dicts.
        state: Plain tensors / numbers (generator states, normalisation statistics, ...).
        config: The resolved config as plain dicts.
        keep_last: Checkpoints to keep (>= 1).

    Returns:
        The checkpoint folder.
    """
    final = checkpoint_dir(run_dir, step)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
    save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt", "step": str(step)})
    torch.save(dict(optimizers), tmp / "optimizer.pt")
    torch.save({"step": step, **state}, tmp / "state.pt")
    (tmp / "config.json").write_text(json.dumps(dict(config), indent=2) + "\n")
    for path in tmp.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(run_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    logger.info("checkpoint %s", final)
    return final


def load_checkpoint(
    folder: str | os.PathLike[str],
) -> tuple[dict[str, Tensor], dict[str, Any], dict[str, Any]]:
    """Read ``(weights, optimizers, state)`` of a checkpoint folder; pickles with ``weights_only=True``."""
    folder = Path(folder)
    weights = load_file(str(folder / "model.safetensors"))
    optimizers = torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
    state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    return weights, optimizers, state


def lr_at(step: int, base_lr: float, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """Linear warm-up then cosine decay to ``min_lr_ratio * base_lr`` (a pure function of the step)."""
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(1, max_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return base_lr * (min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))
