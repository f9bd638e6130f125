"""Saving and restoring a run's full state: weights, EMA, optimizer, scheduler, data position, RNG.

Full (unsharded) state dicts are gathered with ``torch.distributed.checkpoint.state_dict`` helpers, which
handle plain modules, DDP and FSDP2 alike (optimizer state is keyed by parameter name, not position).
Every rank's RNG state is gathered into rank 0's ``training_state.pt``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fluxmusic.checkpoints import CheckpointError
from fluxmusic.data.dataset import DataPosition
from fluxmusic.training.checkpoint import load_training_state, read_weights, save_checkpoint
from fluxmusic.training.config import TrainConfig
from fluxmusic.training.distributed import DistContext
from fluxmusic.training.ema import EMA
from fluxmusic.training.optim import rebase_schedule, set_hyperparameters

__all__ = ["RunState", "Trainee", "restore", "save"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class RunState:
    """Counters of a run (everything else lives in the modules and the optimizer).

    Attributes:
        step: Optimizer steps taken.
        position: Data position after the last consumed micro-batch.
        samples: Training samples seen (all ranks).
        skipped: Items skipped at runtime (all ranks, counted once per occurrence).
        skipped_nonfinite: Optimizer steps skipped for a non-finite loss or gradient norm.
        empty_batches: Micro-batches without a usable item (all ranks).
    """

    step: int = 0
    position: DataPosition = DataPosition()
    samples: int = 0
    skipped: int = 0
    skipped_nonfinite: int = 0
    empty_batches: int = 0


@dataclass(frozen=True)
class Trainee:
    """What a checkpoint holds the state of, and the run it belongs to: the (wrapped) model, its EMA,
    optimizer and schedule, the config and this process's place in the job."""

    config: TrainConfig
    ctx: DistContext
    model: nn.Module
    ema: EMA
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler


def _options(**kwargs: Any) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **kwargs)


def _rng_state(ctx: DistContext) -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if ctx.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(ctx.device)
    return state


def save(run_dir: Path, trainee: Trainee, state: RunState) -> Path | None:
    """Write checkpoint ``state.step``; a collective (rank 0 writes and gets the folder, others None)."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    config, ctx, model, ema = trainee.config, trainee.ctx, trainee.model, trainee.ema
    trainable = set(ema.names)
    full = get_model_state_dict(model, options=_options(cpu_offload=True))
    weights = {k: v for k, v in full.items() if k in trainable}
    ema_state = ema.full_state()
    optim_state = get_optimizer_state_dict(model, trainee.optimizer, options=_options(cpu_offload=True))
    rng = ctx.all_gather_objects(_rng_state(ctx))
    folder = None
    if ctx.is_main:
        training_state = {
            "version": FORMAT_VERSION,
            "step": state.step,
            "data": state.position.to_dict(),
            "samples": state.samples,
            "skipped": state.skipped,
            "skipped_nonfinite": state.skipped_nonfinite,
            "empty_batches": state.empty_batches,
            "world_size": ctx.world_size,
            "optimizer": optim_state,
            "scheduler": trainee.scheduler.state_dict(),
            "rng": rng,
        }
        mf = config.model.musicflux()
        config_json = {
            "model_type": "musicflux",
            "config": mf.to_dict(),
            "step": state.step,
            "train": config.to_dict(),
        }
        if config.lora.enabled:
            from fluxmusic.model.lora import ADAPTER_CONFIG, adapter_state, write_adapter_config

            lora_cfg = model.peft_config["default"]  # type: ignore[index]
            files = {
                "adapter_model.safetensors": adapter_state(weights),
                "adapter_ema.safetensors": adapter_state(ema_state),
            }
            extra = {ADAPTER_CONFIG: lambda path: write_adapter_config(path, lora_cfg)}
        else:
            files = {"model.safetensors": weights, "ema.safetensors": ema_state}
            extra = {}
        folder = save_checkpoint(
            run_dir, state.step, files, config_json, training_state, extra, config.run.keep_last
        )
    ctx.barrier()
    return folder


def restore(checkpoint: Path, trainee: Trainee) -> RunState:
    """Load a checkpoint into the (wrapped) model, EMA, optimizer and scheduler; restore RNG states.

    Every rank reads the files. The optimizer's hyper-parameters and the peak learning rate are then set
    from ``config`` (a resume may change them; see ``TrainConfig.RESUMABLE``). Returns the run counters.

    Raises:
        CheckpointError: a file of the checkpoint is missing, damaged or does not fit the model (one line).
    """
    from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

    config, ctx, model = trainee.config, trainee.ctx, trainee.model
    training_state = load_training_state(checkpoint)
    if config.lora.enabled:
        from fluxmusic.model.lora import ADAPTER_NAME

        def named(file: str) -> dict[str, torch.Tensor]:
            raw = read_weights(checkpoint / file)
            out = {}
            for key, value in raw.items():
                for part in ("lora_A", "lora_B"):
                    key = key.replace(f".{part}.", f".{part}.{ADAPTER_NAME}.")
                out[key] = value
            return out

        weights, ema_state = named("adapter_model.safetensors"), named("adapter_ema.safetensors")
    else:
        weights, ema_state = (
            read_weights(checkpoint / "model.safetensors"),
            read_weights(checkpoint / "ema.safetensors"),
        )
    try:
        set_model_state_dict(model, weights, options=_options(strict=not config.lora.enabled))
        trainee.ema.load_full_state(ema_state)
    except (RuntimeError, KeyError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"the weights of {checkpoint} do not fit this run's model: {reason}") from None
    set_optimizer_state_dict(model, trainee.optimizer, training_state["optimizer"], options=_options())
    trainee.scheduler.load_state_dict(training_state["scheduler"])
    set_hyperparameters(trainee.optimizer, config.optim)
    rebase_schedule(trainee.optimizer, trainee.scheduler, config.optim.lr)
    rng = training_state["rng"]
    if training_state["world_size"] == ctx.world_size:
        mine = rng[ctx.rank]
        torch.set_rng_state(mine["cpu"])
        if "cuda" in mine and ctx.device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda"], ctx.device)
    else:
        logger.warning(
            "resuming with %d ranks from a run of %d: training continues, but not bit for bit",
            ctx.world_size,
            training_state["world_size"],
        )
    data = training_state["data"]
    position = DataPosition(int(data["epoch"]), int(data["batch"]))
    if training_state["world_size"] != ctx.world_size:
        consumed = position.batch * training_state["world_size"]
        position = DataPosition(position.epoch, -(-consumed // ctx.world_size))
    logger.info("resumed from %s (step %d)", checkpoint, training_state["step"])
    return RunState(
        int(training_state["step"]),
        position,
        int(training_state["samples"]),
        int(training_state["skipped"]),
        int(training_state.get("skipped_nonfinite", 0)),
        int(training_state.get("empty_batches", 0)),
    )
