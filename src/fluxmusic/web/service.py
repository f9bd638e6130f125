"""The model host behind the UI and the HTTP API: one pipeline, one worker thread, one bounded queue.

Every generation (text-to-music or an edit) is a :class:`Task`, checked before it is queued
(:mod:`fluxmusic.web.tasks`). :meth:`ModelService.submit` never waits: a full queue raises
:class:`~fluxmusic.web.errors.BusyError` at once (503 with ``Retry-After``). The worker runs one task
at a time, so the model never sees two requests at once and each caller gets its own ``Future``. The
sampler's steps are reported through :class:`Progress` (the UI's progress bar) by a thin view of the
pipeline whose ``denoise`` adds a step callback; the pipeline itself is not modified.
"""

from __future__ import annotations

import logging
import queue
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fluxmusic.web.errors import BusyError

if TYPE_CHECKING:
    from fluxmusic.pipeline.editing import InputAudio
    from fluxmusic.pipeline.outputs import AudioOutput
    from fluxmusic.pipeline.text_to_music import FluxMusicPipeline
    from fluxmusic.sampling import SampleSettings

logger = logging.getLogger(__name__)

__all__ = ["Job", "Limits", "ModelService", "Progress", "Result", "Task"]

OPERATIONS = ("text-to-music", "variation", "inpaint", "continuation")
"""What a task can ask for (the names the sidecars record)."""


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server.

    Attributes:
        max_duration: Longest clip (seconds) a request may ask for, and longest decoded upload.
        max_steps: Most sampler steps per request.
        max_prompt_chars: Longest prompt or negative prompt.
        max_body_bytes: Largest JSON request body.
        max_upload_bytes: Largest multipart body (the upload included).
        queue_size: Requests that may wait while one runs; more are refused with 503.
    """

    max_duration: float = 30.0
    max_steps: int = 200
    max_prompt_chars: int = 2000
    max_body_bytes: int = 64 * 1024
    max_upload_bytes: int = 20 * 2**20
    queue_size: int = 8

    def __post_init__(self) -> None:
        if not self.max_duration > 0 or self.max_steps < 1 or self.queue_size < 1:
            raise ValueError(
                f"limits must be positive, got max_duration={self.max_duration}, max_steps={self.max_steps}, "
                f"queue_size={self.queue_size}"
            )


@dataclass(frozen=True)
class Task:
    """One checked request: what to run, with resolved (seeded) settings.

    Attributes:
        operation: One of :data:`OPERATIONS`.
        prompt: The prompt.
        settings: Resolved settings with a seed (continuation: ``duration`` is the total length).
        audio: The decoded input of an edit.
        strength: Variation strength.
        regions: Inpainting regions, seconds.
    """

    operation: str
    prompt: str
    settings: SampleSettings
    audio: InputAudio | None = None
    strength: float | None = None
    regions: tuple[tuple[float, float], ...] | None = None


@dataclass
class Progress:
    """Where a running task is: ``step`` of ``steps`` in its ``window``-th sampling pass (from 1)."""

    step: int = 0
    steps: int = 0
    window: int = 0
    started: float | None = None

    @property
    def fraction(self) -> float:
        """Share of the current pass done, in [0, 1]."""
        return self.step / self.steps if self.steps else 0.0


@dataclass
class Result:
    """What a finished task gives: the pipeline's output and clip 0's sidecar (its resolved settings)."""

    output: AudioOutput
    sidecar: dict[str, Any]
    seconds: float


@dataclass
class Job:
    """A queued task, its future result and its progress."""

    task: Task
    future: Future = field(default_factory=Future)
    progress: Progress = field(default_factory=Progress)


class _StepReporter:
    """The pipeline seen through a ``denoise`` that reports every step to ``progress`` (everything else
    is the pipeline's own attribute)."""

    def __init__(self, pipe: FluxMusicPipeline, progress: Progress) -> None:
        self._pipe, self._progress = pipe, progress

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)

    def denoise(self, *args: Any, callback: Any = None, **kwargs: Any) -> Any:
        progress = self._progress
        settings = args[3] if len(args) > 3 else kwargs["settings"]
        progress.window, progress.step, progress.steps = progress.window + 1, 0, settings.steps

        def step(i: int, t: float, t_next: float, x: Any) -> Any:
            progress.step = i + 1
            return None if callback is None else callback(i, t, t_next, x)

        return self._pipe.denoise(*args, callback=step, **kwargs)


