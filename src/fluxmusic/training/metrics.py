"""Rank-0 training metrics: a console line (``logging``), ``logs/metrics.csv`` and TensorBoard."""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["COLUMNS", "CONSOLE", "MetricsLogger"]

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
# The transformer's console line and TensorBoard scalars.
CONSOLE = ("loss", "lr", "grad_norm", "steps_per_s", "tokens_per_s", "samples_per_s")
# How a value shows on the console line ("name {value:.4f}" for any other).
FORMATS = {
    "lr": "lr {:.2e}",
    "grad_norm": "grad {:.3f}",
    "steps_per_s": "{:.2f} steps/s",
    "tokens_per_s": "{:.0f} tokens/s",
    "samples_per_s": "{:.1f} samples/s",
    "s_per_step": "{:.2f} s/step",
    "cpu_s_per_step": "{:.2f} cpu-s/step",
}


class MetricsLogger:
    """Writes one row per log interval.

    On resume, rows past the resumed step (logged by the interrupted run after its last checkpoint) are
    dropped, so ``metrics.csv`` reads as one uninterrupted run.

    Args:
        run_dir: The run folder.
        resume_step: Step the run (re)starts from.
        tensorboard: Also write TensorBoard events to ``RUN_DIR/tensorboard``.
        max_steps: For the console line.
        columns: The CSV columns (the transformer's by default; a trainer's row may leave some out).
        console: The values on the console line and in TensorBoard.
    """

    def __init__(
        self,
        run_dir: Path,
        resume_step: int,
        tensorboard: bool,
        max_steps: int,
        columns: Sequence[str] = COLUMNS,
        console: Sequence[str] = CONSOLE,
    ) -> None:
        self.path = run_dir / "logs" / "metrics.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_steps = max_steps
        self.columns, self.console = tuple(columns), tuple(console)
        self._truncate(resume_step)
        new = not self.path.is_file()
        self._file = self.path.open("a", encoding="utf-8", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=self.columns)
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
                writer = csv.DictWriter(f, fieldnames=self.columns)
                writer.writeheader()
                writer.writerows({k: row.get(k, "") for k in self.columns} for row in keep)

    def log(self, row: dict[str, Any]) -> None:
        """Log one interval: console, CSV (flushed) and TensorBoard scalars."""
        step = int(row["step"])
        shown = [key for key in self.console if key in row]
        line = " | ".join(FORMATS.get(key, key + " {:.4f}").format(row[key]) for key in shown)
        logger.info("step %d/%d | %s", step, self.max_steps, line)
        self._csv.writerow({k: _fmt(row.get(k, "")) for k in self.columns})
        self._file.flush()
        if self._tb is not None:
            for key in shown:
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
