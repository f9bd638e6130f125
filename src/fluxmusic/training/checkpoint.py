"""Run folders and training checkpoints, written atomically.

::

    RUN_DIR/
      train_config.json               the resolved TrainConfig (``--resume RUN_DIR`` reads it)
      latest                          name of the newest complete checkpoint (written atomically)
      checkpoints/step_000100/
        model.safetensors             the trained weights        (LoRA runs: adapter_model.safetensors,
        ema.safetensors               the EMA weights                         adapter_ema.safetensors,
        config.json                   {"model_type": "musicflux", "config": ..., "step", "train": ...}
        training_state.pt             optimizer, scheduler, step, data position, RNG states
                                      (plain tensors and containers: loads with weights_only=True)
      logs/metrics.csv, logs/skipped-r<rank>.jsonl, tensorboard/, samples/step_000100/*.wav, export/

A checkpoint is assembled in ``checkpoints/.tmp-step_000100-<pid>/`` and renamed into place only when
every file is written and flushed, so a crash at any moment leaves the previous checkpoint intact; stale
temporary folders are removed at the next start. A write that fails (a full disk) removes its temporary
folder and raises :class:`~fluxmusic.errors.WriteError` naming the file and the free space. Weights that
are not finite are never written (:class:`~fluxmusic.training.guard.NonFiniteError`), so ``keep_last``
never rotates the last finite checkpoint away. ``load_musicflux(".../ema.safetensors")`` loads the
EMA weights (its ``config.json`` rebuilds the model).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from fluxmusic.checkpoints import CheckpointError
from fluxmusic.errors import WriteError
from fluxmusic.files import atomic_write, describe_write_error
from fluxmusic.training.faults import maybe_kill
from fluxmusic.training.guard import NonFiniteError, nonfinite_tensors

__all__ = [
    "CHECKPOINT_RE",
    "KEEP_LAST",
    "checkpoint_name",
    "clean_stale",
    "latest_checkpoint",
    "list_checkpoints",
    "load_training_state",
    "read_weights",
    "save_checkpoint",
    "write_state",
]

logger = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^step_(\d{6,})$")
STATE_NAME = "training_state.pt"
LATEST_NAME = "latest"
KEEP_LAST = 3
"""Checkpoints kept by default (``run.keep_last``), the newest included."""


def checkpoint_name(step: int) -> str:
    """``step_000100`` for step 100."""
    return f"step_{step:06d}"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first, as ``(step, folder)``."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = CHECKPOINT_RE.match(path.name)
        if match and path.is_dir() and (path / STATE_NAME).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint: the one ``latest`` names, else the highest step found."""
    run_dir = Path(run_dir)
    pointer = run_dir / LATEST_NAME
    found = list_checkpoints(run_dir)
    if pointer.is_file():
        named = run_dir / "checkpoints" / pointer.read_text(encoding="utf-8").strip()
        if (named / STATE_NAME).is_file() and (not found or found[-1][1] == named):
            return named
    return found[-1][1] if found else None


