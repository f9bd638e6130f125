"""Deterministic seeds derived from keys, so every random draw in data and training is reproducible.

A random draw is identified by a tuple of keys, e.g. ``(seed, "crop", epoch, position)`` or
``(seed, "step", rank, step, micro)``, and gets its own ``torch.Generator`` seeded from a hash of that
tuple. Nothing depends on how many draws came before, which makes resuming bit-exact: only the step and
the data position need saving, not a generator's evolving state.
"""

from __future__ import annotations

import hashlib

import torch

__all__ = ["derive_seed", "generator"]


def derive_seed(*keys: int | str) -> int:
    """A 63-bit seed from a tuple of ints and strings (blake2b of their text; stable across runs).

    Args:
        *keys: What identifies the draw.

    Returns:
        An int in ``[0, 2**63)``.
    """
    text = "\x1f".join(f"{type(k).__name__}:{k}" for k in keys)
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little") >> 1


def generator(*keys: int | str) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``derive_seed(*keys)``."""
    return torch.Generator().manual_seed(derive_seed(*keys))
