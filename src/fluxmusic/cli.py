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


SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (_add_convert,)


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
