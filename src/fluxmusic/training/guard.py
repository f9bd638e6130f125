"""Non-finite numbers never reach the weights or a checkpoint; every trainer shares these rules.

One NaN (a corrupt file, an overflow) would otherwise turn every weight into NaN, and every checkpoint
after it, until ``keep_last`` has rotated the last good one away. So:

- :func:`guard_loss` folds a loss's finiteness into its gradients (a non-finite loss gives NaN
  gradients); the global gradient norm then decides alone, the same way on every rank after the
  all-reduce of DDP / FSDP;
- :func:`~fluxmusic.training.optim.clip_and_step` skips the optimizer step when that norm is not finite;
- :class:`NonFiniteGuard` counts the skipped steps (``skipped_nonfinite`` in ``metrics.csv``) and stops
  the run after ``run.max_nonfinite`` of them in a row (:class:`NonFiniteError`, one line);
- :func:`nonfinite_tensors` is what :func:`~fluxmusic.training.checkpoint.save_checkpoint` checks
  before writing anything: a checkpoint with non-finite weights (model or EMA) is never written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import Tensor

from fluxmusic.errors import InputError

__all__ = ["NonFiniteError", "NonFiniteGuard", "any_skipped", "guard_loss", "nonfinite_tensors"]

logger = logging.getLogger(__name__)


class NonFiniteError(InputError):
    """Training stopped on non-finite numbers (a diverging run, broken data); the message says what to do."""


def guard_loss(loss: Tensor) -> Tensor:
    """``loss``, whose gradients are NaN when its value is not finite (no host sync).

    The gradient of a mean does not depend on the mean's value, so a NaN in one row need not reach every
    gradient; multiplying by NaN makes sure it does, and the step is skipped. A finite loss is multiplied
    by exactly 1 (bit for bit unchanged).

    Shapes:
        loss: () -> ()
    """
    return loss * torch.where(torch.isfinite(loss.detach()), 1.0, float("nan"))


def any_skipped(*skipped: bool | Tensor) -> bool | Tensor:
    """Whether any of several optimizer steps of one training step was skipped (bools, or 0-d tensors)."""
    if all(isinstance(s, bool) for s in skipped):
        return any(skipped)
    return torch.stack([torch.as_tensor(s, dtype=torch.float32) for s in skipped]).amax()


def nonfinite_tensors(weights: Mapping[str, Mapping[str, Tensor]]) -> dict[str, list[str]]:
    """File name -> keys of its floating-point tensors that hold a NaN or an infinity (empty: all finite)."""
    bad = {}
    for filename, state in weights.items():
        keys = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if keys:
            bad[filename] = keys
    return bad


class NonFiniteGuard:
    """Counts optimizer steps skipped for a non-finite loss or gradient norm; stops after ``limit`` in a row.

    A skip decided on the host (a bool) is counted and checked at once; one decided on the device (a 0-d
    tensor, fused AdamW) is counted on the device and checked at :meth:`check` (the log interval and
    every checkpoint), so the loop needs no host sync per step.

    Args:
        limit: Skipped steps in a row that stop the run (``run.max_nonfinite``).
        total: Steps skipped before (a resumed run's count).
    """

    def __init__(self, limit: int, total: int = 0) -> None:
        self.limit = limit
        self.total = total
        self._streak: int | Tensor = 0
        self._new: int | Tensor = 0

    def record(self, skipped: bool | Tensor, step: int) -> None:
        """Count optimizer step ``step`` (skipped or not)."""
        if isinstance(skipped, bool):
            self._streak = self._streak + 1 if skipped else 0
            self._new = self._new + int(skipped)
            if skipped:
                self.check(step)
        else:
            flag = skipped.float()
            self._streak = (self._streak + 1) * flag
            self._new = self._new + flag

    def check(self, step: int) -> int:
        """Add the new skips to :attr:`total` (a host sync on the device path) and return it.

        Raises:
            NonFiniteError: ``limit`` steps in a row were skipped.
        """
        new, streak = int(self._new), int(self._streak)
        self._new = 0
        if new:
            self.total += new
            logger.warning(
                "step %d: skipped %d optimizer step(s) with a non-finite loss or gradient norm (%d so far)",
                step,
                new,
                self.total,
            )
        if streak >= self.limit:
            raise NonFiniteError(
                f"{streak} optimizer steps in a row (up to step {step}) had a non-finite loss or gradient "
                "norm, so training stops; the checkpoints are finite. Check the data (fluxmusic data check), "
                "lower optim.lr, or raise run.max_nonfinite"
            )
        return self.total
