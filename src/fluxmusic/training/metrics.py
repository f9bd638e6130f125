"""Rank-0 training metrics: a console line (``logging``), ``logs/metrics.csv`` and TensorBoard."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any

__all__ = ["COLUMNS", "MetricsLogger"]

logger = logging.getLogger("fluxmusic.training")

COLUMNS = (
    "step",
    "epoch",
    "loss",
    "lr",
    "grad_norm",
    "steps_per_s",
    "samples_per_s",
    "tokens_per_s",
    "samples",
    "skipped",
    "elapsed_s",
)


class MetricsLogger:
    """Writes one row per log interval.

    On resume, rows past the resumed step (logged by the interrupted run after its last checkpoint) are
    dropped, so ``metrics.csv`` reads as one uninterrupted run.

    Args:
        run_dir: The run folder.
        resume_step: Step the run (re)starts from.
        tensorboard: Also write TensorBoard events to ``RUN_DIR/tensorboard``.
        max_steps: For the console line.
    """

    def __init__(self, run_dir: Path, resume_step: int, tensorboard: bool, max_steps: int) -> None:
        self.path = run_dir / "logs" / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_steps = max_steps
        self._truncate(resume_step)
        new = not self.path.is_file()
        self._file = self.path.open("a", encoding="utf-8", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=COLUMNS)
        if new:
            self._csv.writeheader()
        self._tb: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(
                    str(run_dir / "tensorboard"), purge_step=resume_step + 1 if resume_step else None
                )
            except ImportError:  # pragma: no cover - tensorboard is in the train extra
                logger.warning("tensorboard is not installed; logging to CSV only")

    def _truncate(self, step: int) -> None:
        if not self.path.is_file():
            return
        with self.path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        keep = [row for row in rows if row.get("step") and int(row["step"]) <= step]
        if len(keep) != len(rows):
            with self.path.open("w", encoding="utf-8", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=COLUMNS)
                writer.writeheader()
                writer.writerows({k: row.get(k, "") for k in COLUMNS} for row in keep)

    def log(self, row: dict[str, Any]) -> None:
        """Log one interval: console, CSV (flushed) and TensorBoard scalars."""
        step = int(row["step"])
        logger.info(
            "step %d/%d | loss %.4f | lr %.2e | grad %.3f | %.2f steps/s | %.0f tokens/s | %.1f samples/s",
            step,
            self.max_steps,
            row["loss"],
            row["lr"],
            row["grad_norm"],
            row["steps_per_s"],
            row["tokens_per_s"],
            row["samples_per_s"],
        )
        self._csv.writerow({k: _fmt(row.get(k, "")) for k in COLUMNS})
        self._file.flush()
        if self._tb is not None:
            for key in ("loss", "lr", "grad_norm", "steps_per_s", "tokens_per_s", "samples_per_s"):
                self._tb.add_scalar(f"train/{key}", row[key], step)
            self._tb.flush()

    def close(self) -> None:
        """Close the files."""
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return value
