"""``fluxmusic train``, ``fluxmusic preprocess`` and ``fluxmusic data``: training and its data."""

from __future__ import annotations

import argparse
import json
import logging

from fluxmusic.cli.base import UserError, quiet_third_party_progress


def _training_logs(quiet: bool) -> None:
    """Show the trainer's progress lines (INFO) on rank 0 unless quiet; other ranks log warnings only."""
    if not quiet and _is_rank0():
        logging.getLogger("fluxmusic.training").setLevel(logging.INFO)


def _is_rank0() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _cmd_train(args: argparse.Namespace) -> int:
    from fluxmusic.training.config import load_config
    from fluxmusic.training.loop import resume_config, train

    overrides = list(args.set or [])
    if args.init_from:
        overrides.append(f"model.init_from={json.dumps(args.init_from)}")
    if args.run_dir:
        overrides.append(f"run.dir={json.dumps(args.run_dir)}")
    resume = args.resume
    if args.resume:
        if args.config:
            raise UserError(
                "--resume continues a run with its saved config; use --set to change keys, not --config"
            )
        config = resume_config(args.resume, overrides)
    elif args.config:
        config = load_config(args.config, overrides)
        resume = "auto" if args.auto_resume else None
    else:
        raise UserError("give --config FILE.toml (see configs/), or --resume RUN_DIR")
    _training_logs(args.quiet)
    quiet_third_party_progress()
    result = train(config, resume=resume)
    if _is_rank0():
        print(f"trained {result.step} steps; checkpoint: {result.checkpoint}")
        if result.export is not None:
            print(f"exported: {result.export}")
    return 0


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train or fine-tune a model (DDP/FSDP under torchrun)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Train MusicFlux from a TOML config. Steps are optimizer steps; checkpoints go to\n"
            "RUN_DIR/checkpoints/step_NNNNNN and the EMA model to RUN_DIR/export at the end.\n\n"
            "examples:\n"
            "  fluxmusic train --config configs/train_tiny.toml\n"
            "  fluxmusic train --config configs/train_demo.toml --set run.max_steps=5000\n"
            "  fluxmusic train --resume runs/small\n"
            "  torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\\n"
            "      -m fluxmusic train --config configs/train_small.toml\n"
            "see docs/training.md"
        ),
    )
    p.add_argument("--config", help="experiment file (TOML)")
    p.add_argument(
        "--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config key (repeatable)"
    )
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its newest complete checkpoint")
    p.add_argument(
        "--auto-resume",
        action="store_true",
        help="with --config: continue run.dir if it holds a checkpoint, else start it (preemptible jobs)",
    )
    p.add_argument(
        "--init-from", metavar="PATH", help="start from these weights (reference .pt, safetensors, folder)"
    )
    p.add_argument("--run-dir", metavar="DIR", help="run folder (same as --set run.dir=DIR)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(handler=_cmd_train)


def _cmd_preprocess(args: argparse.Namespace) -> int:
    from fluxmusic.training.config import load_config
    from fluxmusic.training.prepare import prepare_shards

    overrides = [*(args.set or []), f"data.manifest={json.dumps(args.manifest)}", 'data.shards=""']
    config = load_config(args.config, overrides)
    _training_logs(args.quiet)
    quiet_third_party_progress()
    bar = None
    if not args.quiet and _is_rank0():
        from tqdm.auto import tqdm

        bar = tqdm(desc="preprocess", unit="item")
    result = prepare_shards(
        config,
        args.manifest,
        args.output,
        args.crop,
        args.batch_size,
        args.shard_size,
        bar.update if bar else None,
    )
    if bar is not None:
        bar.close()
    index = result["index"]
    if index is not None:
        print(f"wrote {index['num_rows']} rows in {len(index['shards'])} shard(s) to {args.output}")
        for item in index["skipped"]:
            print(f"skipped item {item['item']}: {item['path']}: {item['reason']}")
    return 0


def add_preprocess(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preprocess",
        help="encode audio and captions into training shards (VAE posteriors + text embeddings)",
        description=(
            "Encode every item of MANIFEST with the VAE and text encoder of --config (default: AudioLDM2 "
            "VAE, "
            "T5-XXL + CLAP) into OUTPUT/shards; resumable, and split across ranks under torchrun. "
            "Train on it with --set data.shards=OUTPUT. Example: fluxmusic preprocess data/train.json "
            "data/latents --config configs/train_small.toml"
        ),
    )
    p.add_argument("manifest", help="manifest (.json reference list, .jsonl or .csv)")
    p.add_argument("output", help="output folder (resumed if it exists)")
    p.add_argument("--config", help="training config whose [vae], [text], [data] and [run] settings to use")
    p.add_argument(
        "--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config key (repeatable)"
    )
    p.add_argument("--crop", default="random", choices=("random", "start", "windows"),
                   help="one seeded window per item (default), the start, or every window")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=8, help="clips per encoder call (default 8)")
    p.add_argument("--shard-size", type=int, default=256, help="rows per shard (default 256)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_preprocess)


def _cmd_data_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fluxmusic.data.check import check_manifest
    from fluxmusic.data.manifest import write_manifest

    manifest = Path(args.manifest)
    report_path = Path(args.report) if args.report else manifest.with_name(f"{manifest.stem}.check.json")
    bar = None
    if not args.quiet:
        from tqdm.auto import tqdm

        bar = tqdm(desc="checking", unit="file")
    report = check_manifest(
        manifest, args.min_duration, decode=not args.headers_only, workers=args.workers,
        report_path=report_path, progress=bar.update if bar else None,
    )  # fmt: skip
    if bar is not None:
        bar.close()
    for verdict in report.bad:
        print(verdict.describe())
    summary = report.summary()
    print(
        f"{summary['ok']} of {summary['total']} items ok ({summary['usable_hours']:.2f} h), "
        f"{summary['bad']} bad {summary['by_status']}; report: {report_path}"
    )
    if args.write_clean:
        from fluxmusic.data.manifest import read_manifest

        good = set(report.good_indices)
        path = write_manifest([i for i in read_manifest(manifest) if i.index in good], args.write_clean)
        print(f"wrote the {len(good)} good items to {path}")
    return 1 if report.bad else 0


def add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="dataset tools: check a manifest, build the demo dataset")
    data_sub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    check = data_sub.add_parser(
        "check",
        help="validate every item of a manifest and write a report",
        description=(
            "Open and decode every item of MANIFEST; report missing, corrupt, empty, too-short and silent "
            "files (and low sample rates) with their paths. Exit status 1 when any item is bad. "
            "Example: fluxmusic data check data/train.json --write-clean data/train.clean.json"
        ),
    )
    check.add_argument("manifest", help="manifest (.json reference list, .jsonl or .csv)")
    check.add_argument("--report", help="report file (JSON; default: MANIFEST_STEM.check.json beside it)")
    check.add_argument(
        "--min-duration", type=float, default=1.0, help="shortest usable item, seconds (default 1.0)"
    )
    check.add_argument(
        "--headers-only", action="store_true", help="read headers only (fast; no silence check)"
    )
    check.add_argument("--workers", type=int, default=4, help="threads (default 4)")
    check.add_argument("--write-clean", metavar="PATH", help="also write a manifest of the good items")
    check.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    check.set_defaults(handler=_cmd_data_check)
    from fluxmusic.data.demo import add_build_demo_arguments, run_build_demo

    demo = data_sub.add_parser(
        "build-demo",
        help="render the demo text-to-music dataset (music21 corpus + FluidSynth)",
        description="Build the demo dataset (see docs/demo-dataset.md).",
    )
    add_build_demo_arguments(demo)
    demo.set_defaults(handler=run_build_demo)
    p.set_defaults(handler=lambda _args: (p.print_help(), 2)[1])
