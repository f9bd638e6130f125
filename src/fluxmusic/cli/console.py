"""What the command line shares: subcommand parsers, common options, user errors, progress and logs."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable

from fluxmusic.errors import FluxmusicError

Handler = Callable[[argparse.Namespace], int]
"""What a subcommand runs: the parsed arguments in, the exit status out."""


class UserError(FluxmusicError):
    """An error caused by the user's input; printed as one line, exit status 2."""


def command(
    sub: argparse._SubParsersAction, name: str, handler: Handler, *, help: str, description: str
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` to ``sub``; parsing it sets ``args.handler`` to ``handler``.

    A ``description`` with line breaks (example lines) is shown as written; one without is wrapped to the
    terminal's width.

    Returns:
        The subcommand's parser, for its arguments.
    """
    layout = argparse.RawDescriptionHelpFormatter if "\n" in description else argparse.HelpFormatter
    parser = sub.add_parser(name, help=help, description=description, formatter_class=layout)
    parser.set_defaults(handler=handler)
    return parser


def add_overrides(parser: argparse.ArgumentParser) -> None:
    """``--set SECTION.KEY=VALUE`` (repeatable): config keys over the file's, collected in ``args.set``."""
    parser.add_argument(
        "--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config key (repeatable)"
    )


def add_device(parser: argparse.ArgumentParser, auto_dtype: str) -> None:
    """``--device`` and ``--dtype`` of the loaded model; ``auto_dtype`` says what ``--dtype auto`` picks."""
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=("auto", "float32", "bfloat16", "float16"),
        help=f"transformer compute precision (auto: {auto_dtype})",
    )


def add_quiet(parser: argparse.ArgumentParser, shown: str = "progress bar") -> None:
    """``-q`` / ``--quiet``: turn off what the command shows while it works (``shown``)."""
    parser.add_argument("-q", "--quiet", action="store_true", help=f"no {shown}")


def quiet_third_party_progress() -> None:
    """Our own progress bar is the one that matters; silence the loaders' per-weight bars."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    diffusers_logging.disable_progress_bar()


def training_logs(quiet: bool) -> None:
    """Show the trainer's progress lines (INFO) on rank 0 unless quiet; other ranks log warnings only."""
    if not quiet and is_rank0():
        logging.getLogger("fluxmusic.training").setLevel(logging.INFO)


def is_rank0() -> bool:
    """True outside torchrun and on its rank 0 (the process that prints)."""
    return os.environ.get("RANK", "0") == "0"
