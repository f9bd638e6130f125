"""The sampler names and their cost, importable without torch (the command line's ``--help`` lists them)."""

from __future__ import annotations

SAMPLERS: tuple[str, ...] = ("euler", "heun", "midpoint", "ab2", "dpmpp_2m")
"""Every ODE sampler of :func:`fluxmusic.flow.sample`; ``euler`` is the reference's; ``ab2`` (two-step
Adams-Bashforth on the velocity) and ``dpmpp_2m`` (DPM-Solver++(2M) in flow form) are second-order
multistep solvers at one network call per step, for few steps."""

EVALS_PER_STEP: dict[str, int] = {"euler": 1, "heun": 2, "midpoint": 2, "ab2": 1, "dpmpp_2m": 1}
"""Network evaluations per step of each sampler."""

MULTISTEP: frozenset[str] = frozenset({"ab2", "dpmpp_2m"})
"""Samplers that reuse earlier steps' evaluations (their history restarts with every ``sample`` call)."""

QUALITIES: tuple[str, ...] = ("draft", "balanced", "best", "reference")
"""The sampling presets, cheapest first (``fluxmusic generate --quality``; ``fluxmusic.sampling`` resolves
them from a model folder's ``defaults["presets"]``); ``reference`` is the reference sampling script's
integration (50 uniform Euler steps)."""
