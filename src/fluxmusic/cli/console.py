"""What the command line prints besides results: user errors, the loaders' progress bars, training logs."""

from __future__ import annotations

import logging
import os

from fluxmusic.errors import FluxmusicError


class UserError(FluxmusicError):
    """An error caused by the user's input; printed as one line, exit status 2."""


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
