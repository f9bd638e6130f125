"""The ``fluxmusic`` command line: thin argparse subcommands that call the library.

User mistakes (bad arguments, unreadable files, unavailable weights) end with a one-line message on
stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from fluxmusic import __version__

Handler = Callable[[argparse.Namespace], int]


class UserError(Exception):
    """An error caused by the user's input; printed as one line, exit status 2."""


def _cmd_convert(args: argparse.Namespace) -> int:
    from fluxmusic.checkpoints import convert

    out, preset = convert(args.input, args.output, preset=args.preset, key=args.key)
    print(f"wrote {out} (preset: {preset or 'from config'})")
    return 0


def _add_guidance_interval(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument(
        "--guidance-interval", type=float, nargs=2, metavar=("LO", "HI"), default=None, help=help_text
    )


def _cmd_bundle(args: argparse.Namespace) -> int:
    import torch

    from fluxmusic.components import bundle_model_dir

    names = ("steps", "guidance", "guidance_interval", "sampler", "negative_prompt")
    defaults = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be >= 1, got {args.steps}")
    out = bundle_model_dir(
        args.input, args.output, dtype=getattr(torch, args.dtype), defaults=defaults, name=args.name
    )
    print(f"wrote {out}")
    return 0


def _add_bundle(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bundle",
        help="freeze a model folder for shipping (smaller weights, recorded sha256 hashes)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Copy a model folder (e.g. a training run's export) with the transformer weights stored in\n"
            "--dtype, new sampling defaults, and a sha256 table that loading checks. This is how the\n"
            "bundled model is made (docs/bundled-model.md).\n\n"
            "example:\n"
            "  fluxmusic bundle runs/bundled_model/export src/fluxmusic/bundled/model --steps 32\n"
        ),
    )
    p.add_argument("input", help="model folder (with fluxmusic.json)")
    p.add_argument("output", help="new, empty output folder")
    p.add_argument(
        "--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"), help="weight storage"
    )
    p.add_argument("--steps", type=int, default=None, help="default sampling steps")
    p.add_argument("--guidance", type=float, default=None, help="default guidance scale")
    _add_guidance_interval(p, "default guidance interval: guide only at times LO <= t <= HI (t = 1 is noise)")
    p.add_argument("--sampler", default=None, choices=("euler", "heun", "midpoint"), help="default sampler")
    p.add_argument("--negative-prompt", default=None, help="default negative prompt")
    p.add_argument("--name", default=None, help="model name recorded in fluxmusic.json")
    p.set_defaults(handler=_cmd_bundle)


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a reference FluxMusic checkpoint to safetensors + config.json",
        description=(
            "Read a reference checkpoint (a pickled dict with 'ema', a bare state dict, or safetensors) "
            "safely -- pickles are opened with torch.load(weights_only=True) and nothing in them runs -- "
            "check it loads strictly, and write OUTPUT/model.safetensors and OUTPUT/config.json. "
            "Example: fluxmusic convert musicflow_s.pt models/fluxmusic-small"
        ),
    )
    p.add_argument("input", help="reference .pt/.pth, .safetensors file, or a model folder")
    p.add_argument("output", help="output folder")
    p.add_argument(
        "--preset",
        default=None,
        help="model size (small, base, large, giant, giant_full, biggiant); "
        "inferred from the weights if omitted",
    )
    p.add_argument(
        "--key", default=None, help="entry of a pickled dict to read (default: 'ema', else 'model')"
    )
    p.set_defaults(handler=_cmd_convert)


def read_prompt_file(path: str) -> list[str]:
    """Prompts from a text file, one per line (blank lines and ``#`` comments skipped)."""
    try:
        lines = open(path, encoding="utf-8").read().splitlines()  # noqa: SIM115
    except FileNotFoundError:
        raise UserError(f"prompt file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read prompt file {path}: {err}") from None
    prompts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise UserError(f"prompt file {path} holds no prompts; write one prompt per line")
    return prompts


