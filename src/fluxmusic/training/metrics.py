"""Rank-0 training metrics: a console line (``logging``), ``logs/metrics.csv`` and TensorBoard."""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fluxmusic.files import atomic_write

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
    "skipped_nonfinite",
    "empty_batches",
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
    """Writes one row per log interval (each row flushed).

    At start the log is rewritten atomically as its header and the rows up to ``resume_step``: the
    header is on disk before any row, a resumed run drops the rows logged after its checkpoint (so
    ``metrics.csv`` reads as one uninterrupted run), and a kill at any moment loses no earlier row. Rows
    of a log that lost its header (written before this rule) are kept.

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
        self._rewrite(resume_step)
        self._file = self.path.open("a", encoding="utf-8", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=self.columns)
        self._tb: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(
                    str(run_dir / "tensorboard"), purge_step=resume_step + 1 if resume_step else None
                )
            except ImportError:  # pragma: no cover - tensorboard is in the train extra
                logger.warning("tensorboard is not installed; logging to CSV only")

    def _rewrite(self, step: int) -> None:
        """Replace the log, atomically, by its header and its rows up to ``step``."""
        keep = [row for row in self._read() if _step(row) is not None and _step(row) <= step]

        def write(tmp: str) -> None:
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows({k: row.get(k, "") for k in self.columns} for row in keep)
                f.flush()
                os.fsync(f.fileno())

        atomic_write(self.path, write)

    def _read(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        try:
            with self.path.open(encoding="utf-8", errors="replace", newline="") as f:
                lines = [line for line in csv.reader(f) if line]
        except csv.Error as err:
            aside = self.path.with_name(self.path.name + ".unreadable")
            os.replace(self.path, aside)
            logger.warning(
                "%s is unreadable (%s); moved it to %s and started a new log", self.path, err, aside
            )
            return []
        header = list(self.columns)  # a log that lost its header has the rows of these columns
        if lines and lines[0][:1] == ["step"]:
            header, lines = lines[0], lines[1:]
        return [dict(zip(header, line)) for line in lines if len(line) <= len(header)]

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


def _step(row: dict[str, str]) -> int | None:
    try:
        return int(row.get("step") or "")
    except ValueError:
        return None


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return value
