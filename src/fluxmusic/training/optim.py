"""AdamW and the one learning-rate schedule (linear warm-up, then constant, cosine or linear decay).

Every trainer uses it: the transformer through a ``LambdaLR`` (:func:`build_optimizer`), the component
trainers by setting the rate of each step from :func:`lr_multiplier` directly (:func:`set_lr`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from fluxmusic.training.sections import AdamWConfig

__all__ = [
    "adamw",
    "build_optimizer",
    "clip_and_step",
    "lr_multiplier",
    "rebase_schedule",
    "set_hyperparameters",
    "set_lr",
]


def lr_multiplier(config: AdamWConfig, max_steps: int) -> Callable[[int], float]:
    """``step -> factor`` of the peak learning rate (``step`` counts optimizer steps already taken).

    Warm-up rises linearly to 1 over ``warmup_steps``; afterwards the factor stays 1 (``constant``) or
    decays to ``min_lr_ratio`` at ``max_steps`` (``cosine`` or ``linear``).
    """
    warmup, floor = config.warmup_steps, config.min_lr_ratio

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if config.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
        shape = 0.5 * (1 + math.cos(math.pi * progress)) if config.schedule == "cosine" else 1 - progress
        return floor + (1 - floor) * shape

    return factor


def adamw(params: Iterable[nn.Parameter], config: AdamWConfig, fused: bool = False) -> torch.optim.AdamW:
    """AdamW over ``params`` with the peak learning rate of ``config``."""
    return torch.optim.AdamW(
        list(params),
        lr=config.lr,
        betas=config.betas,
        eps=config.eps,
        weight_decay=config.weight_decay,
        fused=fused or None,
    )


def build_optimizer(
    params: Iterable[nn.Parameter], config: AdamWConfig, max_steps: int, fused: bool = False
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over ``params`` and its ``LambdaLR`` schedule.

    Args:
        params: Trainable parameters.
        config: Optimizer settings.
        max_steps: Optimizer steps of the run (the decay horizon).
        fused: Use the fused CUDA kernel.
    """
    optimizer = adamw(params, config, fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(config, max_steps))
    return optimizer, scheduler


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def set_hyperparameters(optimizer: torch.optim.Optimizer, config: AdamWConfig) -> None:
    """Set betas, eps and weight decay of every group from ``config``.

    Loading an optimizer's state brings back the values it was saved with; a resumed run calls this after,
    so that ``--resume --set optim.betas=...`` is what runs, as the recorded config says.
    """
    for group in optimizer.param_groups:
        group.update(betas=config.betas, eps=config.eps, weight_decay=config.weight_decay)


def rebase_schedule(
    optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LambdaLR, lr: float
) -> None:
    """Make ``lr`` the peak learning rate of a restored ``LambdaLR`` schedule (its state holds the old one).

    The rate of the next step becomes ``lr x factor(steps taken)``, exactly what an uninterrupted run with
    this ``lr`` would use; with an unchanged ``lr`` nothing changes, bit for bit.
    """
    scheduler.base_lrs = [lr for _ in optimizer.param_groups]
    for group, factor in zip(optimizer.param_groups, scheduler.lr_lambdas):
        group["initial_lr"] = lr
        group["lr"] = lr * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]  # what get_last_lr() reports


def clip_and_step(
    params: list[nn.Parameter], optimizer: torch.optim.Optimizer, grad_clip: float
) -> tuple[Tensor, bool | Tensor]:
    """Clip the global gradient norm to ``grad_clip`` (0: no clipping), step unless it is not finite, and
    zero the gradients.

    A non-finite norm (a NaN or infinite gradient; a non-finite loss through
    :func:`~fluxmusic.training.guard.guard_loss`) skips the step: weights and optimizer state stay as they
    were. A fused AdamW skips on the device (its ``found_inf`` input) without a host sync; any other
    optimizer reads one boolean per step (free on CPU).

    Returns:
        The norm before clipping (a device tensor: reading it is a host sync), and whether the step was
        skipped: a bool when decided on the host, else a 0-d float tensor (1.0: skipped).
    """
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf"))
    if hasattr(norm, "full_tensor"):  # FSDP2: the norm of the sharded gradients is a DTensor
        norm = norm.full_tensor()
    bad = ~torch.isfinite(norm)
    skipped: bool | Tensor
    if all(group.get("fused") for group in optimizer.param_groups):
        skipped = bad.float()
        optimizer.found_inf = skipped  # type: ignore[attr-defined]  # the fused kernel skips on the device
        try:
            optimizer.step()
        finally:
            del optimizer.found_inf  # type: ignore[attr-defined]
    else:
        skipped = bool(bad)
        if not skipped:
            optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return norm, skipped