def _quiet_third_party_progress() -> None:
    """Our own progress bar is the one that matters; silence the loaders' per-weight bars."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    diffusers_logging.disable_progress_bar()


def _cmd_generate(args: argparse.Namespace) -> int:
    prompts = list(args.prompt)
    if args.prompt_file:
        prompts += read_prompt_file(args.prompt_file)
    if not prompts or any(not p.strip() for p in prompts):
        raise UserError('give a prompt, e.g. fluxmusic generate "a calm piano piece", or --prompt-file FILE')
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be >= 1, got {args.steps}")
    if args.duration is not None and not 0 < args.duration < float("inf"):
        raise UserError(f"--duration must be a positive number of seconds, got {args.duration}")
    if args.guidance is not None and not abs(args.guidance) < float("inf"):
        raise UserError(f"--guidance must be a finite number, got {args.guidance}")

    from fluxmusic.export import check_writable, output_paths, save_outputs
    from fluxmusic.pipeline import FluxMusicPipeline

    _quiet_third_party_progress()

    expanded = [p for p in prompts for _ in range(args.num_per_prompt)]
    paths = output_paths(args.output, expanded, args.format)
    check_writable(paths)
    pipe = FluxMusicPipeline.from_pretrained(
        args.model, device=args.device, dtype=args.dtype, text_mode=args.text_mode
    )
    out = pipe(
        prompts,
        negative_prompt=args.negative_prompt,
        duration=args.duration,
        steps=args.steps,
        guidance=args.guidance,
        guidance_interval=args.guidance_interval,
        sampler=args.sampler,
        shift=args.shift,
        seed=args.seed,
        num_per_prompt=args.num_per_prompt,
        progress=not args.quiet,
    )
    defaults = pipe.spec.defaults
    settings = {
        "model": args.model,
        "sampler": args.sampler or defaults.get("sampler", "euler"),
        "steps": args.steps or defaults.get("steps", 50),
        "guidance": defaults.get("guidance", 7.0) if args.guidance is None else args.guidance,
        "guidance_interval": defaults.get("guidance_interval")
        if args.guidance_interval is None
        else args.guidance_interval,
        "negative_prompt": defaults.get("negative_prompt", "")
        if args.negative_prompt is None
        else args.negative_prompt,
        "duration": args.duration or pipe.spec.default_duration,
        "shift": args.shift,
        "dtype": str(pipe.dtype).removeprefix("torch."),
        "device": str(pipe.device),
        "text_mode": args.text_mode,
    }
    for path in save_outputs(out, paths, settings, spectrogram=args.spectrogram):
        print(path)
    return 0


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate music from text prompts",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Generate music from text. Without --model, the small model bundled with the package is used\n"
            "(no network needed). Each output gets a .json sidecar with everything needed to\n"
            "regenerate it.\n\n"
            "examples:\n"
            '  fluxmusic generate "a calm piano piece" -o calm.wav\n'
            '  fluxmusic generate "a fast fiddle reel" "a slow organ chorale" -o outputs/ --seed 7\n'
            "  fluxmusic generate --prompt-file prompts.txt -o outputs/ --model small --steps 50\n"
        ),
    )
    p.add_argument("prompt", nargs="*", help="one or more prompts")
    p.add_argument("--prompt-file", help="text file with one prompt per line")
    p.add_argument(
        "-o", "--output", default="outputs", help="file (.wav/.flac) or folder (default: outputs/)"
    )
    p.add_argument(
        "--model",
        default="bundled",
        help="'bundled' (default), a released size (small, base, large, giant, giant-full) or a model folder",
    )
    p.add_argument("--duration", type=float, default=None, help="seconds (default: the model's clip length)")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    p.add_argument(
        "--guidance", type=float, default=None, help="classifier-free guidance scale (default: the model's)"
    )
    _add_guidance_interval(
        p,
        "guide only at times LO <= t <= HI (t = 1 is noise); the other steps cost half "
        "(default: the model's, else every step)",
    )
    p.add_argument(
        "--negative-prompt",
        default=None,
        help="what to steer away from (default: the model's unconditional prompt)",
    )
    p.add_argument(
        "--sampler",
        default=None,
        choices=("euler", "heun", "midpoint"),
        help="ODE sampler (default: the model's; euler for released sizes, as the reference)",
    )
    p.add_argument("--shift", type=float, default=1.0, help="time-grid shift (1.0 = uniform)")
    p.add_argument("--seed", type=int, default=None, help="seed of the first clip; clip i uses seed + i")
    p.add_argument("--num-per-prompt", type=int, default=1, help="clips per prompt")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--dtype",
        default="auto",
        choices=("auto", "float32", "bfloat16", "float16"),
        help="transformer compute precision (auto: bf16 on CUDA and on CPUs with native bf16, else fp32)",
    )
    p.add_argument(
        "--text-mode",
        default="training",
        choices=("training", "reference-sampling"),
        help="how T5/CLAP prompts are padded and masked (released models only)",
    )
    p.add_argument("--format", default="wav", choices=("wav", "flac"), help="audio format for folder outputs")
    p.add_argument("--spectrogram", action="store_true", help="also write a PNG of each log-mel spectrogram")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_cmd_generate)


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
    _quiet_third_party_progress()
    result = train(config, resume=resume)
    if _is_rank0():
        print(f"trained {result.step} steps; checkpoint: {result.checkpoint}")
        if result.export is not None:
            print(f"exported: {result.export}")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
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
    _quiet_third_party_progress()
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


def _add_preprocess(sub: argparse._SubParsersAction) -> None:
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


def _add_data(sub: argparse._SubParsersAction) -> None:
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


SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_generate,
    _add_convert,
    _add_bundle,
    _add_train,
    _add_preprocess,
    _add_data,
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (one subparser per subcommand)."""
    parser = argparse.ArgumentParser(
        prog="fluxmusic",
        description="Text-to-music generation with rectified-flow transformers (FluxMusic).",
    )
    parser.add_argument("--version", action="version", version=f"fluxmusic {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fluxmusic`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("fluxmusic: interrupted", file=sys.stderr)
        return 130
    except (
        UserError,
        ValueError,
        FileNotFoundError,
        FileExistsError,
        PermissionError,
        IsADirectoryError,
    ) as err:
        print(f"fluxmusic {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
