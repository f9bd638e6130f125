"""What every trainer does with its run folder: lock it, decide where to start, open it, report the result.

The rules (the same for the transformer and the component trainers):

- one training at a time: a run holds ``RUN_DIR/.lock`` (an exclusive ``flock``, with its pid) from start
  to end; a second one fails at once naming the holder (:class:`RunLock`);
- a new run needs a folder without checkpoints; ``--resume RUN_DIR`` continues ``RUN_DIR`` from its
  newest complete checkpoint (and needs one); ``--auto-resume`` does that when there is a checkpoint and
  starts the run otherwise;
- a resume may change only the keys of its config's ``RESUMABLE`` (the schedule, logging, the optimizer's
  hyper-parameters, ...), and those changes are applied; anything else a checkpoint fixes (the model, the
  data, the batch) is refused (:func:`check_resume`), so the recorded config is always what runs.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from types import TracebackType

from torch import nn

from fluxmusic.errors import InputError, MissingFilesError
from fluxmusic.training.checkpoint import clean_stale, latest_checkpoint
from fluxmusic.training.config import CONFIG_NAME, SectionedConfig, read_config
from fluxmusic.training.distributed import DistContext

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "LOCK_NAME",
    "RunInUseError",
    "RunLock",
    "TrainResult",
    "check_resume",
    "open_run_dir",
    "resume_point",
]

logger = logging.getLogger(__name__)

LOCK_NAME = ".lock"


class RunInUseError(InputError):
    """Another training holds the run folder."""


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


def open_run_dir(run_dir: Path) -> None:
    """Create ``RUN_DIR/logs`` and remove unfinished checkpoint writes (rank 0, holding the lock).

    The resolved config is saved (``config.save_json(RUN_DIR / CONFIG_NAME)``) once the run has started
    or resumed, so a refused or failed resume leaves the record as it was.
    """
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    clean_stale(run_dir)


def check_resume(run_dir: Path, config: SectionedConfig) -> None:
    """Refuse a resume whose config changes keys the checkpoint fixes (every rank; before any write).

    Compares ``config`` with the run's saved ``train_config.json``: keys matching ``config.RESUMABLE``
    may change (the trainers apply them), any other change raises.

    Raises:
        InputError: a key outside ``RESUMABLE`` differs; the message names it, its old and new value.
    """
    path = run_dir / CONFIG_NAME
    if not path.is_file():
        return
    run_dir_override = f"run.dir={json.dumps(str(config.run.dir))}"  # type: ignore[attr-defined]
    saved = type(config).from_dict(read_config(path, [run_dir_override]))
    old, new = saved.to_dict(), config.to_dict()
    changed = [(s, k) for s, keys in new.items() for k, v in keys.items() if old.get(s, {}).get(k) != v]
    refused = [(s, k) for s, k in changed if not any(fnmatchcase(f"{s}.{k}", p) for p in config.RESUMABLE)]
    if refused:
        what = ", ".join(f"{s}.{k} ({old[s][k]!r} -> {new[s][k]!r})" for s, k in refused)
        raise InputError(
            f"cannot change {what} when resuming {run_dir}: the checkpoint was trained with the old value; "
            f"a resume may change only {', '.join(config.RESUMABLE)}; start a new run.dir to change the rest"
        )
    if changed:
        logger.info("resuming with changed %s", ", ".join(f"{s}.{k}" for s, k in changed))


class RunLock:
    """An exclusive lock on a run folder, held for the whole run: ``flock`` on ``RUN_DIR/.lock``.

    The file holds the holder's pid, for the message a second training gets. The kernel releases the lock
    when the holder ends, however it ends (even ``SIGKILL``), so a file left behind never blocks a run.
    Under ``torchrun`` rank 0 holds it (:meth:`acquire_on`): the other ranks write nothing.

    Args:
        run_dir: The run folder (created when missing).
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Create the folder and take the lock.

        Raises:
            RunInUseError: another process holds it (the message names its pid).
            InputError: ``run_dir`` is a file, or cannot be created where it is.
        """
        run_dir = self.run_dir
        if run_dir.exists() and not run_dir.is_dir():
            raise InputError(f"run.dir {run_dir} is a file, not a folder; choose another run.dir")
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as err:
            raise InputError(
                f"cannot create the run folder {run_dir}: {err.strerror or err}; choose another run.dir"
            ) from None
        if fcntl is None:  # pragma: no cover
            logger.warning("no file locks on this platform: make sure no other training uses %s", run_dir)
            return self
        fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)  # e.g. a file system without locks
                logger.warning("cannot lock %s (%s): make sure no other training uses it", run_dir, err)
                return self
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunInUseError(
                f"{run_dir} is in use by another training (pid {holder}); wait for it to end or choose "
                "another run.dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def acquire_on(self, ctx: DistContext) -> RunLock:
        """Rank 0 takes the lock; every rank raises the same error when it cannot (a collective)."""
        error = None
        if ctx.is_main:
            try:
                self.acquire()
            except InputError as err:
                error = (type(err), str(err))
        first = ctx.all_gather_objects(error)[0]
        if first is not None:
            raise first[0](first[1])
        return self

    def release(self) -> None:
        """Let go of the lock (the file stays)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()