class ModelService:
    """One loaded pipeline served to many callers, one task at a time.

    Args:
        pipe: The pipeline (loaded once).
        model: The name it was loaded by (recorded in every sidecar, as ``fluxmusic generate`` does).
        limits: What one request may ask.
        workdir: A private folder for temporary files (made and removed by the service when None).
    """

    def __init__(
        self, pipe: FluxMusicPipeline, model: str, limits: Limits | None = None, workdir: Path | None = None
    ) -> None:
        self.pipe, self.model, self.limits = pipe, model, limits or Limits()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="fluxmusic-serve-"))
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=self.limits.queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.running: Job | None = None
        self._mean_seconds = 5.0
        self.served = 0

    @classmethod
    def load(
        cls, model: str = "bundled", device: str = "auto", dtype: str = "auto", limits: Limits | None = None
    ) -> ModelService:
        """Load ``model`` (``bundled``, a released size or a model folder) and start the worker."""
        from fluxmusic.pipeline.text_to_music import FluxMusicPipeline

        name = None if model == "bundled" else model
        pipe = FluxMusicPipeline.from_pretrained(name, device=device, dtype=dtype)
        return cls(pipe, model, limits).start()

    @property
    def run_record(self) -> dict[str, Any]:
        """How clips are made here (model, dtype, device, text mode), as the CLI's sidecars record it."""
        return {
            "model": self.model,
            "dtype": str(self.pipe.dtype).removeprefix("torch."),
            "device": str(self.pipe.device),
            "text_mode": "training",
        }

    def describe(self) -> dict[str, Any]:
        """The loaded model and this server's limits (``GET /v1/models``)."""
        from fluxmusic.flow.names import SAMPLERS

        spec, cfg = self.pipe.spec, self.pipe.transformer.config
        return {
            "id": self.model,
            "name": spec.name,
            "sample_rate": self.pipe.sample_rate,
            "default_duration": spec.default_duration,
            "max_duration": min(spec.max_duration, self.limits.max_duration),
            "defaults": self.pipe.settings().to_dict(),
            "samplers": list(SAMPLERS),
            "tempo_input": bool(cfg.has_tempo_input),
            "formats": ["wav", "flac"],
            "max_steps": self.limits.max_steps,
            "operations": list(OPERATIONS),
        }

    @property
    def waiting(self) -> int:
        """Tasks in the queue (not counting the running one)."""
        return self._queue.qsize()

    def start(self) -> ModelService:
        """Start the worker thread (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="fluxmusic-generate", daemon=True)
                self._thread.start()
        return self

    def submit(self, task: Task) -> Job:
        """Queue ``task``; never waits.

        Raises:
            BusyError: the queue is full.
        """
        job = Job(task)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            retry = max(1, round(self._mean_seconds * (self.limits.queue_size + 1)))
            raise BusyError(self.limits.queue_size, retry) from None
        return job

    def close(self) -> None:
        """Stop the worker after the running task, fail the waiting ones, remove the temporary files."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.future.cancel()
        if self._thread is not None:
            try:
                self._queue.put(None, timeout=1.0)
            except queue.Full:
                pass
            self._thread.join(timeout=30)
            self._thread = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if not job.future.set_running_or_notify_cancel():
                continue
            self.running = job
            job.progress.started = start = time.monotonic()
            try:
                output = self._run(job)
                seconds = time.monotonic() - start
                job.future.set_result(Result(output, output.sidecar(0, self.run_record), seconds))
                self._mean_seconds = 0.7 * self._mean_seconds + 0.3 * seconds
                self.served += 1
            except BaseException as err:  # noqa: BLE001 - the caller gets every failure
                job.future.set_exception(err)
            finally:
                self.running = None
                del job

    def _run(self, job: Job) -> AudioOutput:
        from fluxmusic.pipeline import editing, long_form
        from fluxmusic.pipeline.edit_inputs import EditRun

        task, pipe = job.task, _StepReporter(self.pipe, job.progress)
        run = EditRun(progress=False)
        if task.operation == "variation":
            return editing.vary(pipe, task.audio, task.prompt, task.settings, task.strength, run)
        if task.operation == "inpaint":
            return editing.inpaint(pipe, task.audio, task.prompt, task.settings, task.regions, run)
        if task.operation == "continuation":
            return long_form.continuation(pipe, task.audio, task.prompt, task.settings, None, run)
        if task.settings.duration > self.pipe.spec.default_duration:  # as ``fluxmusic generate`` does
            return long_form.long_form(pipe, task.prompt, task.settings, None, run)
        return type(self.pipe).generate(pipe, task.prompt, task.settings, progress=False)
