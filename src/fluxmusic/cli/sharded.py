"""``fluxmusic generate`` under torchrun (or with ``--resume``): sharded, resumable generation.

    torchrun --nproc-per-node N [--nnodes M ...] -m fluxmusic generate --prompt-file P -o DIR

Each rank loads the model on its own device (``cuda:LOCAL_RANK`` on GPUs; on the CPU the cores are
split between the node's ranks) and generates its contiguous share of the rows; every output and its
sidecar is written atomically under a stable name, and a rerun skips the finished ones (see
:mod:`fluxmusic.pipeline.batch`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fluxmusic.cli.console import UserError, quiet_third_party_progress

if TYPE_CHECKING:
    from fluxmusic.pipeline import AudioOutput, FluxMusicPipeline
    from fluxmusic.pipeline.batch import Ranks
    from fluxmusic.sampling import SampleSettings

RunBatch = Callable[["FluxMusicPipeline", list[str], "SampleSettings"], "AudioOutput"]
"""Generates one batch of rows with narrowed settings (what ``generate`` runs per micro-batch)."""


def sharded_requested(args: argparse.Namespace) -> bool:
    """Whether this ``generate`` runs sharded: launched by torchrun, or ``--resume`` given."""
    from fluxmusic.pipeline.batch import launched

    return bool(getattr(args, "resume", False)) or launched()


def _folder(args: argparse.Namespace) -> Path:
    out = Path(args.output)
    if out.suffix and not out.is_dir():
        raise UserError(f"-o {out}: a sharded or resumed run writes into a folder; give -o FOLDER")
    return out


def _init_group(ranks: Ranks, device_type: str) -> bool:
    import torch.distributed as dist

    if ranks.world == 1 or dist.is_initialized():
        return False
    dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return True


def run_sharded(
    args: argparse.Namespace, rows: list[str], given: dict[str, object], run_batch: RunBatch
) -> int:
    """Generate this rank's unfinished rows into ``-o FOLDER``; prints each file written.

    Args:
        args: The parsed ``generate`` arguments.
        rows: Every row's prompt (prompts repeated ``--num-per-prompt`` times), the same on every rank.
        given: The sampling settings given on the command line (``None`` = not given), ``quality``
            (the preset) included.
        run_batch: Generates one batch.

    Returns:
        The exit status (0).
    """
    import torch
    import torch.distributed as dist

    from fluxmusic.errors import InputError
    from fluxmusic.pipeline import FluxMusicPipeline, save_outputs
    from fluxmusic.pipeline.batch import (
        Ranks,
        pending_batches,
        rank_device,
        remove_stale_temporaries,
        run_seed,
        shard,
        stable_paths,
    )
    from fluxmusic.pipeline.edit_inputs import LONG_FORM_MAX_SECONDS

    folder, ranks = _folder(args), Ranks.from_env()
    try:
        device = rank_device(args.device, ranks)
    except InputError as err:
        raise UserError(str(err)) from None
    if device.type == "cpu" and ranks.local_world > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // ranks.local_world))
    grouped = _init_group(ranks, device.type)
    try:
        seed = given.get("seed")
        if ranks.rank == 0:
            folder.mkdir(parents=True, exist_ok=True)
            seed = run_seed(folder, rows, seed, write=True)
            remove_stale_temporaries(folder)
        if grouped:
            dist.barrier()
        if ranks.rank != 0:
            seed = run_seed(folder, rows, seed, write=False)
        quiet_third_party_progress()
        pipe = FluxMusicPipeline.from_pretrained(
            args.model, device=device, dtype=args.dtype, text_mode=args.text_mode
        )
        settings = pipe.settings(max_duration=LONG_FORM_MAX_SECONDS, **{**given, "seed": seed})
        paths = stable_paths(folder, rows, args.format or "wav")
        run = {
            "model": args.model,
            "dtype": str(pipe.dtype).removeprefix("torch."),
            "device": str(pipe.device),
            "text_mode": args.text_mode,
            "rank": ranks.rank,
            "world_size": ranks.world,
        }
        mine = shard(len(rows), ranks)
        for batch, batch_settings in pending_batches(rows, mine, paths, settings, args.batch_size):
            out = run_batch(pipe, [rows[i] for i in batch], batch_settings)
            for path in save_outputs(out, [paths[i] for i in batch], run, spectrogram=args.spectrogram):
                print(path, flush=True)
    except InputError as err:
        raise UserError(str(err)) from None
    finally:
        if grouped:
            dist.destroy_process_group()
    if ranks.world > 1 and not args.quiet:
        print(f"rank {ranks.rank}/{ranks.world}: rows {mine.start + 1}-{mine.stop} done", file=sys.stderr)
    return 0
