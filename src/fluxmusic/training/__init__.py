"""Training and fine-tuning: configs, the DDP/FSDP loop, EMA, checkpoints and resume, and the component
trainers (bundled VAE and vocoder, :mod:`fluxmusic.training.components`) as tenants of the same framework.
LoRA adapters live beside the model (:mod:`fluxmusic.model.lora`).

``train`` runs any trainer's config (dispatched on ``run.trainer``, :mod:`fluxmusic.training.trainers`);
``load_experiment`` / ``resume_experiment`` read any trainer's config, ``load_config`` / ``resume_config``
the transformer's. Submodules are imported on first use of a name, so ``import fluxmusic.training`` stays
cheap.
"""

from fluxmusic.lazy import lazy_exports

_LAZY = {
    "TrainConfig": "fluxmusic.training.config",
    "load_config": "fluxmusic.training.config",
    "parse_override": "fluxmusic.training.config",
    "train": "fluxmusic.training.trainers",
    "load_experiment": "fluxmusic.training.trainers",
    "resume_experiment": "fluxmusic.training.trainers",
    "resume_config": "fluxmusic.training.loop",
    "TrainResult": "fluxmusic.training.runs",
    "EMA": "fluxmusic.training.ema",
    "latest_checkpoint": "fluxmusic.training.checkpoint",
    "list_checkpoints": "fluxmusic.training.checkpoint",
    "prepare_shards": "fluxmusic.training.prepare",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)
