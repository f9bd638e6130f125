"""Where this process sits in a launch: torchrun's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
``LOCAL_WORLD_SIZE``, read in one place for sharded generation and for training."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from fluxmusic.errors import InputError

__all__ = ["Ranks", "launched"]


@dataclass(frozen=True)
class Ranks:
    """Where this process sits in a (torchrun) launch; one process alone is rank 0 of 1.

    Attributes:
        rank: Global rank.
        world: Number of processes.
        local_rank: Rank on this node (picks the GPU).
        local_world: Processes on this node (shares the CPU cores).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world or not 0 <= self.local_rank < self.local_world:
            raise InputError(f"bad ranks: rank {self.rank} of {self.world}, local {self.local_rank}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Ranks:
        """Read torchrun's variables (absent: one process)."""
        env = os.environ if environ is None else environ
        try:
            world = int(env.get("WORLD_SIZE", "1"))
            return cls(
                rank=int(env.get("RANK", "0")),
                world=world,
                local_rank=int(env.get("LOCAL_RANK", "0")),
                local_world=int(env.get("LOCAL_WORLD_SIZE", str(world))),
            )
        except ValueError:
            raise InputError(
                "RANK / WORLD_SIZE / LOCAL_RANK are not integers; launch with torchrun"
            ) from None


def launched(environ: Mapping[str, str] | None = None) -> bool:
    """Whether torchrun (or another launcher) set ``RANK`` and ``WORLD_SIZE``."""
    env = os.environ if environ is None else environ
    return "WORLD_SIZE" in env and "RANK" in env
