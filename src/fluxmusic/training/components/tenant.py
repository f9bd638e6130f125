"""The loop every component trainer runs: a tenant brings its modules and one optimizer step, the
framework does the rest.

The rest is the transformer trainer's: the run folder rules (:class:`~fluxmusic.training.runs.RunLock`,
:func:`~fluxmusic.training.runs.resume_point`, :func:`~fluxmusic.training.runs.check_resume`), the skipping
of non-finite steps (:mod:`fluxmusic.training.guard`),
the checkpoint format (:func:`~fluxmusic.training.checkpoint.save_checkpoint`: an atomically renamed
folder, the ``latest`` pointer, ``keep_last``), the learning-rate schedule
(:func:`~fluxmusic.training.optim.lr_multiplier`, a pure function of the step), ``logs/metrics.csv``
(:class:`~fluxmusic.training.metrics.MetricsLogger`) and the fault points of the crash tests
(:func:`~fluxmusic.training.faults.maybe_kill`). A component checkpoint::

    checkpoints/step_000200/
      model.safetensors      the trained module (the vocoder's discriminator: discriminator.safetensors)
      config.json            {"model_type": ..., "config": <the module's config>, "step": ..., "train": ...}
      training_state.pt      step, optimizer states, torch.Generator states, extra tensors

Every random draw comes from the tenant's generators, whose states are saved, and the schedule depends on
the step alone, so a resumed run ends bit for bit where an uninterrupted one does (on CPU).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from fluxmusic.checkpoints import CheckpointError
from fluxmusic.data.clip_bank import ClipBank, snapshot_clips
from fluxmusic.files import atomic_write_text
from fluxmusic.training.checkpoint import (
    latest_checkpoint,
    load_training_state,
    read_weights,
    save_checkpoint,
)
from fluxmusic.training.components.sections import ClipDataConfig, ComponentTrainConfig
from fluxmusic.training.config import CONFIG_NAME, absolute_paths
from fluxmusic.training.faults import maybe_kill
from fluxmusic.training.guard import NonFiniteGuard
from fluxmusic.training.metrics import MetricsLogger
from fluxmusic.training.optim import lr_multiplier, set_hyperparameters, set_lr
from fluxmusic.training.runs import RunLock, TrainResult, check_resume, open_run_dir, resume_point

__all__ = ["Tenant", "load_clip_banks", "run_component"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


C = TypeVar("C", bound=ComponentTrainConfig)


@dataclass
class Tenant:
    """One component run as the loop sees it.

    Attributes:
        model: The trained module (what the run returns and exports).
        modules: Checkpoint name -> module; ``NAME.safetensors`` holds its state dict, and the optimizer
            of the same name trains it.
        optimizers: Name -> AdamW (its learning rate is set before every step).
        generators: Name -> ``torch.Generator`` (every random draw of a step; states are checkpointed).
        step: One optimizer step, given the steps done so far: draws a batch, steps the optimizers (with
            :func:`~fluxmusic.training.optim.clip_and_step`, backward through
            :func:`~fluxmusic.training.guard.guard_loss`) and returns the loss parts (device tensors,
            ``"loss"`` and ``"grad_norm"`` among them) and ``"skipped"`` (whether the step was skipped:
            :func:`~fluxmusic.training.guard.any_skipped` of its optimizers' steps).
        parts: Names ``step`` may return besides ``grad_norm`` (the ``metrics.csv`` columns).
        model_type: ``config.json``'s name of the module type.
        model_config: The module's own config (``config.json``: a checkpoint alone rebuilds it).
        tensors: Other tensors a checkpoint keeps (restored into this dict by key).
        evaluate: Held-out metrics, logged every ``run.eval_every`` steps (None: no evaluation).
        export: Saves the finished model into the given folder (``RUN_DIR/final``) and returns what
            ``RUN_DIR/final_summary.json`` records besides ``step`` (None: no export).
        optional: Modules a checkpoint may lack; they then start fresh (e.g. a discriminator switched on
            when a reconstruction-only run is continued).
    """

    model: nn.Module
    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    generators: dict[str, torch.Generator]
    step: Callable[[int], dict[str, Tensor]]
    parts: tuple[str, ...]
    model_type: str
    model_config: dict[str, Any]
    tensors: dict[str, Tensor] = field(default_factory=dict)
    evaluate: Callable[[], dict[str, float]] | None = None
    export: Callable[[Path], dict[str, Any]] | None = None
    optional: frozenset[str] = frozenset()


def load_clip_banks(
    run_dir: str | os.PathLike[str], data: ClipDataConfig, keep_waveforms: bool = True
) -> tuple[ClipBank, ClipBank | None]:
    """The training bank and the held-out bank (None when ``data.eval_clips`` is 0) of a run.

    The clip lists are snapshotted into the run folder (``RUN_DIR/clips_{split}.json``, reused on resume).
    """
    train_paths = snapshot_clips(run_dir, data.dir, "train", data.max_clips)
    bank = ClipBank.load(data.dir, train_paths, data.clip_seconds, keep_waveforms=keep_waveforms)
    eval_bank = None
    if data.eval_clips:
        test_paths = snapshot_clips(run_dir, data.dir, "test", data.eval_clips)
        eval_bank = ClipBank.load(data.dir, test_paths, data.clip_seconds, keep_waveforms=keep_waveforms)
    return bank, eval_bank


def run_component(
    config: C, resume: str | os.PathLike[str] | None, build: Callable[[C], Tenant]
) -> TrainResult:
    """Train (or resume) a component run and export it when ``run.max_steps`` is reached.

    Args:
        config: The run's config.
        resume: None (a new run), the run folder, or ``"auto"``
            (see :func:`~fluxmusic.training.runs.resume_point`).
        build: Builds the tenant once the run folder is open (its clip lists are snapshotted there).

    Returns:
        The :class:`~fluxmusic.training.runs.TrainResult` (``export``: ``RUN_DIR/final`` when written).
    """
    config = absolute_paths(config)
    run_dir = Path(config.run.dir)
    if config.run.threads:
        torch.set_num_threads(config.run.threads)
    with RunLock(run_dir):
        checkpoint = resume_point(run_dir, resume)
        if checkpoint is not None:
            check_resume(run_dir, config)
        open_run_dir(run_dir)
        tenant = build(config)
        step, skipped = _restore(checkpoint, tenant, config) if checkpoint is not None else (0, 0)
        config.save_json(run_dir / CONFIG_NAME)  # what runs, changes of a resume included
        step, last_loss = _loop(config, tenant, step, NonFiniteGuard(config.run.max_nonfinite, skipped))
        export = None
        if config.run.export and tenant.export is not None and step >= config.run.max_steps:
            export = run_dir / "final"
            summary = {"step": step, **tenant.export(export)}
            atomic_write_text(run_dir / "final_summary.json", json.dumps(summary, indent=2) + "\n")
            logger.info("final: %s", summary)
    return TrainResult(run_dir, step, latest_checkpoint(run_dir), export, last_loss, tenant.model)


def _loop(
    config: ComponentTrainConfig, tenant: Tenant, step: int, guard: NonFiniteGuard
) -> tuple[int, float | None]:
    """Train from ``step`` to the end of this invocation; returns (steps done, last logged loss)."""
    run = config.run
    columns = ("step", *tenant.parts, "lr", "grad_norm", "s_per_step", "cpu_s_per_step", "elapsed_s")
    columns = (*columns, "skipped_nonfinite")
    metrics = MetricsLogger(Path(run.dir), step, run.tensorboard, run.max_steps, columns, columns[1:-2])
    _set_mode(tenant, training=True)
    try:
        return _steps(config, tenant, step, metrics, guard)
    finally:
        metrics.close()
        _set_mode(tenant, training=False)


def _steps(
    config: ComponentTrainConfig, tenant: Tenant, step: int, metrics: MetricsLogger, guard: NonFiniteGuard
) -> tuple[int, float | None]:
    """The steps of this invocation; a skipped (non-finite) step is left out of the logged means."""
    run = config.run
    factor = lr_multiplier(config.optim, run.max_steps)
    end = min(run.stop_at, run.max_steps) if step < run.stop_at else run.max_steps
    started = time.perf_counter()
    clock = (started, time.process_time())
    sums: dict[str, Tensor] = {}
    count, taken, last_loss = 0, 0, None
    while step < end:
        lr = config.optim.lr * factor(step)
        for optimizer in tenant.optimizers.values():
            set_lr(optimizer, lr)
        parts = tenant.step(step)
        skipped = bool(parts.pop("skipped", False))  # the tenants' optimizers decide on the host
        if not skipped:
            for key, value in parts.items():
                sums[key] = sums[key] + value if key in sums else value
            taken += 1
        step += 1
        count += 1
        guard.record(skipped, step)
        if step % run.log_every == 0 or step == end:
            wall, cpu = time.perf_counter() - clock[0], time.process_time() - clock[1]
            row = {key: float(value) / taken for key, value in sums.items()}
            last_loss = row.get("loss", float("nan"))
            metrics.log({
                "step": step, **row, "lr": lr, "s_per_step": wall / count, "cpu_s_per_step": cpu / count,
                "elapsed_s": wall, "skipped_nonfinite": guard.total,
            })  # fmt: skip
            sums, count, taken, clock = {}, 0, 0, (time.perf_counter(), time.process_time())
        if tenant.evaluate is not None and run.eval_every and step % run.eval_every == 0:
            _evaluate(tenant, step)
        out_of_time = run.max_minutes > 0 and time.perf_counter() - started > 60 * run.max_minutes
        if step % run.checkpoint_every == 0 or step == end or out_of_time:
            _save(config, tenant, step, guard.total)
        maybe_kill("kill-after-step", step)
        if out_of_time:
            logger.info(
                "stopping after %.1f minutes at step %d (resume the run to go on)", run.max_minutes, step
            )
            break
    return step, last_loss


def _set_mode(tenant: Tenant, training: bool) -> None:
    for module in (tenant.model, *tenant.modules.values()):
        module.train(training)


def _evaluate(tenant: Tenant, step: int) -> None:
    _set_mode(tenant, training=False)
    results = tenant.evaluate() if tenant.evaluate is not None else {}
    logger.info("step %d held-out %s", step, ", ".join(f"{k} {v:.4f}" for k, v in results.items()))
    _set_mode(tenant, training=True)


def _save(config: ComponentTrainConfig, tenant: Tenant, step: int, skipped_nonfinite: int) -> Path:
    training_state = {
        "version": FORMAT_VERSION,
        "step": step,
        "skipped_nonfinite": skipped_nonfinite,
        "optimizer": {name: opt.state_dict() for name, opt in tenant.optimizers.items()},
        "rng": {name: gen.get_state() for name, gen in tenant.generators.items()},
        "tensors": dict(tenant.tensors),
    }
    config_json = {
        "model_type": tenant.model_type,
        "config": tenant.model_config,
        "step": step,
        "train": config.to_dict(),
    }
    weights = {f"{name}.safetensors": module.state_dict() for name, module in tenant.modules.items()}
    return save_checkpoint(
        config.run.dir, step, weights, config_json, training_state, keep_last=config.run.keep_last
    )


def _restore(checkpoint: Path, tenant: Tenant, config: ComponentTrainConfig) -> tuple[int, int]:
    """Load a checkpoint into the tenant; returns (its step, its count of skipped non-finite steps)."""
    state = load_training_state(checkpoint)
    for name, module in tenant.modules.items():
        path = checkpoint / f"{name}.safetensors"
        if name in tenant.optional and not path.is_file():
            logger.info("%s holds no %s; a fresh one starts at step %d", checkpoint, name, state["step"])
            continue
        try:
            module.load_state_dict(read_weights(path))
        except RuntimeError as err:
            reason = (str(err).strip().splitlines() or ["RuntimeError"])[0]
            raise CheckpointError(f"{path} does not fit this run's {name}: {reason}") from None
        tenant.optimizers[name].load_state_dict(state["optimizer"][name])
        set_hyperparameters(tenant.optimizers[name], config.optim)  # a resume may change them
    for name, gen in tenant.generators.items():
        gen.set_state(state["rng"][name])
    tenant.tensors.update({name: state["tensors"][name] for name in tenant.tensors})
    logger.info("resumed from %s (step %d)", checkpoint, state["step"])
    return int(state["step"]), int(state.get("skipped_nonfinite", 0))
