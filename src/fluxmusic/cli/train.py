"""Training subcommands: ``fluxmusic train`` and ``fluxmusic preprocess`` (both torchrun-aware)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fluxmusic.cli.console import (
    UserError,
    add_overrides,
    add_quiet,
    command,
    is_rank0,
    quiet_third_party_progress,
    training_logs,
)

SHORTHANDS: tuple[tuple[str, str, str, str], ...] = (
    (
        "--init-from",
        "PATH",
        "model.init_from",
        "start from these weights (reference .pt, safetensors, folder)",
    ),
    ("--run-dir", "DIR", "run.dir", "run folder (same as --set run.dir=DIR)"),
)
"""``fluxmusic train`` options that stand for a ``--set`` key: (flag, metavar, config key, help)."""

TRAIN_HELP = "train or fine-tune a model, or the bundled VAE / vocoder (DDP/FSDP under torchrun)"
TRAIN_DESCRIPTION = (
    'Train from a TOML config: MusicFlux, or with run.trainer = "vae" / "vocoder" the bundled\n'
    "VAE / HiFi-GAN vocoder. Steps are optimizer steps; checkpoints go to\n"
    "RUN_DIR/checkpoints/step_NNNNNN and the trained model to RUN_DIR/export (components:\n"
    "RUN_DIR/final) at the end.\n\n"
    "examples:\n"
    "  fluxmusic train --config configs/train_tiny.toml\n"
    "  fluxmusic train --config configs/train_demo.toml --set run.max_steps=5000\n"
    "  fluxmusic train --resume runs/small\n"
    "  fluxmusic train --config configs/bundled/vae.toml --auto-resume --set data.dir=data/demo\n"
    "  torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\\n"
    "      -m fluxmusic train --config configs/train_small.toml\n"
    "see docs/training.md"
)

PREPROCESS_HELP = "encode audio and captions into training shards (VAE posteriors + text embeddings)"
PREPROCESS_DESCRIPTION = (
    "Encode every item of MANIFEST with the VAE and text encoder of --config (default: AudioLDM2 "
    "VAE, "
    "T5-XXL + CLAP) into OUTPUT/shards; resumable, and split across ranks under torchrun. "
    "Train on it with --set data.shards=OUTPUT. Example: fluxmusic preprocess data/train.json "
    "data/latents --config configs/train_small.toml"
)


def _cmd_train(args: argparse.Namespace) -> int:
    from fluxmusic.training.trainers import load_experiment, resume_experiment, train

    overrides = list(args.set or [])
    for flag, _, key, _ in SHORTHANDS:
        value = getattr(args, flag.removeprefix("--").replace("-", "_"))
        if value:
            overrides.append(f"{key}={json.dumps(value)}")
    resume = args.resume
    if args.resume:
        if args.config:
            raise UserError(
                "--resume continues a run with its saved config; use --set to change keys, not --config"
            )
        config = resume_experiment(args.resume, overrides)
    elif args.config:
        config = load_experiment(args.config, overrides)
        resume = "auto" if args.auto_resume else None
    else:
        raise UserError("give --config FILE.toml (see configs/), or --resume RUN_DIR")
    training_logs(args.quiet)
    quiet_third_party_progress()
    result = train(config, resume=resume)
    if is_rank0():
        print(f"trained {result.step} steps; checkpoint: {result.checkpoint}")
        if result.export is not None:
            print(f"exported: {result.export}")
    return 0


def _check_preprocess_args(args: argparse.Namespace) -> None:
    """Refuse bad options and outputs in one line before any model is loaded."""
    for option, value in (("--batch-size", args.batch_size), ("--shard-size", args.shard_size)):
        if value < 1:
            raise UserError(f"{option} must be a positive integer, got {value}")
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise UserError(f"the preprocess output {output} is a file, not a folder; choose another OUTPUT")


def _cmd_preprocess(args: argparse.Namespace) -> int:
    from fluxmusic.training.config import load_config
    from fluxmusic.training.prepare import prepare_shards

    _check_preprocess_args(args)
    overrides = [*(args.set or []), f"data.manifest={json.dumps(args.manifest)}", 'data.shards=""']
    config = load_config(args.config, overrides)
    training_logs(args.quiet)
    quiet_third_party_progress()
    bar = None
    if not args.quiet and is_rank0():
        from tqdm.auto import tqdm

        bar = tqdm(desc="preprocess", unit="item")
    result = prepare_shards(
        config,
        args.manifest,
        args.output,
        args.crop,
        args.batch_size,
        args.shard_size,
        bar.update if bar is not None else None,
    )
    if bar is not None:
        bar.close()
    index = result["index"]
    if index is not None:
        print(f"wrote {index['num_rows']} rows in {len(index['shards'])} shard(s) to {args.output}")
        for item in index["skipped"]:
            print(f"skipped item {item['item']}: {item['path']}: {item['reason']}")
    return 0


def add_train(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "train", _cmd_train, help=TRAIN_HELP, description=TRAIN_DESCRIPTION)
    p.add_argument("--config", help="experiment file (TOML)")
    add_overrides(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its newest complete checkpoint")
    p.add_argument(
        "--auto-resume",
        action="store_true",
        help="with --config: continue run.dir if it holds a checkpoint, else start it (preemptible jobs)",
    )
    for flag, metavar, _, text in SHORTHANDS:
        p.add_argument(flag, metavar=metavar, help=text)
    add_quiet(p, "progress lines")


def add_preprocess(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "preprocess", _cmd_preprocess, help=PREPROCESS_HELP, description=PREPROCESS_DESCRIPTION)
    p.add_argument("manifest", help="manifest (.json reference list, .jsonl or .csv)")
    p.add_argument("output", help="output folder (resumed if it exists)")
    p.add_argument("--config", help="training config whose [vae], [text], [data] and [run] settings to use")
    add_overrides(p)
    p.add_argument("--crop", default="random", choices=("random", "start", "windows"),
                   help="one seeded window per item (default), the start, or every window")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=8, help="clips per encoder call (default 8)")
    p.add_argument("--shard-size", type=int, default=256, help="rows per shard (default 256)")
    add_quiet(p)
