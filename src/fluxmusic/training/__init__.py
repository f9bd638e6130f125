"""Training and fine-tuning: configs, the DDP/FSDP loop, EMA, checkpoints and resume, LoRA.

Submodules are imported on first use of a name, so ``import fluxmusic.training`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "TrainConfig": "fluxmusic.training.config",
    "load_config": "fluxmusic.training.config",
    "parse_override": "fluxmusic.training.config",
    "train": "fluxmusic.training.loop",
    "resume_config": "fluxmusic.training.loop",
    "TrainResult": "fluxmusic.training.loop",
    "EMA": "fluxmusic.training.ema",
    "latest_checkpoint": "fluxmusic.training.checkpoint",
    "list_checkpoints": "fluxmusic.training.checkpoint",
    "load_lora": "fluxmusic.training.lora",
    "remove_lora": "fluxmusic.training.lora",
    "prepare_shards": "fluxmusic.training.prepare",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fluxmusic.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


__all__ = sorted(_LAZY)
