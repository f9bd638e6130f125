"""Fault injection for crash-safety tests: SIGKILL this process at a chosen point of a training run.

Set ``FLUXMUSIC_FAULT`` to ``kill-after-step:N`` (killed right after optimizer step N and its
checkpoint, if one falls on N) or ``kill-in-checkpoint:N`` (killed while checkpoint N is half
written: its weights are on disk in the temporary folder, its training state is not). The kill is a
real ``SIGKILL``: no handler, ``finally`` block or buffered write runs, exactly as when a node dies.
Unset (the normal case), these calls do nothing.
"""

from __future__ import annotations

import os
import signal

__all__ = ["ENV_VAR", "maybe_kill"]

ENV_VAR = "FLUXMUSIC_FAULT"


def maybe_kill(point: str, step: int) -> None:
    """SIGKILL this process if ``FLUXMUSIC_FAULT`` is ``f"{point}:{step}"``."""
    spec = os.environ.get(ENV_VAR, "")
    if spec and spec == f"{point}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)
