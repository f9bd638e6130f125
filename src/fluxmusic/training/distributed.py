"""PyTorch's own distributed stack: ``torchrun`` environment, process groups, DDP and FSDP2 wrapping.

One process per device. Under ``torchrun`` (``WORLD_SIZE`` > 1) the process group uses NCCL on CUDA and
Gloo on CPU; a plain ``python -m fluxmusic train`` runs as a single process with no process group.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from fluxmusic.errors import InputError
from fluxmusic.ranks import Ranks

__all__ = ["GIANT_PRESETS", "DistContext", "choose_strategy", "init_distributed", "no_sync", "wrap_model"]

logger = logging.getLogger(__name__)

GIANT_PRESETS = ("giant", "giant_full", "biggiant")
"""Sizes sharded with FSDP by ``strategy = "auto"`` on several CUDA devices."""


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job: ``rank``, ``world_size`` and ``local_rank`` are the
    :class:`fluxmusic.ranks.Ranks` read from torchrun's environment (``world_size`` is its ``world``).

    Attributes:
        device: The device this process trains on.
        backend: ``nccl``, ``gloo`` or ``None`` (single process, no process group).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def is_main(self) -> bool:
        """Rank 0: logs, writes checkpoints, renders samples."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether a process group is running."""
        return self.backend is not None

    def barrier(self) -> None:
        """Wait for every rank (no-op in a single process)."""
        if self.distributed:
            dist.barrier()

    def all_gather_objects(self, obj: object) -> list[object]:
        """Every rank's ``obj`` (a one-element list in a single process)."""
        if not self.distributed:
            return [obj]
        out: list[object] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def all_reduce_mean(self, tensor: Tensor) -> Tensor:
        """Mean over ranks, in place (no-op in a single process)."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            tensor /= self.world_size
        return tensor

    def shutdown(self) -> None:
        """Destroy the process group if this process started one."""
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def _pick_device(preference: str, local_rank: int) -> torch.device:
    if preference == "cpu" or (preference == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InputError("run.device is 'cuda' but CUDA is not available; use run.device = 'cpu' or 'auto'")
    if ":" in preference:
        return torch.device(preference)
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def init_distributed(device: str = "auto", timeout_minutes: float = 30.0) -> DistContext:
    """Read the ``torchrun`` environment, pick this rank's device and start the process group.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        timeout_minutes: Collective timeout.

    Returns:
        The :class:`DistContext` (single-process when ``WORLD_SIZE`` is unset or 1).
    """
    ranks = Ranks.from_env()
    world, rank, local_rank = ranks.world, ranks.rank, ranks.local_rank
    dev = _pick_device(device, local_rank)
    if world <= 1:
        return DistContext(0, 1, 0, dev, None)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend,
            timeout=datetime.timedelta(minutes=timeout_minutes),
            device_id=dev if dev.type == "cuda" else None,
        )
    logger.info("rank %d/%d on %s (%s)", rank, world, dev, backend)
    return DistContext(rank, world, local_rank, dev, backend)


def choose_strategy(requested: str, preset: str, ctx: DistContext) -> str:
    """Resolve ``auto``: no wrapper for one process, FSDP for giant sizes on CUDA, else DDP."""
    if requested != "auto":
        if requested != "none" and not ctx.distributed:
            logger.info("run.strategy=%s with a single process: running unwrapped", requested)
            return "none"
        if requested == "none" and ctx.distributed:
            raise InputError("run.strategy = 'none' cannot run under torchrun; use ddp or fsdp")
        return requested
    if not ctx.distributed:
        return "none"
    return "fsdp" if preset in GIANT_PRESETS and ctx.device.type == "cuda" else "ddp"


def wrap_model(model: nn.Module, strategy: str, ctx: DistContext) -> nn.Module:
    """Wrap for data parallelism.

    ``ddp``: ``DistributedDataParallel`` (parameters broadcast from rank 0 at construction).
    ``fsdp``: FSDP2 ``fully_shard`` on every transformer block, then on the root; parameters become
    sharded DTensors, gradients are reduce-scattered.
    ``none``: the model itself.
    """
    if strategy == "none":
        return model
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        warnings.filterwarnings("ignore", message=".*returned a view tensor.*")
        for block in [*model.double_blocks, *model.single_blocks]:  # type: ignore[attr-defined]
            fully_shard(block)
        fully_shard(model)
        return model
    raise ValueError(f"unknown strategy {strategy!r}")


def unwrap(model: nn.Module) -> nn.Module:
    """The module under a DDP wrapper (FSDP2 modules are their own)."""
    return getattr(model, "module", model)


@contextlib.contextmanager
def no_sync(model: nn.Module, strategy: str, enabled: bool) -> Iterator[None]:
    """Skip the gradient all-reduce / reduce-scatter for an accumulation micro-batch."""
    if not enabled or strategy == "none":
        yield
        return
    if strategy == "ddp":
        with model.no_sync():  # type: ignore[operator]
            yield
        return
    model.set_requires_gradient_sync(False)  # type: ignore[operator]
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)  # type: ignore[operator]
