"""Model-folder subcommands: ``fluxmusic convert`` (reference checkpoints) and ``fluxmusic bundle``."""

from __future__ import annotations

import argparse

from fluxmusic.cli.console import command
from fluxmusic.cli.generate import add_guidance_shape, given_settings
from fluxmusic.flow.names import SAMPLERS

BUNDLE_HELP = "freeze a model folder for shipping (smaller weights, recorded sha256 hashes)"
BUNDLE_DESCRIPTION = (
    "Copy a model folder (e.g. a training run's export) with the transformer weights stored in\n"
    "--dtype, new sampling defaults, and a sha256 table that loading checks. This is how the\n"
    "bundled model is made (docs/bundled-model.md).\n\n"
    "example:\n"
    "  fluxmusic bundle runs/bundled_model/export src/fluxmusic/bundled/model --steps 32\n"
)

CONVERT_HELP = "convert a reference FluxMusic checkpoint to safetensors + config.json"
CONVERT_DESCRIPTION = (
    "Read a reference checkpoint (a pickled dict with 'ema', a bare state dict, or safetensors) "
    "safely -- pickles are opened with torch.load(weights_only=True) and nothing in them runs -- "
    "check it loads strictly, and write OUTPUT/model.safetensors and OUTPUT/config.json. "
    "Example: fluxmusic convert musicflow_s.pt models/fluxmusic-small"
)


def _cmd_convert(args: argparse.Namespace) -> int:
    from fluxmusic.checkpoints import convert

    out, preset = convert(args.input, args.output, preset=args.preset, key=args.key)
    print(f"wrote {out} (preset: {preset or 'from config'})")
    return 0


def _cmd_bundle(args: argparse.Namespace) -> int:
    import torch

    from fluxmusic.modelfolder.bundle import bundle_model_dir
    from fluxmusic.sampling import DEFAULT_KEYS

    defaults = {k: v for k, v in given_settings(args, DEFAULT_KEYS).items() if v is not None}
    out = bundle_model_dir(
        args.input,
        args.output,
        dtype=getattr(torch, args.dtype),
        defaults=defaults,
        name=args.name,
        adapter=args.adapter,
    )
    print(f"wrote {out}")
    return 0


def add_bundle(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "bundle", _cmd_bundle, help=BUNDLE_HELP, description=BUNDLE_DESCRIPTION)
    p.add_argument("input", help="model folder (with fluxmusic.json)")
    p.add_argument("output", help="new, empty output folder")
    p.add_argument(
        "--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"), help="weight storage"
    )
    p.add_argument("--steps", type=int, default=None, help="default sampling steps")
    p.add_argument("--guidance", type=float, default=None, help="default guidance scale")
    add_guidance_shape(p, "(recorded as the folder's default)")
    p.add_argument("--sampler", default=None, choices=SAMPLERS, help="default sampler")
    p.add_argument("--negative-prompt", default=None, help="default negative prompt")
    p.add_argument("--name", default=None, help="model name recorded in fluxmusic.json")
    p.add_argument(
        "--adapter",
        default=None,
        help="a LoRA folder (a LoRA run's export) to ship beside the transformer, folded in on every load",
    )


def add_convert(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "convert", _cmd_convert, help=CONVERT_HELP, description=CONVERT_DESCRIPTION)
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