def clean_stale(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary folders left by checkpoint writes that never finished; returns what was removed."""
    root = Path(run_dir) / "checkpoints"
    removed = []
    if root.is_dir():
        for path in root.iterdir():
            if path.name.startswith((".tmp-", ".trash-")):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    if removed:
        logger.info("removed %d unfinished checkpoint folder(s): %s", len(removed), [p.name for p in removed])
    return removed


def save_checkpoint(
    run_dir: str | os.PathLike[str],
    step: int,
    weights: Mapping[str, Mapping[str, Tensor]],
    config_json: Mapping[str, Any],
    training_state: Mapping[str, Any],
    extra_files: Mapping[str, Callable[[Path], None]] | None = None,
    keep_last: int = KEEP_LAST,
) -> Path:
    """Write checkpoint ``step`` atomically, point ``latest`` at it, and prune old checkpoints.

    Call on rank 0 only, after every rank contributed its part of ``training_state``.

    Args:
        run_dir: The run folder.
        step: Optimizer step.
        weights: File name -> state dict, e.g. ``{"model.safetensors": ..., "ema.safetensors": ...}``.
        config_json: Contents of ``config.json``.
        training_state: Optimizer, scheduler, position, RNG (plain tensors and containers only).
        extra_files: File name -> writer(path) for anything else (e.g. ``adapter_config.json``).
        keep_last: Checkpoints to keep, this one included.

    Returns:
        The checkpoint folder.
    """
    run_dir = Path(run_dir)
    root = run_dir / "checkpoints"
    name = checkpoint_name(step)
    _refuse_nonfinite(run_dir, name, weights)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    current = tmp
    try:
        tmp.mkdir()
        for filename, state in weights.items():
            current = tmp / filename
            tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
            save_file(tensors, str(current), metadata={"format": "pt", "step": str(step)})
        current = tmp / "config.json"
        current.write_text(json.dumps(config_json, indent=2, default=str) + "\n", encoding="utf-8")
        for filename, write in (extra_files or {}).items():
            current = tmp / filename
            write(current)
        maybe_kill("kill-in-checkpoint", step)
        current = tmp / STATE_NAME
        write_state(dict(training_state), current)
        for path in tmp.iterdir():
            current = path
            _fsync_file(path)
        _fsync_dir(tmp)
    except (OSError, SafetensorError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, SafetensorError) and "IoError" not in str(err):
            raise  # not the file system's refusal: a bug
        raise _write_error(current, err) from None
    final = root / name
    if final.exists():  # an older run's checkpoint of the same step (resumed from further back)
        trash = root / f".trash-{name}-{os.getpid()}"
        os.rename(final, trash)
        os.rename(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(tmp, final)
    _fsync_dir(root)
    atomic_write(run_dir / LATEST_NAME, lambda t: Path(t).write_text(name + "\n", encoding="utf-8"))
    for _, old in list_checkpoints(run_dir)[:-keep_last] if keep_last > 0 else []:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
            logger.info("removed old checkpoint %s", old.name)
    logger.info("saved checkpoint %s", final)
    return final


def write_state(state: dict[str, Any], path: Path) -> None:
    """Write ``training_state.pt`` through a Python file, so a full disk raises ``OSError``."""
    with open(path, "wb") as f:
        torch.save(state, f)


def _write_error(path: Path, err: OSError | SafetensorError) -> WriteError:
    if isinstance(
        err, SafetensorError
    ):  # safetensors reports an I/O error as "... IoError(Os { code: 28, ..."
        code = re.search(r"code: (\d+)", str(err))
        number = int(code.group(1)) if code else errno.EIO
        err = OSError(number, os.strerror(number))
    error = WriteError(describe_write_error(path, err))
    error.errno = err.errno
    return error


def _refuse_nonfinite(run_dir: Path, name: str, weights: Mapping[str, Mapping[str, Tensor]]) -> None:
    bad = nonfinite_tensors(weights)
    if bad:
        files = ", ".join(f"{file} ({len(keys)} tensor(s), e.g. {keys[0]})" for file, keys in bad.items())
        last = latest_checkpoint(run_dir)
        raise NonFiniteError(
            f"not writing checkpoint {name}: its weights are not finite in {files}; the run stops, its last "
            f"checkpoint is {last.name if last else 'none'}; resume from it with a lower optim.lr or check "
            "the data"
        )


def read_weights(path: Path) -> dict[str, Tensor]:
    """Tensors of a checkpoint's safetensors file.

    Raises:
        CheckpointError: missing or unreadable (one line naming the file and what to do).
    """
    if not path.is_file():
        raise CheckpointError(f"{path} not found: {path.parent} is not a complete training checkpoint")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(_damaged(path, err)) from None


def _damaged(path: Path, err: BaseException) -> str:
    reason = (str(err).splitlines() or [type(err).__name__])[0].split(". ")[0]
    checkpoint = path.parent
    earlier = [c for _, c in list_checkpoints(checkpoint.parent.parent) if c != checkpoint]
    fix = (
        f"delete {checkpoint} to resume from {earlier[-1].name}"
        if earlier
        else "it is the run's only checkpoint: start the run again"
    )
    return f"cannot read {path}: {reason}; the checkpoint is damaged: {fix}"


def load_training_state(checkpoint: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``training_state.pt`` safely (``weights_only=True``).

    Raises:
        CheckpointError: missing or unreadable.
    """
    path = Path(checkpoint) / STATE_NAME
    if not path.is_file():
        raise CheckpointError(f"{path} not found: {checkpoint} is not a complete training checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file: say which one
        raise CheckpointError(_damaged(path, err)) from None
