"""The ``fluxmusic`` command line: thin argparse subcommands that call the library.

One module per subcommand family (:mod:`.generate`, :mod:`.models`, :mod:`.train`, :mod:`.data`,
:mod:`.evaluate`). User mistakes (bad arguments, unreadable files, unavailable weights: the library's
``fluxmusic.errors.FluxmusicError`` types and file-system errors on the paths given) end with a one-line
message on stderr and exit status 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from fluxmusic.cli.console import UserError
from fluxmusic.cli.data import add_data
from fluxmusic.cli.evaluate import add_evaluate
from fluxmusic.cli.generate import add_generate, read_prompt_file
from fluxmusic.cli.models import add_bundle, add_convert
from fluxmusic.cli.serve import add_serve
from fluxmusic.cli.train import add_preprocess, add_train
from fluxmusic.errors import FluxmusicError
from fluxmusic.version import __version__

__all__ = ["UserError", "build_parser", "main", "read_prompt_file"]


USER_ERRORS: tuple[type[BaseException], ...] = (
    FluxmusicError,  # the library's own user-error types (fluxmusic.errors), UserError included
    FileNotFoundError,  # a path the user named: missing, in the way, not writable
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)
"""What ``main`` reports as one line (exit status 2); anything else is a bug and keeps its traceback."""

SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    add_generate,
    add_convert,
    add_bundle,
    add_train,
    add_preprocess,
    add_data,
    add_evaluate,
    add_serve,
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
    except USER_ERRORS as err:
        print(f"fluxmusic {args.command}: error: {err}", file=sys.stderr)
        return 2
