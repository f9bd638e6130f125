"""``fluxmusic generate``: text to audio files with a model folder, a hub id or the bundled model."""

from __future__ import annotations

import argparse

from fluxmusic.cli.console import UserError, quiet_third_party_progress
from fluxmusic.flow.names import SAMPLERS


def add_guidance_shape(p: argparse.ArgumentParser, default: str) -> None:
    """``--guidance-interval LO HI``, ``--guidance-eta`` and ``--shift`` (shared by ``generate`` and
    ``bundle``); ``default`` ends each help text, e.g. "(default: the model's)"."""
    p.add_argument(
        "--guidance-interval",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        default=None,
        help=f"guide only at times LO <= t <= HI (t = 1 is noise); the other steps cost half {default}",
    )
    p.add_argument(
        "--guidance-eta",
        type=float,
        default=None,
        help="projected guidance: weight of the guidance update's part along the denoised estimate "
        f"(1 = plain guidance, 0 = push the content only, not the level) {default}",
    )
    p.add_argument(
        "--shift",
        type=float,
        default=None,
        help=f"time-grid shift (1 = uniform, > 1 = more steps near noise) {default}",
    )


SETTING_FLAGS = (
    "duration",
    "steps",
    "guidance",
    "guidance_interval",
    "guidance_eta",
    "sampler",
    "shift",
    "negative_prompt",
    "seed",
    "bpm",
)
"""The ``SampleSettings`` fields the command line sets, each from the flag of the same name."""


def given_settings(args: argparse.Namespace, names: tuple[str, ...] = SETTING_FLAGS) -> dict[str, object]:
    """The sampling settings given on the command line (``None`` = not given), checked before any model
    loads by ``SampleSettings`` itself; a bad one ends as one line naming its flag."""
    from fluxmusic.sampling import SampleSettings, SettingsError

    given = {k: getattr(args, k, None) for k in names}
    try:
        SampleSettings.resolve(default_duration=1.0, **given)
    except SettingsError as err:
        raise UserError(f"--{err.setting.replace('_', '-')} {err.reason}") from None
    return given


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


def _cmd_generate(args: argparse.Namespace) -> int:
    prompts = list(args.prompt)
    if args.prompt_file:
        prompts += read_prompt_file(args.prompt_file)
    if not prompts or any(not p.strip() for p in prompts):
        raise UserError('give a prompt, e.g. fluxmusic generate "a calm piano piece", or --prompt-file FILE')
    given = given_settings(args)

    from fluxmusic.pipeline import FluxMusicPipeline, check_writable, output_paths, save_outputs

    quiet_third_party_progress()
    expanded = [p for p in prompts for _ in range(args.num_per_prompt)]
    paths = output_paths(args.output, expanded, args.format)
    check_writable(paths)
    pipe = FluxMusicPipeline.from_pretrained(
        args.model, device=args.device, dtype=args.dtype, text_mode=args.text_mode
    )
    settings = pipe.settings(**given)
    out = pipe.generate(prompts, settings, args.num_per_prompt, progress=not args.quiet)
    run = {
        "model": args.model,
        "dtype": str(pipe.dtype).removeprefix("torch."),
        "device": str(pipe.device),
        "text_mode": args.text_mode,
    }
    for path in save_outputs(out, paths, run, spectrogram=args.spectrogram):
        print(path)
    return 0


def add_generate(sub: argparse._SubParsersAction) -> None:
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
    add_guidance_shape(p, "(default: the model's)")
    p.add_argument(
        "--negative-prompt",
        default=None,
        help="what to steer away from (default: the model's unconditional prompt)",
    )
    p.add_argument(
        "--sampler",
        default=None,
        choices=SAMPLERS,
        help="ODE sampler (default: the model's; euler for released sizes, as the reference)",
    )
    p.add_argument(
        "--bpm",
        type=float,
        default=None,
        help="tempo for models with a tempo input, such as the bundled one (default: read from the "
        'prompt, "132 BPM" or a word like "slow"); other models take the tempo in the prompt only',
    )
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
