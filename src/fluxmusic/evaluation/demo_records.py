"""Read the demo dataset's per-clip records and audio for evaluation (see ``docs/demo-dataset.md``).

Records come from ``metadata.jsonl`` when the build has finished, else from ``records/*.json`` (a build
still running: only accepted clips whose wav exists are returned). Records are sorted by clip id, so
every selection below is deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fluxmusic.audio import SAMPLE_RATE, read_audio
from fluxmusic.errors import InputError, MissingFilesError

MIXED = "mixed"
"""Family of ensembles drawn from several families; it names no single family, so evaluation skips it."""


def read_records(
    data_dir: str | Path, split: str | None = None, families: bool = True
) -> list[dict[str, Any]]:
    """Accepted clip records of a demo dataset, sorted by id.

    Args:
        data_dir: Dataset folder (holds ``metadata.jsonl`` or ``records/``).
        split: ``train``, ``test`` or None for both.
        families: Drop clips whose family is ``mixed``.

    Raises:
        fluxmusic.errors.MissingFilesError: Neither ``metadata.jsonl`` nor ``records/`` exists.
    """
    root = Path(data_dir)
    meta = root / "metadata.jsonl"
    if meta.is_file():
        rows = [json.loads(line) for line in meta.read_text().splitlines() if line.strip()]
    elif (root / "records").is_dir():
        rows = [json.loads(p.read_text()) for p in sorted((root / "records").glob("*.json"))]
        rows = [r for r in rows if r.get("wav") and (root / r["wav"]).is_file()]
    else:
        raise MissingFilesError(
            f"{root}: no metadata.jsonl or records/; build it with `fluxmusic data build-demo`"
        )
    rows = [r for r in rows if r.get("wav") and r.get("family")]
    if split is not None:
        rows = [r for r in rows if r.get("split") == split]
    if families:
        rows = [r for r in rows if r["family"] != MIXED]
    return sorted(rows, key=lambda r: r["id"])


def load_waveforms(
    data_dir: str | Path, records: Sequence[dict[str, Any]], num_samples: int | None = None
) -> Tensor:
    """Read the clips of ``records`` at 16 kHz, trimmed or zero-padded to ``num_samples``.

    Shapes:
        output: (N, num_samples) (default: the first record's ``num_samples``)
    """
    if not records:
        raise InputError("no records to load")
    root = Path(data_dir)
    length = int(num_samples or records[0].get("num_samples") or 0)
    rows = []
    for record in records:
        wave = read_audio(root / record["wav"], sample_rate=SAMPLE_RATE)
        if length <= 0:
            length = wave.shape[0]
        wave = wave[:length]
        rows.append(torch.nn.functional.pad(wave, (0, length - wave.shape[0])))
    return torch.stack(rows)


def stratified_pick(records: Sequence[dict[str, Any]], count: int, seed: int = 0) -> list[dict[str, Any]]:
    """Up to ``count`` records, balanced over families (round robin over shuffled per-family lists).

    Deterministic for a given ``seed`` and record list; the result is in round-robin order.
    """
    rng = np.random.default_rng(seed)
    by_family: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_family.setdefault(record["family"], []).append(record)
    queues = {f: [rows[i] for i in rng.permutation(len(rows))] for f, rows in sorted(by_family.items())}
    picked: list[dict[str, Any]] = []
    while len(picked) < count and any(queues.values()):
        for family in sorted(queues):
            if queues[family] and len(picked) < count:
                picked.append(queues[family].pop(0))
    return picked
