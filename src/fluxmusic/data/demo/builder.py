"""Plan and run a demo dataset build: pick pieces, fan clips out to workers, write manifests.

Output layout under ``config.out_dir``::

    audio/train/<id>.wav, audio/test/<id>.wav   exact-length mono 16-bit wavs
    train.json, test.json                       [{"wav": "audio/train/<id>.wav", "label": caption,
                                                  "bpm": bpm, "beat_phase": phase at the clip start}, ...]
    metadata.jsonl                              one JSON object of structured attributes per clip
    stats.json                                  size and label statistics (see ``stats.py``)
    config.json                                 the config that built it (a resume must match it)
    records/<id>.json                           per-clip records; finished clips are skipped on resume

Manifests and metadata are written from the records in clip order, so the same config gives
byte-identical files whatever the number of workers or the order they finish in.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import numpy as np

from fluxmusic.data.demo.catalogue import COLLECTIONS, list_pieces, resolve_piece
from fluxmusic.data.demo.clips import ClipSlot, PieceTask, load_done, run_task
from fluxmusic.data.demo.config import DemoDatasetConfig
from fluxmusic.data.demo.render import fluidsynth_available
from fluxmusic.data.demo.stats import DemoDatasetReport, compute_stats
from fluxmusic.errors import InputError, MissingFilesError

logger = logging.getLogger(__name__)

_STREAM_PIECES = 1
_BACKUPS_PER_TASK = 2


def plan_tasks(config: DemoDatasetConfig) -> list[PieceTask]:
    """Deterministic work list: explicit requests, or pieces sampled per collection by weight."""
    if config.requests:
        by_piece: dict[str, list[int]] = {}
        for i, req in enumerate(config.requests):
            by_piece.setdefault(req.piece_id, []).append(i)
        tasks = []
        for piece_id, indices in by_piece.items():
            ref = resolve_piece(piece_id)
            slots = tuple(
                ClipSlot(i, _clip_id(i), config.requests[i], k, len(indices)) for k, i in enumerate(indices)
            )
            tasks.append(PieceTask((ref,), slots))
        return tasks
    quotas = _quotas(config)
    tasks, index = [], 0
    for c, name in enumerate(config.collections):
        refs = list_pieces(name)
        quota = quotas[name]
        if quota == 0 or not refs:
            continue
        order = np.random.default_rng([config.seed, _STREAM_PIECES, c]).permutation(len(refs))
        n_pieces = min(len(refs), math.ceil(quota / config.clips_per_piece))
        spare = [refs[i] for i in order[n_pieces:]]
        for k in range(n_pieces):
            n = quota // n_pieces + (1 if k < quota % n_pieces else 0)
            backups = tuple(spare[k * _BACKUPS_PER_TASK : (k + 1) * _BACKUPS_PER_TASK])
            slots = tuple(ClipSlot(index + j, _clip_id(index + j), None, j, n) for j in range(n))
            tasks.append(PieceTask((refs[order[k]], *backups), slots))
            index += n
    return tasks


def _clip_id(index: int) -> str:
    return f"c{index:06d}"


def _quotas(config: DemoDatasetConfig) -> dict[str, int]:
    """Clips per collection: weights renormalised over the chosen collections, largest remainder."""
    weights = np.array([COLLECTIONS[c].weight for c in config.collections], dtype=np.float64)
    exact = config.n_clips * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: config.n_clips - int(counts.sum())]:
        counts[i] += 1
    return dict(zip(config.collections, (int(x) for x in counts), strict=True))


def _check_out_dir(config: DemoDatasetConfig) -> None:
    """Create the folder; refuse to resume a build made with a different config."""
    config.out_dir.mkdir(parents=True, exist_ok=True)
    path = config.out_dir / "config.json"
    identity = json.dumps(config.identity(), indent=1, sort_keys=True) + "\n"
    if path.is_file() and path.read_text(encoding="utf-8") != identity:
        raise InputError(
            f"out_dir={str(config.out_dir)!r} holds a build with a different config ({path}); "
            "use another out_dir or delete it"
        )
    path.write_text(identity, encoding="utf-8")


def build_demo_dataset(config: DemoDatasetConfig, progress: bool = False) -> DemoDatasetReport:
    """Render a text-to-music dataset from the music21 corpus with FluidSynth.

    Args:
        config: what to build (see ``DemoDatasetConfig``).
        progress: show a tqdm progress bar over clips.

    Returns:
        A report with sizes and label statistics (also written to ``stats.json``).

    Raises:
        fluxmusic.errors.MissingFilesError: the fluidsynth executable or the SoundFont is missing.
        fluxmusic.errors.InputError: ``out_dir`` holds a build with another config, or a request names an
            unknown piece.
    """
    if not fluidsynth_available(config.fluidsynth, config.soundfont):
        raise MissingFilesError(
            f"need the fluidsynth executable ({config.fluidsynth!r}) and the SoundFont {config.soundfont}; "
            "on Debian/Ubuntu: apt-get install fluidsynth fluid-soundfont-gm"
        )
    start = time.perf_counter()
    _check_out_dir(config)
    tasks = plan_tasks(config)
    n_planned = sum(len(t.slots) for t in tasks)
    done = {s.clip_id for t in tasks for s in t.slots if load_done(config.out_dir, s.clip_id) is not None}
    todo = [t for t in tasks if any(s.clip_id not in done for s in t.slots)]
    logger.info("demo dataset: %d clips planned, %d already done", n_planned, len(done))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_planned, initial=n_planned - sum(len(t.slots) for t in todo), unit="clip")
    try:
        if config.workers <= 1:
            for task in todo:
                run_task(task, config)
                if bar is not None:
                    bar.update(len(task.slots))
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=config.workers, mp_context=ctx) as pool:
                futures = {pool.submit(run_task, task, config): task for task in todo}
                for future in as_completed(futures):
                    future.result()
                    if bar is not None:
                        bar.update(len(futures[future].slots))
    finally:
        if bar is not None:
            bar.close()
    records = [load_done(config.out_dir, s.clip_id) for t in tasks for s in t.slots]
    elapsed = time.perf_counter() - start
    return _finish(config, [r for r in records if r is not None], n_planned, n_planned - len(done), elapsed)


def manifest_row(record: dict[str, Any]) -> dict[str, Any]:
    """A clip's manifest item: audio, caption, and its tempo with the beat phase at the clip start."""
    return {
        "wav": record["wav"],
        "label": record["caption"],
        "bpm": record["bpm"],
        "beat_phase": round(float(record["start_quarter"]) % 1.0, 6),
    }


