"""Training and fine-tuning: configs, the DDP/FSDP loop, EMA, checkpoints and resume.
LoRA adapters live beside the model (:mod:`fluxmusic.model.lora`).

Submodules are imported on first use of a name, so ``import fluxmusic.training`` stays cheap.
"""

from fluxmusic.lazy import lazy_exports

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
    "prepare_shards": "fluxmusic.training.prepare",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
