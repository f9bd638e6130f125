"""Requested (metadata) vs estimated tempo on a demo dataset's real renders, overall and per group.

The reference numbers a generated clip's tempo is read against (see ``docs/evaluation.md``)::

    fluxmusic evaluate tempo --data /work/data/demo [--split test] [--by collection] [--out t.json]
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from fluxmusic.errors import InputError
from fluxmusic.evaluation.demo_records import load_waveforms, read_records
from fluxmusic.evaluation.tempo import estimate_tempi, tempo_agreement

__all__ = ["format_tempo_table", "tempo_report"]

_COLUMNS = (("log_corr", "log_corr", 10), ("octave_corr", "oct_corr", 10), ("acc1", "acc1", 7),
            ("acc2", "acc2", 7), ("median_ratio", "median", 8))  # fmt: skip


def tempo_report(
    data_dir: str | Path,
    split: str | None = None,
    limit: int | None = None,
    by: str = "time_signature",
    batch_size: int = 64,
) -> dict[str, Any]:
    """Tempo agreement of a demo dataset's clips with their requested BPM.

    Args:
        data_dir: Demo dataset folder.
        split: ``train``, ``test`` or None for both.
        limit: The first N clips (by id) only.
        by: Metadata field to break the results down by.
        batch_size: Clips read and estimated at a time.

    Returns:
        ``{"all": agreement, by: {group: agreement}, "ids": [...], "estimated": [bpm or None, ...]}``
        with agreements as :meth:`TempoAgreement.to_dict`.

    Raises:
        fluxmusic.errors.MissingFilesError: Not a demo dataset folder.
        fluxmusic.errors.InputError: No clips in the split.
    """
    records = read_records(data_dir, split, families=False)[:limit]
    if not records:
        raise InputError(f"{data_dir}: no clips (split {split or 'train+test'})")
    estimates = np.concatenate(
        [
            estimate_tempi(load_waveforms(data_dir, records[i : i + batch_size]))
            for i in range(0, len(records), batch_size)
        ]
    )
    requested = np.array([r["bpm"] for r in records], dtype=np.float64)
    groups: dict[str, Any] = {}
    for group in sorted({str(r.get(by)) for r in records}):
        mask = np.array([str(r.get(by)) == group for r in records])
        groups[group] = tempo_agreement(requested[mask], estimates[mask]).to_dict()
    return {
        "all": tempo_agreement(requested, estimates).to_dict(),
        by: groups,
        "ids": [r["id"] for r in records],
        "estimated": [v if math.isfinite(v) else None for v in estimates.tolist()],
    }


def format_tempo_table(report: dict[str, Any], by: str) -> str:
    """One line per group (``all`` first): clips, correlations, accuracies, median ratio."""
    lines = [f"{'group':<24}{'n':>6}" + "".join(f"{head:>{width}}" for _, head, width in _COLUMNS)]
    for name, row in [("all", report["all"]), *report[by].items()]:
        cells = "".join(
            f"{'-' if row[key] is None else format(row[key], '.3f'):>{width}}" for key, _, width in _COLUMNS
        )
        lines.append(f"{name:<24}{row['count']:>6}{cells}")
    return "\n".join(lines)
