"""AdamW and the learning-rate schedule (linear warm-up, then constant, cosine or linear decay)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from fluxmusic.training.config import OptimConfig

__all__ = ["build_optimizer", "lr_multiplier"]


def lr_multiplier(config: OptimConfig, max_steps: int) -> Callable[[int], float]:
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


def build_optimizer(
    params: Iterable[nn.Parameter], config: OptimConfig, max_steps: int, fused: bool = False
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over ``params`` and its ``LambdaLR`` schedule.

    Args:
        params: Trainable parameters.
        config: Optimizer settings.
        max_steps: Optimizer steps of the run (the decay horizon).
        fused: Use the fused CUDA kernel.
    """
    optimizer = torch.optim.AdamW(
        list(params),
        lr=config.lr,
        betas=config.betas,
        eps=config.eps,
        weight_decay=config.weight_decay,
        fused=fused or None,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(config, max_steps))
    return optimizer, scheduler
