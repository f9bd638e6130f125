"""What every subcommand shares: the user-error type and quieter third-party progress output."""

from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input; printed as one line, exit status 2."""


def quiet_third_party_progress() -> None:
    """Our own progress bar is the one that matters; silence the loaders' per-weight bars."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    diffusers_logging.disable_progress_bar()
