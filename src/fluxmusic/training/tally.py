"""The transformer loop's running counts: a log interval's loss and throughput, and the run's totals.

Counting never syncs with the device: row counts are host ints (batch shapes), the loss of the steps taken
(a skipped step's loss, NaN or not, is left out) is a device tensor read once per log interval.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor

from fluxmusic.training.distributed import DistContext
from fluxmusic.training.metrics import MetricsLogger
from fluxmusic.training.state import RunState

__all__ = ["Tally", "log_interval"]


class Tally:
    """This rank's counts: the current log interval, and totals not yet summed over ranks."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.loss = torch.zeros((), device=device)  # per-row losses of the interval's steps taken
        self.loss_rows = torch.zeros((), device=device)  # and their rows
        self.rows = self.steps = 0  # rows and steps of the interval, taken or not (throughput)
        self.new_rows = self.new_skipped = self.new_empty = 0
        self._step_loss = torch.zeros((), device=device)
        self._step_rows = 0
        self.start = time.perf_counter()

    def add(self, per_row: Tensor, skipped_items: int) -> None:
        """One micro-batch: its per-row losses (none: every item was skipped) and the items skipped."""
        rows = per_row.numel()
        self._step_loss = self._step_loss + per_row.sum()
        self._step_rows += rows
        self.rows += rows
        self.new_rows += rows
        self.new_skipped += skipped_items
        self.new_empty += int(rows == 0)

    def end_step(self, skipped: bool | Tensor) -> None:
        """Close an optimizer step; its loss counts unless the step was skipped (a bool, or a 0-d tensor)."""
        if isinstance(skipped, bool):
            if not skipped:
                self.loss += self._step_loss
                self.loss_rows += self._step_rows
        else:
            taken = skipped == 0
            self.loss += torch.where(taken, self._step_loss, 0.0)
            self.loss_rows += taken * self._step_rows
        self._step_loss = torch.zeros((), device=self.device)
        self._step_rows = 0
        self.steps += 1

    def sync_totals(self, state: RunState, ctx: DistContext) -> None:
        """Add every rank's new rows, skipped items and empty micro-batches to the totals (a collective)."""
        counts = torch.tensor(
            [self.new_rows, self.new_skipped, self.new_empty], dtype=torch.float64, device=self.device
        )
        if ctx.distributed:
            torch.distributed.all_reduce(counts)
        state.samples += int(counts[0])
        state.skipped += int(counts[1])
        state.empty_batches += int(counts[2])
        self.new_rows = self.new_skipped = self.new_empty = 0

    def reset(self) -> None:
        self.loss.zero_()
        self.loss_rows.zero_()
        self.rows = self.steps = 0
        self.start = time.perf_counter()


def log_interval(
    tally: Tally,
    state: RunState,
    ctx: DistContext,
    metrics: MetricsLogger | None,
    grad_norm: Tensor,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    tokens_per_sample: int,
) -> float:
    """Sum the interval over ranks, log it on rank 0 and start a new one.

    Returns:
        The mean loss of the interval's steps taken (NaN when every one was skipped).
    """
    tally.sync_totals(state, ctx)
    totals = torch.stack([tally.loss, tally.loss_rows, torch.tensor(float(tally.rows), device=tally.device)])
    if ctx.distributed:
        torch.distributed.all_reduce(totals)
    loss_total, loss_rows, rows = totals.tolist()
    norm = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm)
    elapsed = time.perf_counter() - tally.start
    loss = loss_total / loss_rows if loss_rows else float("nan")
    if metrics is not None:
        metrics.log({
            "step": state.step, "epoch": state.position.epoch, "loss": loss,
            "lr": scheduler.get_last_lr()[0], "grad_norm": norm,
            "steps_per_s": tally.steps / elapsed, "samples_per_s": rows / elapsed,
            "tokens_per_s": rows * tokens_per_sample / elapsed,
            "samples": state.samples, "skipped": state.skipped, "elapsed_s": elapsed,
            "skipped_nonfinite": state.skipped_nonfinite, "empty_batches": state.empty_batches,
        })  # fmt: skip
    tally.reset()
    return loss
