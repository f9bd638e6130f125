"""Generation at scale: prompts sharded over ranks, stable output names, resumable runs.

A sharded run writes into one folder. Row ``i`` (prompts repeated ``num_per_prompt`` times) always gets
the file ``{i + 1:05d}-{slug}.{fmt}`` and the seed ``seed + i``, whatever the number of ranks, so a run
stopped at any point and started again (with any number of ranks) writes each row exactly once: a row is
*finished* when its sidecar (written atomically after its audio, itself written atomically) records the
same prompt and seed. The run's seed and prompt list are kept in ``fluxmusic-run.json`` in the folder,
written once by rank 0; a restart reads the seed back, and a different prompt list is refused.

Ranks come from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``);
rank r takes the contiguous rows ``[r n / w, (r + 1) n / w)``, each rank on its own device.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import torch

from fluxmusic.errors import InputError
from fluxmusic.files import atomic_write_text
from fluxmusic.pipeline.paths import is_sidecar, slug
from fluxmusic.ranks import Ranks, launched
from fluxmusic.sampling import SampleSettings

__all__ = [
    "MANIFEST",
    "Ranks",
    "finished",
    "launched",
    "pending_batches",
    "rank_device",
    "remove_stale_temporaries",
    "run_seed",
    "shard",
    "stable_paths",
]

logger = logging.getLogger(__name__)

_STABLE = re.compile(r"^\d{5}-[^/]*\.(json|png|\w+)\.\w+\.tmp$")

MANIFEST = "fluxmusic-run.json"
"""The run record in a sharded output folder: seed, row count and a hash of the rows' prompts."""


def shard(rows: int, ranks: Ranks) -> range:
    """This rank's contiguous share of ``rows`` (sizes differ by at most one)."""
    return range(rows * ranks.rank // ranks.world, rows * (ranks.rank + 1) // ranks.world)


def rank_device(requested: str, ranks: Ranks) -> torch.device:
    """Each rank's own device: ``cuda:LOCAL_RANK`` for ``auto``/``cuda`` when CUDA is there, else as asked."""
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        count = torch.cuda.device_count()
        if ranks.local_world > count:
            raise InputError(f"{ranks.local_world} processes on this node but {count} GPU(s); use fewer")
        return torch.device("cuda", ranks.local_rank)
    return torch.device("cpu" if requested == "auto" else requested)


def stable_paths(folder: str | Path, rows: list[str], fmt: str = "wav") -> list[Path]:
    """Row ``i``'s audio file: ``folder / f"{i + 1:05d}-{slug(prompt)}.{fmt}"`` (never renumbered)."""
    return [Path(folder) / f"{i + 1:05d}-{slug(p)}.{fmt}" for i, p in enumerate(rows)]


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete the temporary files a killed run left behind (``.00001-name.wav.XXXX.tmp``); rank 0 runs
    this before any rank writes. Returns how many were removed."""
    stale = [p for p in Path(folder).glob(".*.tmp") if _STABLE.match(p.name[1:])]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        logger.info("removed %d temporary files of a stopped run", len(stale))
    return len(stale)


def finished(path: Path, prompt: str, seed: int) -> bool:
    """Whether ``path`` and its sidecar are both there and the sidecar records ``prompt`` and ``seed``."""
    sidecar = path.with_suffix(".json")
    if not (path.is_file() and sidecar.is_file() and is_sidecar(sidecar)):
        return False
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    return data.get("prompt") == prompt and data.get("seed") == seed


def _rows_hash(rows: list[str]) -> str:
    return hashlib.sha256(json.dumps(rows).encode("utf-8")).hexdigest()


def run_seed(folder: str | Path, rows: list[str], seed: int | None, write: bool) -> int | None:
    """The run's seed, from ``fluxmusic-run.json`` when the folder holds one (a restart).

    Args:
        folder: The output folder.
        rows: Every row's prompt (the whole run, not one rank's share).
        seed: The seed asked for (``None``: keep the recorded one, or draw one).
        write: Rank 0: draw a seed if needed and record the run; other ranks only read (after a barrier)
            and get ``None`` when nothing is recorded yet.

    Raises:
        InputError: the folder records another prompt list or another seed than the one asked for.
    """
    path = Path(folder) / MANIFEST
    if path.is_file():
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            recorded = int(record["seed"])
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{path} is not a fluxmusic run record; remove it or use another -o") from None
        if record.get("rows_sha256") != _rows_hash(rows):
            raise InputError(f"{folder} holds a run of other prompts ({path}); use another -o folder")
        if seed is not None and seed != recorded:
            raise InputError(f"{folder} holds a run with --seed {recorded}; resume it with that seed or none")
        return recorded
    if not write:
        return None
    chosen = int(torch.randint(0, 2**31 - 1, (1,)).item()) if seed is None else seed
    record = {"seed": chosen, "rows": len(rows), "rows_sha256": _rows_hash(rows)}
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return chosen


def pending_batches(
    rows: list[str], indices: range, paths: list[Path], settings: SampleSettings, batch_size: int
) -> Iterator[tuple[list[int], SampleSettings]]:
    """The unfinished rows among ``indices``, in batches of consecutive rows, with each batch's settings.

    ``settings`` must hold the run's seed; a batch starting at row ``i`` gets seed ``seed + i`` (so its
    row ``j`` has ``seed + i + j``, exactly as in one unsharded call) and its rows' negative prompts
    and tempi.

    Yields:
        (row indices, settings narrowed to them).
    """
    if settings.seed is None:
        raise InputError("pending_batches needs settings with a seed")
    todo = [i for i in indices if not finished(paths[i], rows[i], settings.seed + i)]
    skipped = len(indices) - len(todo)
    if skipped:
        logger.info("skipping %d finished outputs", skipped)
    batch: list[int] = []
    for i in todo:
        if batch and (i != batch[-1] + 1 or len(batch) == batch_size):
            yield batch, _narrow(settings, batch, len(rows))
            batch = []
        batch.append(i)
    if batch:
        yield batch, _narrow(settings, batch, len(rows))


def _narrow(settings: SampleSettings, batch: list[int], rows: int) -> SampleSettings:
    def pick(value: object) -> object:
        if not isinstance(value, tuple):
            return value
        if len(value) != rows:
            raise InputError(f"got {len(value)} per-row values for {rows} rows")
        return tuple(value[i] for i in batch)

    return replace(
        settings,
        seed=settings.seed + batch[0],
        negative_prompt=pick(settings.negative_prompt),
        bpm=pick(settings.bpm),
    )
