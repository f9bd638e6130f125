"""Every trainer behind one entry point: configs and runs dispatched on ``run.trainer``.

- ``musicflux`` (the default: a file without ``run.trainer``): the transformer,
  :class:`~fluxmusic.training.config.TrainConfig` and :func:`fluxmusic.training.loop.train`;
- ``vae``: the bundled mel VAE, :mod:`fluxmusic.training.components.vae`;
- ``vocoder``: the bundled HiFi-GAN vocoder, :mod:`fluxmusic.training.components.vocoder`.

``fluxmusic train`` calls these.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from fluxmusic.errors import InputError
from fluxmusic.training import loop
from fluxmusic.training.components import vae, vocoder
from fluxmusic.training.config import SectionedConfig, TrainConfig, read_config, saved_config
from fluxmusic.training.runs import TrainResult

__all__ = ["TRAINERS", "config_from_dict", "load_experiment", "resume_experiment", "train"]

Train = Callable[..., TrainResult]

TRAINERS: dict[str, tuple[type[SectionedConfig], Train]] = {
    "musicflux": (TrainConfig, loop.train),
    "vae": (vae.VAETrainConfig, vae.train),
    "vocoder": (vocoder.VocoderTrainConfig, vocoder.train),
}


def config_from_dict(data: dict[str, Any]) -> SectionedConfig:
    """The config of the trainer ``data["run"]["trainer"]`` names (default ``musicflux``).

    Raises:
        ValueError: an unknown trainer, or the config's own errors (unknown keys, bad values).
    """
    run = data.get("run", {})
    name = run.get("trainer", TrainConfig.TRAINER) if isinstance(run, dict) else TrainConfig.TRAINER
    if name not in TRAINERS:
        raise InputError(f"run.trainer must be one of {', '.join(TRAINERS)}; got {name!r}")
    return TRAINERS[name][0].from_dict(data)


def load_experiment(path: str | os.PathLike[str], overrides: list[str] | None = None) -> SectionedConfig:
    """Read a TOML (or saved ``.json``) config of any trainer and apply ``--set`` overrides."""
    return config_from_dict(read_config(path, overrides))


def resume_experiment(run_dir: str | os.PathLike[str], overrides: list[str] | None = None) -> SectionedConfig:
    """The saved config of a run of any trainer, with ``--set`` overrides."""
    return config_from_dict(saved_config(run_dir, overrides))


def train(config: SectionedConfig, resume: str | os.PathLike[str] | None = None) -> TrainResult:
    """Run ``config``'s trainer (under ``torchrun``, every rank calls this for the transformer).

    Args:
        config: A config of any trainer.
        resume: None (a new run), the run folder (continue from its newest checkpoint), or ``"auto"``
            (continue ``run.dir`` if it holds a checkpoint, else start it).
    """
    return TRAINERS[config.TRAINER][1](config, resume)
