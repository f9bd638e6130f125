"""What every component trainer's config shares: the base class, ``[run]``, ``[data]`` (a dataset folder's
clips) and ``[optim]``.

The sections extend the transformer's (:mod:`fluxmusic.training.sections`), so the keys both have mean the
same: ``run.dir``, ``run.max_steps``, ``run.checkpoint_every``, ``optim.lr``, ``optim.schedule``, ... Each
trainer subclasses them only to change defaults and add its own keys.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from fluxmusic.errors import InputError
from fluxmusic.training.config import RESUMABLE, SectionedConfig
from fluxmusic.training.sections import AdamWConfig, BaseRunConfig, require_at_least

__all__ = [
    "ClipDataConfig",
    "ComponentOptimConfig",
    "ComponentRunConfig",
    "ComponentTrainConfig",
    "run_section",
]


@dataclass(frozen=True)
class ComponentRunConfig(BaseRunConfig):
    """``[run]`` of a component trainer: the shared keys (:class:`BaseRunConfig`) and three of its own.

    Attributes:
        eval_every: Steps between held-out evaluations (0: never; needs ``data.eval_clips > 0``).
        stop_at: End this invocation at this step (after a checkpoint) while keeping the learning-rate
            schedule of ``max_steps``; a run that starts at or past it ignores it (0: off).
        max_minutes: End this invocation (after a checkpoint) once this many wall minutes have passed
            (0: no limit). Resume the run to go on.
    """

    max_steps: int = 3000
    log_every: int = 25
    checkpoint_every: int = 200
    tensorboard: bool = False
    threads: int = 1
    eval_every: int = 250
    stop_at: int = 0
    max_minutes: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("eval_every", "stop_at", "max_minutes"):
            require_at_least("run", name, getattr(self, name), 0)


def run_section(trainer: str, name: str) -> type[ComponentRunConfig]:
    """The ``[run]`` section class ``name`` of component trainer ``trainer``: :class:`ComponentRunConfig`
    with ``run.trainer`` defaulting to ``trainer`` and ``run.dir`` to ``runs/bundled_<trainer>``."""
    defaults = [("trainer", str, trainer), ("dir", str, f"runs/bundled_{trainer}")]
    section = dataclasses.make_dataclass(name, defaults, bases=(ComponentRunConfig,), frozen=True)
    section.__module__ = ComponentRunConfig.__module__
    section.__doc__ = f"``[run]`` of a {trainer} run (see :class:`ComponentRunConfig`)."
    return section


@dataclass(frozen=True)
class ClipDataConfig:
    """``[data]`` of a component trainer: clips of a dataset folder, held in memory, random crops.

    Attributes:
        dir: Dataset root: ``DIR/train.json`` and ``DIR/test.json`` (reference format), or the
            ``DIR/records/`` of a demo build still running (see :mod:`fluxmusic.data.clip_bank`).
        clip_seconds: Clip length; every clip is fitted to it.
        crop_frames: Log-mel frames per training crop.
        batch_size: Crops per optimizer step.
        max_clips: Training clips used (the first, sorted by path; 0: all).
        eval_clips: Held-out clips (the first of ``test.json``) for the periodic evaluation and the final
            summary (0: none).
    """

    MIN_CROP: ClassVar[int] = 4

    dir: str = "data/demo"
    clip_seconds: float = 5.12
    crop_frames: int = 128
    batch_size: int = 8
    max_clips: int = 0
    eval_clips: int = 32

    def __post_init__(self) -> None:
        if not self.dir:
            raise InputError("data.dir must name the dataset folder")
        if self.clip_seconds <= 0:
            raise InputError(f"data.clip_seconds must be positive, got {self.clip_seconds}")
        require_at_least("data", "crop_frames", self.crop_frames, self.MIN_CROP)
        require_at_least("data", "batch_size", self.batch_size, 1)
        require_at_least("data", "max_clips", self.max_clips, 0)
        require_at_least("data", "eval_clips", self.eval_clips, 0)


@dataclass(frozen=True)
class ComponentOptimConfig(AdamWConfig):
    """``[optim]`` of a component trainer: :class:`AdamWConfig` with the components' defaults (AdamW
    5e-4, betas (0.9, 0.99), 100 warm-up steps, then a cosine decay to 0.1 x lr at ``run.max_steps``)."""

    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 100
    schedule: str = "cosine"
    min_lr_ratio: float = 0.1


class ComponentTrainConfig(SectionedConfig):
    """Base of a component trainer's config (a frozen dataclass of ``run``, ``model``, ``data``, ``optim``
    and ``loss`` sections); its local paths are ``run.dir`` and ``data.dir``. A resume may change, besides
    the shared keys, the invocation limits, the loss weights, the crops and where the dataset lives (the
    clip lists are kept in the run folder)."""

    TRAINER: ClassVar[str] = ""  # each subclass's is its run section's (``run_section``)
    PATHS: ClassVar[dict[str, tuple[str, ...]]] = {"run": ("dir",), "data": ("dir",)}
    RESUMABLE: ClassVar[tuple[str, ...]] = (
        *RESUMABLE, "run.eval_every", "run.stop_at", "run.max_minutes", "loss.*", "data.dir",
        "data.batch_size",        "data.crop_frames",
    )  # fmt: skip

    run: ComponentRunConfig
    data: ClipDataConfig
    optim: ComponentOptimConfig