def _finish(
    config: DemoDatasetConfig, records: list[dict[str, Any]], n_planned: int, n_new: int, elapsed: float
) -> DemoDatasetReport:
    """Write manifests, metadata.jsonl and stats.json from the records, in clip order."""
    with contextlib.suppress(OSError):
        (config.out_dir / "tmp").rmdir()  # render scratch folder, empty once all renders finished
    records.sort(key=lambda r: r["index"])
    accepted = [r for r in records if not r.get("rejected")]
    rejected = [r for r in records if r.get("rejected")]
    out = config.out_dir
    for split in ("train", "test"):
        manifest = [manifest_row(r) for r in accepted if r["split"] == split]
        (out / f"{split}.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", "utf-8")
    with (out / "metadata.jsonl").open("w", encoding="utf-8") as f:
        for r in accepted:
            f.write(json.dumps({k: v for k, v in r.items() if k != "index"}, ensure_ascii=False) + "\n")
    n_bytes = sum((out / r["wav"]).stat().st_size for r in accepted)
    stats = compute_stats(accepted, rejected, n_bytes)
    stats["build"] = {  # this call only: a resumed build counts the clips it processed
        "elapsed_s": round(elapsed, 1),
        "workers": config.workers,
        "n_planned": n_planned,
        "n_processed_now": n_new,
    }
    (out / "stats.json").write_text(json.dumps(stats, ensure_ascii=False, indent=1) + "\n", "utf-8")
    return DemoDatasetReport(
        out_dir=out,
        n_planned=n_planned,
        n_clips=len(accepted),
        n_train=stats["splits"].get("train", 0),
        n_test=stats["splits"].get("test", 0),
        hours=stats["hours"],
        bytes=n_bytes,
        n_rejected=len(rejected),
        elapsed_s=round(elapsed, 1),
        stats=stats,
    )
