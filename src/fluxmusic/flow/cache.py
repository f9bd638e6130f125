"""Step caching: skip a velocity network's blocks on steps where their input barely changed.

Training-free, after TeaCache (Liu et al. 2024, arXiv 2411.19108): consecutive sampler steps feed a
diffusion transformer nearly the same input in places along the path, and its blocks then add nearly the
same *residual* (their output minus their input). A :class:`StepCache` holds, per batch row,

- the *probe* of the last call: a cheap tensor computed before the blocks (for MusicFlux the first
  block's modulated audio input, which moves with both the state ``x`` and the time ``t``);
- the distance accumulated since that row's blocks last ran: the sum over calls of the relative L1
  change of the probe, ``mean |p - p_prev| / mean |p_prev|``;
- the blocks' residual from that last run.

A row whose accumulated distance is still below ``threshold`` reuses its residual; any other row runs
the blocks and resets its distance. Each row decides alone (no row's output depends on which other rows
share its batch), the first call runs every row, and a call whose batch has another size or shape
starts afresh, so one cache is correct whatever calls it sees. ``threshold = 0`` never reuses.

The network owns the probe and the blocks; this module only decides and remembers, so it knows nothing
of the model (``fluxmusic.model.cache`` is the MusicFlux side). A cache serves one velocity function
(one fixed set of rows: the guided batch, or the conditional rows of a guidance interval) and one
sampling run; build a new one for every run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from fluxmusic.errors import InputError

__all__ = ["StepCache", "check_nonnegative", "check_threshold"]


def check_nonnegative(value: object, name: str, meaning: str) -> float:
    """``value`` as a finite float >= 0, else an ``InputError`` that names it as ``name``.

    ``meaning`` goes into the message: what a value stands for, e.g. ``"0 = no caching"``.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(number) and number >= 0.0):
        raise InputError(f"{name} must be a finite number >= 0 ({meaning}), got {number}")
    return number


def check_threshold(threshold: float) -> float:
    """Validate a cache threshold: a finite number >= 0 (0 = off)."""
    return check_nonnegative(threshold, "cache threshold", "0 = no caching")


@dataclass
class StepCache:
    """Per-row cache state of one velocity function for one sampling run.

    Attributes:
        threshold: Reuse a row's residual while its accumulated relative L1 probe change is below this
            (0 = never reuse).
        calls: Calls seen.
        rows_run: Row-evaluations that ran the blocks.
        rows_reused: Row-evaluations that reused a residual.

    Shapes:
        probe: (B, ...) any per-row tensor; residual: (B, ...) the blocks' output minus their input.
    """

    threshold: float = 0.0
    calls: int = 0
    rows_run: int = 0
    rows_reused: int = 0
    _probe: Tensor | None = field(default=None, repr=False)
    _distance: Tensor | None = field(default=None, repr=False)
    _residual: Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.threshold = check_threshold(self.threshold)

    @property
    def reuse_fraction(self) -> float:
        """Share of row-evaluations that reused a residual (0 before any call)."""
        total = self.rows_run + self.rows_reused
        return self.rows_reused / total if total else 0.0

    def reset(self) -> None:
        """Forget the stored probe and residuals (the counters stay)."""
        self._probe = self._distance = self._residual = None

    def plan(self, probe: Tensor) -> Tensor:
        """Which rows must run the blocks on this call, from this call's probe.

        Records the probe and the accumulated distances; call :meth:`finish` with the rows' residuals
        right after.

        Shapes:
            probe: (B, ...) -> (B,) bool, True = run the blocks.
        """
        self.calls += 1
        probe = probe.detach()
        batch = probe.shape[0]
        fresh = (
            self._probe is None
            or self._residual is None
            or self._probe.shape != probe.shape
            or self._probe.device != probe.device
        )
        if fresh:
            self.reset()
            run = torch.ones(batch, dtype=torch.bool, device=probe.device)
            self._distance = torch.zeros(batch, dtype=torch.float32, device=probe.device)
        else:
            assert self._probe is not None and self._distance is not None
            previous = self._probe.float().flatten(1)
            change = (probe.float().flatten(1) - previous).abs().mean(1)
            relative = change / previous.abs().mean(1).clamp_min(1e-12)
            self._distance = self._distance + relative
            run = ~(self._distance < self.threshold)
        self._probe = probe
        return run

    def finish(self, run: Tensor, residual: Tensor | None) -> Tensor | None:
        """Store the residuals of the rows that ran; return every row's residual to add.

        Args:
            run: What :meth:`plan` returned.
            residual: The residuals of the rows that ran, in row order (``None`` when none ran).

        Shapes:
            run: (B,) bool; residual: (R, ...) with R = run.sum() -> (B, ...) (the stored residuals of
            every row), or None before any row has run.
        """
        assert self._distance is not None
        ran = int(run.sum())
        self.rows_run += ran
        self.rows_reused += run.numel() - ran
        if ran:
            assert residual is not None and residual.shape[0] == ran
            if self._residual is None:  # the first call of a run: every row ran
                self._residual = residual.detach().clone()
            else:
                self._residual = self._residual.clone()
                self._residual[run] = residual.detach().to(self._residual.dtype)
            self._distance = torch.where(run, torch.zeros_like(self._distance), self._distance)
        return self._residual
