"""What every trainer does with its run folder: decide where to start, open the folder, report the result.

The rules (the same for the transformer and the component trainers): a new run needs a folder without
checkpoints; ``--resume RUN_DIR`` continues ``RUN_DIR`` from its newest complete checkpoint (and needs
one); ``--auto-resume`` does that when there is a checkpoint and starts the run otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from fluxmusic.errors import InputError, MissingFilesError
from fluxmusic.training.checkpoint import clean_stale, latest_checkpoint
from fluxmusic.training.config import CONFIG_NAME, SectionedConfig

__all__ = ["TrainResult", "open_run_dir", "resume_point"]


@dataclass
class TrainResult:
    """What a finished run left behind.

    Attributes:
        run_dir: The run folder.
        step: Optimizer steps taken.
        checkpoint: The newest checkpoint.
        export: The exported model (``RUN_DIR/export``, components ``RUN_DIR/final``) when written (rank 0).
        last_loss: Mean loss of the last log interval (all ranks).
        model: This rank's trained module (unwrapped; sharded DTensors under FSDP).
    """

    run_dir: Path
    step: int
    checkpoint: Path | None
    export: Path | None
    last_loss: float | None
    model: nn.Module | None = None


def resume_point(run_dir: str | os.PathLike[str], resume: str | os.PathLike[str] | None) -> Path | None:
    """The checkpoint a run starts from (None: a fresh start), after checking the request against the folder.

    Args:
        run_dir: The config's ``run.dir``.
        resume: None (a new run), a run folder (must be ``run_dir``), or ``"auto"`` (resume ``run_dir`` if
            it holds a checkpoint, else start it).

    Raises:
        ValueError: ``resume`` is another folder, or a new run would overwrite checkpoints.
        FileNotFoundError: nothing to resume from.
    """
    run_dir = Path(run_dir)
    if resume == "auto":
        resume = run_dir if latest_checkpoint(run_dir) is not None else None
    if resume is None:
        if latest_checkpoint(run_dir) is not None:
            raise InputError(
                f"{run_dir} already holds checkpoints; pass --resume {run_dir} or choose a new run.dir"
            )
        return None
    if Path(resume).resolve() != run_dir.resolve():
        raise InputError(f"--resume {resume} but run.dir is {run_dir}; resume a run in its own folder")
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise MissingFilesError(f"{run_dir} has no complete checkpoint to resume from")
    return checkpoint


def open_run_dir(run_dir: Path, config: SectionedConfig) -> None:
    """Create ``RUN_DIR/logs``, remove unfinished checkpoint writes, save the resolved config (rank 0)."""
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    clean_stale(run_dir)
    config.save_json(run_dir / CONFIG_NAME)
