"""The ``fluxmusic`` command line: thin argparse subcommands that call the library.

User mistakes (bad arguments, unreadable files, unavailable weights) end with a one-line message on
stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
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
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default 50)")
    p.add_argument(
        "--guidance", type=float, default=None, help="classifier-free guidance scale (default 7.0)"
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
        help="ODE sampler (default euler, the reference's)",
    )
    p.add_argument("--shift", type=float, default=1.0, help="time-grid shift (1.0 = uniform)")
    p.add_argument("--seed", type=int, default=None, help="seed of the first clip; clip i uses seed + i")
    p.add_argument("--num-per-prompt", type=int, default=1, help="clips per prompt")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--dtype",
        default="auto",
        choices=("auto", "float32", "bfloat16", "float16"),
        help="transformer compute precision (auto: bf16 on CPU/CUDA)",
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


SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (_add_generate, _add_convert)


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
    except (UserError, ValueError, FileNotFoundError, PermissionError, IsADirectoryError) as err:
        print(f"fluxmusic {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
