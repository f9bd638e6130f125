"""``fluxmusic generate``: text to audio files with a model folder, a hub id or the bundled model."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from fluxmusic.audio.formats import WRITE_FORMATS
from fluxmusic.cli.console import UserError, add_device, command, quiet_third_party_progress
from fluxmusic.cli.prompts import read_prompt_file
from fluxmusic.cli.sharded import run_sharded, sharded_requested
from fluxmusic.flow.names import QUALITIES, SAMPLERS

if TYPE_CHECKING:
    from fluxmusic.pipeline import AudioOutput, FluxMusicPipeline
    from fluxmusic.sampling import SampleSettings

GENERATE_HELP = "generate music from text prompts"
GENERATE_DESCRIPTION = (
    "Generate music from text. Without --model, the small model bundled with the package is used\n"
    "(no network needed). Each output gets a .json sidecar with everything needed to\n"
    "regenerate it.\n\n"
    "examples:\n"
    '  fluxmusic generate "a calm piano piece" -o calm.wav\n'
    '  fluxmusic generate "a fast fiddle reel" "a slow organ chorale" -o outputs/ --seed 7\n'
    "  fluxmusic generate --prompt-file prompts.txt -o outputs/ --model small --steps 50\n"
    "  torchrun --nproc-per-node 4 -m fluxmusic generate --prompt-file prompts.txt -o outputs/\n"
    '  fluxmusic generate "a slow organ chorale" --duration 60 -o long.wav      # window by window\n'
    '  fluxmusic generate "a bright fiddle reel" --init-audio sketch.wav --strength 0.6 -o var.wav\n'
    '  fluxmusic generate "a calm piano piece" --inpaint take.wav --region 2:3.5 -o fixed.wav\n'
    '  fluxmusic generate "a jig" --continue intro.wav --duration 20 -o longer.wav\n'
    "Editing and long pieces: docs/editing.md.\n"
)


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


def given_settings(args: argparse.Namespace, names: tuple[str, ...] | None = None) -> dict[str, object]:
    """The sampling settings given on the command line (each ``SampleSettings`` field from the flag of the
    same name; ``None`` = not given), checked before any model loads by ``SampleSettings`` itself; a bad
    one ends as one line naming its flag."""
    from fluxmusic.sampling import SETTING_FIELDS, SampleSettings, SettingsError

    given = {k: getattr(args, k, None) for k in (names or SETTING_FIELDS)}
    try:
        SampleSettings.resolve(default_duration=1.0, **given)
    except SettingsError as err:
        raise UserError(f"--{err.setting.replace('_', '-')} {err.reason}") from None
    return given


def _prompts(args: argparse.Namespace) -> list[str]:
    prompts = list(args.prompt)
    if args.prompt_file:
        prompts += read_prompt_file(args.prompt_file)
    if not prompts or any(not p.strip() for p in prompts):
        raise UserError('give a prompt, e.g. fluxmusic generate "a calm piano piece", or --prompt-file FILE')
    for i, prompt in enumerate(prompts):
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError:
            raise UserError(f"prompt {i + 1} is not valid UTF-8 text; pass it in UTF-8") from None
    for flag in ("num_per_prompt", "batch_size"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    return prompts


EDIT_FLAGS = {"init_audio": "--init-audio", "inpaint": "--inpaint", "continue_from": "--continue"}


def _edit_flags(args: argparse.Namespace) -> str | None:
    """Which edit the flags ask for (a key of ``EDIT_FLAGS``, None for text-to-music); wrong combinations
    end as one line."""
    chosen = [name for name in EDIT_FLAGS if getattr(args, name) is not None]
    if len(chosen) > 1:
        raise UserError(f"{' and '.join(EDIT_FLAGS[c] for c in chosen)} do not combine; give one of them")
    edit = chosen[0] if chosen else None
    if args.strength is not None and edit != "init_audio":
        raise UserError("--strength applies to --init-audio only; give --init-audio FILE --strength S")
    if args.region and edit != "inpaint":
        raise UserError("--region applies to --inpaint only; give --inpaint FILE --region START:END")
    if edit == "inpaint" and not args.region:
        raise UserError("--inpaint needs at least one --region START:END (seconds) to regenerate")
    if edit == "continue_from" and args.duration is None:
        raise UserError("--continue needs --duration D: the total length in seconds, the input included")
    if edit in ("init_audio", "inpaint") and args.duration is not None:
        raise UserError(f"--duration does not apply to {EDIT_FLAGS[edit]}: the output has the input's length")
    if args.overlap is not None and edit in ("init_audio", "inpaint"):
        raise UserError("--overlap applies to long pieces (--duration) and --continue only")
    return edit


def _flag_error(err: Exception) -> UserError:
    from fluxmusic.sampling import SettingsError

    if isinstance(err, SettingsError):
        return UserError(f"--{err.setting.replace('_', '-')} {err.reason}")
    return UserError(str(err))


def _edit_request(args: argparse.Namespace, edit: str | None) -> dict[str, Any]:
    """The checked parameters of the edit (its input read and checked), before any output is planned."""
    from fluxmusic.errors import InputError
    from fluxmusic.pipeline.edit_inputs import (
        LONG_FORM_MAX_SECONDS,
        check_regions,
        check_strength,
        check_total_duration,
        parse_region,
    )

    try:
        if args.duration is not None and args.duration > LONG_FORM_MAX_SECONDS:
            check_total_duration(args.duration, 0.0)
        request: dict[str, Any] = {"overlap": None if args.overlap is None else _seconds(args.overlap)}
        if edit == "init_audio":
            request["strength"] = check_strength(0.5 if args.strength is None else _number(args.strength))
        regions = [parse_region(text) for text in args.region or ()]
        if edit is None:
            return request
        from fluxmusic.audio import SAMPLE_RATE
        from fluxmusic.pipeline.editing import load_input

        source = load_input(getattr(args, edit), SAMPLE_RATE)
        request["audio"] = source
        if edit == "inpaint":
            request["regions"] = check_regions(regions, source.seconds)
        if edit == "continue_from":
            check_total_duration(args.duration, source.seconds)
    except InputError as err:
        raise _flag_error(err) from None
    return request


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UserError(f"--strength must be a number in (0, 1], got {text!r}") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise UserError(f"--overlap must be a number of seconds >= 0, got {text!r}")
    return value


def _run_batch(
    pipe: FluxMusicPipeline,
    edit: str | None,
    request: dict[str, Any],
    batch: list[str],
    settings: SampleSettings,
    progress: bool,
) -> AudioOutput:
    """One micro-batch of the requested operation (``settings`` narrowed to the batch's rows)."""
    from fluxmusic.pipeline import editing, long_form
    from fluxmusic.pipeline.edit_inputs import EditRun

    audio, overlap, run = request.get("audio"), request["overlap"], EditRun(progress=progress)
    if edit == "init_audio":
        return editing.vary(pipe, audio, batch, settings, request["strength"], run)
    if edit == "inpaint":
        return editing.inpaint(pipe, audio, batch, settings, request["regions"], run)
    if edit == "continue_from":
        return long_form.continuation(pipe, audio, batch, settings, overlap, run)
    if settings.duration > pipe.spec.default_duration or overlap is not None:
        return long_form.long_form(pipe, batch, settings, overlap, run)
    return pipe.generate(batch, settings, progress=progress)


def _cmd_generate(args: argparse.Namespace) -> int:
    prompts = _prompts(args)
    given = {**given_settings(args), "quality": args.quality}
    edit = _edit_flags(args)
    request = _edit_request(args, edit)
    if sharded_requested(args):  # torchrun or --resume: cli/sharded.py
        if edit is not None:
            raise UserError(f"{EDIT_FLAGS[edit]} does not run sharded or resumed; run it without torchrun")
        rows = [p for p in prompts for _ in range(args.num_per_prompt)]
        return run_sharded(
            args, rows, given, lambda pipe, b, s: _run_batch(pipe, None, request, b, s, not args.quiet)
        )

    from fluxmusic.audio import SAMPLE_RATE
    from fluxmusic.devices import resolve_device
    from fluxmusic.errors import InputError
    from fluxmusic.pipeline import FluxMusicPipeline, output_paths, plan_outputs, save_outputs
    from fluxmusic.pipeline.edit_inputs import LONG_FORM_MAX_SECONDS
    from fluxmusic.pipeline.request import micro_batches, with_seed
    from fluxmusic.sampling import SettingsError

    resolve_device(args.device)  # an absent GPU is refused before any output folder is made
    rows = [p for p in prompts for _ in range(args.num_per_prompt)]
    plan = plan_outputs(output_paths(args.output, rows, args.format), args.overwrite, args.spectrogram)
    written = 0
    try:
        quiet_third_party_progress()
        pipe = FluxMusicPipeline.from_pretrained(
            args.model, device=args.device, dtype=args.dtype, text_mode=args.text_mode
        )
        if edit is not None and pipe.sample_rate != SAMPLE_RATE:  # read again at this model's rate
            from fluxmusic.pipeline.editing import load_input

            request["audio"] = load_input(getattr(args, edit), pipe.sample_rate)
        try:
            settings = with_seed(pipe.settings(max_duration=LONG_FORM_MAX_SECONDS, **given))
        except InputError as err:
            raise _flag_error(err) from None
        run = {
            "model": args.model,
            "dtype": str(pipe.dtype).removeprefix("torch."),
            "device": str(pipe.device),
            "text_mode": args.text_mode,
        }
        for start, batch, batch_settings in micro_batches(rows, settings, args.batch_size):
            try:
                out = _run_batch(pipe, edit, request, batch, batch_settings, not args.quiet)
            except SettingsError as err:
                raise _flag_error(err) from None
            paths = plan.paths[start : start + len(batch)]
            for path in save_outputs(out, paths, run, spectrogram=args.spectrogram):
                print(path, flush=True)
                written += 1
    finally:
        if written == 0:
            plan.remove_empty_folders()
    return 0


def add_generate(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "generate", _cmd_generate, help=GENERATE_HELP, description=GENERATE_DESCRIPTION)
    p.add_argument("prompt", nargs="*", help="one or more prompts")
    p.add_argument("--prompt-file", help="text file with one prompt per line")
    p.add_argument(
        "-o",
        "--output",
        default="outputs",
        help="a file (.wav, .flac, .ogg, .mp3) or a folder (default: outputs/; numbering continues past "
        "the files already there); existing files are never replaced without --overwrite",
    )
    p.add_argument(
        "--model",
        default="bundled",
        help="'bundled' (default), a released size (small, base, large, giant, giant-full) or a model folder",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds, up to 600 (default: the model's clip length); longer than the model's trained window "
        "is made window by window; with --continue the total length, the input included",
    )
    edit = p.add_argument_group("editing (docs/editing.md)")
    edit.add_argument("--init-audio", metavar="FILE", help="make a variation of this audio (see --strength)")
    edit.add_argument(
        "--strength",
        metavar="S",
        help="variation strength in (0, 1]: small keeps the input, 1 is plain text-to-music (default 0.5)",
    )
    edit.add_argument(
        "--inpaint", metavar="FILE", help="regenerate --region spans of this audio, keep the rest"
    )
    edit.add_argument(
        "--region",
        metavar="START:END",
        action="append",
        help="seconds of the --inpaint audio to regenerate, e.g. 2:3.5 (repeatable)",
    )
    edit.add_argument(
        "--continue",
        dest="continue_from",
        metavar="FILE",
        help="continue this audio up to --duration seconds in all (its samples are kept)",
    )
    edit.add_argument(
        "--overlap",
        metavar="SECONDS",
        help="seconds of context each window of a long piece or continuation continues (default: half the "
        "model's window)",
    )
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
        help="ODE sampler (default: the model's; ab2 for the bundled model and released sizes)",
    )
    p.add_argument(
        "--quality",
        default=None,
        choices=QUALITIES,
        help="sampling preset of the model (sampler, steps, shift, step caching; docs/performance.md); "
        "reference = the reference's 50 Euler steps; --steps, --sampler, --shift and --cache-threshold "
        "override it (default: the model's defaults, balanced for the bundled model and released sizes)",
    )
    p.add_argument(
        "--cache-threshold",
        type=float,
        default=None,
        help="step caching: reuse the transformer's blocks on steps whose input changed by less than this "
        "(0 = off; default: the model's)",
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
    add_device(p, "bf16 on CUDA and on CPUs with native bf16, else fp32")
    p.add_argument(
        "--text-mode",
        default="training",
        choices=("training", "reference-sampling"),
        help="how T5/CLAP prompts are padded and masked (released models only)",
    )
    p.add_argument(
        "--format",
        default=None,
        choices=tuple(WRITE_FORMATS),
        help="audio format of folder outputs (default wav); a file's suffix names its own format",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs (never a JSON file that is not a fluxmusic sidecar)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="clips generated at once; outputs are written as each batch finishes (default 8)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="into -o FOLDER under stable names, skipping outputs already finished (on by itself under "
        "torchrun, which shards the prompts over its ranks: docs/cli.md)",
    )
    p.add_argument("--spectrogram", action="store_true", help="also write a PNG of each log-mel spectrogram")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
