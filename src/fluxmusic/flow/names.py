"""The sampler names and their cost, importable without torch (the command line's ``--help`` lists them)."""

from __future__ import annotations

SAMPLERS: tuple[str, ...] = ("euler", "heun", "midpoint")
"""Every ODE sampler of :func:`fluxmusic.flow.sample`; ``euler`` is the reference's."""

EVALS_PER_STEP: dict[str, int] = {"euler": 1, "heun": 2, "midpoint": 2}
"""Network evaluations per step of each sampler."""
