"""The sections of a training config: one frozen, validated dataclass per concern.

See :mod:`fluxmusic.training.config` for loading TOML files and ``--set`` overrides, and docs/training.md
for a table of every key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fluxmusic.config import PRESETS, MusicFluxConfig
from fluxmusic.errors import InputError
from fluxmusic.modelfolder.registry import component_types
from fluxmusic.sampling import FALLBACKS
from fluxmusic.training.checkpoint import KEEP_LAST

__all__ = [
    "AdamWConfig",
    "BaseRunConfig",
    "DataConfig",
    "EMAConfig",
    "FlowConfig",
    "LoRAConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "SampleConfig",
    "TextConfig",
    "VAEConfig",
    "VocoderConfig",
    "require_at_least",
    "require_choice",
]


def require_choice(section: str, name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """Raise ``ValueError`` naming ``section.name`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise InputError(f"{section}.{name} must be one of {', '.join(map(str, choices))}; got {value!r}")


def require_at_least(section: str, name: str, value: float, low: float) -> None:
    """Raise ``ValueError`` naming ``section.name`` unless ``value >= low``."""
    if value < low:
        raise InputError(f"{section}.{name} must be >= {low}, got {value}")


@dataclass(frozen=True)
class BaseRunConfig:
    """The ``[run]`` keys of every trainer (the transformer's and the components', see docs/training.md).

    Attributes:
        trainer: Which trainer the config is for: ``musicflux`` (the transformer), ``vae`` or ``vocoder``
            (the bundled components, :mod:`fluxmusic.training.components`).
        dir: Run folder (checkpoints, logs, samples, export).
        seed: Master seed; every random draw derives from it (and, for the transformer, the rank and step).
        max_steps: Optimizer steps to train (micro-batches are not steps); the schedule's horizon.
        log_every: Steps between logged lines (the only host syncs of the loop).
        checkpoint_every: Steps between checkpoints (one is always written at the end).
        keep_last: Checkpoints kept (older ones are deleted).
        export: Write the trained model (``RUN_DIR/export``, components ``RUN_DIR/final``) at the end.
        tensorboard: Also log to ``RUN_DIR/tensorboard``.
        threads: ``torch.set_num_threads`` per process (0: leave as is).
        max_nonfinite: Optimizer steps in a row whose loss or gradient norm is not finite (each is
            skipped, counted in ``metrics.csv``) that stop the run.
    """

    trainer: str = "musicflux"
    dir: str = "runs/fluxmusic"
    seed: int = 0
    max_steps: int = 1000
    log_every: int = 10
    checkpoint_every: int = 500
    keep_last: int = KEEP_LAST
    export: bool = True
    tensorboard: bool = True
    threads: int = 0
    max_nonfinite: int = 20

    def __post_init__(self) -> None:
        if not self.dir:
            raise InputError("run.dir must name the run folder")
        for name in ("max_steps", "log_every", "checkpoint_every", "keep_last", "max_nonfinite"):
            require_at_least("run", name, getattr(self, name), 1)
        require_at_least("run", "threads", self.threads, 0)


@dataclass(frozen=True)
class RunConfig(BaseRunConfig):
    """Where the transformer's run lives and how it steps (the shared keys: :class:`BaseRunConfig`).

    Attributes:
        device: ``auto`` (CUDA if present, one GPU per rank), ``cpu`` or ``cuda``.
        precision: ``bf16`` (autocast, fp32 master weights) or ``fp32``.
        strategy: ``auto`` (single process: none; several: FSDP for giant sizes on CUDA, else DDP),
            ``none``, ``ddp`` or ``fsdp``.
    """

    device: str = "auto"
    precision: str = "bf16"
    strategy: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice("run", "device", self.device.split(":")[0], ("auto", "cpu", "cuda"))
        require_choice("run", "precision", self.precision, ("bf16", "fp32"))
        require_choice("run", "strategy", self.strategy, ("auto", "none", "ddp", "fsdp"))


@dataclass(frozen=True)
class ModelConfig:
    """The transformer to train.

    Attributes:
        preset: A name of ``fluxmusic.config.PRESETS``.
        overrides: ``MusicFluxConfig`` fields layered over the preset.
        init_from: Weights to start from: a reference ``.pt``, a safetensors file, a model folder or a
            checkpoint folder of one of our runs (empty: random initialisation from ``run.seed``).
        init_key: Entry of a pickled reference dict (default ``ema``).
        gradient_checkpointing: Recompute block activations in the backward pass (less memory).
    """

    preset: str = "small"
    overrides: dict[str, Any] = field(default_factory=dict)
    init_from: str = ""
    init_key: str = ""
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        require_choice("model", "preset", self.preset, tuple(PRESETS))
        self.musicflux()

    def musicflux(self) -> MusicFluxConfig:
        """The resolved transformer config."""
        base = PRESETS[self.preset].to_dict()
        unknown = sorted(set(self.overrides) - set(base))
        if unknown:
            raise InputError(f"model.overrides has unknown keys {unknown}; valid keys are {sorted(base)}")
        return MusicFluxConfig.from_dict({**base, **self.overrides})


@dataclass(frozen=True)
class TextConfig:
    """Text encoder (frozen; its outputs are cached).

    Attributes:
        encoder: ``t5-clap`` (FluxMusic's), ``minilm`` (bundled, small) or ``tiny`` (tests).
        options: Keyword arguments of ``fluxmusic.text.build_conditioner`` for that encoder.
        mode: ``training`` or ``reference-sampling`` (T5/CLAP padding and masks).
        cache_dir: Embedding cache folder (default ``RUN_DIR/text_cache``; share it between runs).
    """

    encoder: str = "t5-clap"
    options: dict[str, Any] = field(default_factory=dict)
    mode: str = "training"
    cache_dir: str = ""

    def __post_init__(self) -> None:
        require_choice("text", "encoder", self.encoder, component_types("text_encoder"))
        require_choice("text", "mode", self.mode, ("training", "reference-sampling"))


@dataclass(frozen=True)
class VAEConfig:
    """The frozen audio VAE.

    Attributes:
        pretrained: Hub id or folder (``cvssp/audioldm2``).
        subfolder: Subfolder of ``pretrained`` (``vae``; empty for a bare VAE folder).
        random: If not empty, build a random VAE with these ``AutoencoderKL`` overrides (tests only).
    """

    pretrained: str = "cvssp/audioldm2"
    subfolder: str = "vae"
    random: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VocoderConfig:
    """The vocoder used for audio samples during training and in the exported model folder.

    Attributes:
        type: ``hifigan`` or ``griffin-lim``.
        pretrained: Hub id or folder of the HiFi-GAN (``cvssp/audioldm2``).
        subfolder: Its subfolder (``vocoder``).
        random: If not empty, a random HiFi-GAN with these overrides (tests only).
        n_iter: Griffin-Lim iterations.
    """

    type: str = "hifigan"
    pretrained: str = "cvssp/audioldm2"
    subfolder: str = "vocoder"
    random: dict[str, Any] = field(default_factory=dict)
    n_iter: int = 32

    def __post_init__(self) -> None:
        require_choice("vocoder", "type", self.type, component_types("vocoder"))


@dataclass(frozen=True)
class DataConfig:
    """Training data: a manifest of audio files (encoded on the fly) or preprocessed shards.

    Attributes:
        manifest: ``.json`` (reference format), ``.jsonl`` or ``.csv`` manifest.
        shards: Output folder of ``fluxmusic preprocess`` (instead of ``manifest``).
        duration: Clip length in seconds (10.24 s = 1024 mel frames = 1024 tokens).
        caption_dropout: Probability of replacing a caption by "" (classifier-free guidance).
        caption_dropout_mode: ``independent`` (the reference: T5 states and pooled vector dropped
            separately) or ``joint`` (both together).
        tempo_dropout: For models with a tempo input: probability of training a row without its tempo
            (besides every row whose caption is dropped), so prompts that name no tempo still work.
        num_workers: DataLoader worker processes per rank.
        check: Before training on a manifest: ``header`` (open every file's header), ``full``
            (decode everything, as ``fluxmusic data check``) or ``off``. Bad items are skipped and listed.
        min_duration: Items shorter than this are skipped (seconds).
        max_tries: Crops drawn before an item whose windows are silent is skipped.
        shuffle: Shuffle every epoch (seeded).
    """

    manifest: str = ""
    shards: str = ""
    duration: float = 10.24
    caption_dropout: float = 0.1
    caption_dropout_mode: str = "independent"
    tempo_dropout: float = 0.1
    num_workers: int = 2
    check: str = "header"
    min_duration: float = 1.0
    max_tries: int = 3
    shuffle: bool = True

    def __post_init__(self) -> None:
        if bool(self.manifest) == bool(self.shards):
            raise InputError("set exactly one of data.manifest (audio files) and data.shards (preprocessed)")
        if not 0.0 <= self.caption_dropout < 1.0:
            raise InputError(f"data.caption_dropout must be in [0, 1), got {self.caption_dropout}")
        if not 0.0 <= self.tempo_dropout < 1.0:
            raise InputError(f"data.tempo_dropout must be in [0, 1), got {self.tempo_dropout}")
        require_choice("data", "caption_dropout_mode", self.caption_dropout_mode, ("independent", "joint"))
        require_choice("data", "check", self.check, ("header", "full", "off"))
        if self.duration <= 0:
            raise InputError(f"data.duration must be positive, got {self.duration}")
        require_at_least("data", "num_workers", self.num_workers, 0)
        require_at_least("data", "max_tries", self.max_tries, 1)


@dataclass(frozen=True)
class AdamWConfig:
    """AdamW and its learning-rate schedule (every trainer's ``[optim]``; see ``optim.lr_multiplier``).

    Attributes:
        lr: Peak learning rate (the reference: 3e-5).
        betas: AdamW betas.
        eps: AdamW epsilon.
        weight_decay: Decoupled weight decay (the reference: 0).
        warmup_steps: Linear warm-up from 0 over this many optimizer steps.
        schedule: ``constant``, ``cosine`` or ``linear`` decay after warm-up, to ``min_lr_ratio * lr``.
        min_lr_ratio: Final learning rate as a fraction of ``lr``.
        grad_clip: Clip the global gradient norm to this (0: no clipping; the norm is still logged).
    """

    lr: float = 3e-5
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: str = "constant"
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise InputError(f"optim.betas must be two numbers in [0, 1), got {list(self.betas)}")
        if self.lr <= 0:
            raise InputError(f"optim.lr must be positive, got {self.lr}")
        require_choice("optim", "schedule", self.schedule, ("constant", "cosine", "linear"))
        if not 0 <= self.min_lr_ratio <= 1:
            raise InputError(f"optim.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        for name in ("warmup_steps", "grad_clip", "weight_decay"):
            require_at_least("optim", name, getattr(self, name), 0)


@dataclass(frozen=True)
class OptimConfig(AdamWConfig):
    """The transformer's ``[optim]``: :class:`AdamWConfig` plus the batch.

    Attributes:
        batch_size: Micro-batch per rank.
        grad_accum: Micro-batches per optimizer step. Global batch = batch_size x grad_accum x ranks.
    """

    batch_size: int = 8
    grad_accum: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        require_at_least("optim", "batch_size", self.batch_size, 1)
        require_at_least("optim", "grad_accum", self.grad_accum, 1)


@dataclass(frozen=True)
class EMAConfig:
    """Exponential moving average of the weights, updated once per optimizer step.

    Attributes:
        decay: EMA decay (the reference: 0.9999).
    """

    decay: float = 0.9999

    def __post_init__(self) -> None:
        if not 0 <= self.decay < 1:
            raise InputError(f"ema.decay must be in [0, 1), got {self.decay}")


@dataclass(frozen=True)
class FlowConfig:
    """Training-time distribution: ``t = shift(sigmoid(n))``, ``n ~ N(logit_mean, logit_std)``."""

    logit_mean: float = 0.0
    logit_std: float = 1.0
    shift: float = 1.0

    def __post_init__(self) -> None:
        if self.logit_std <= 0 or self.shift <= 0:
            raise InputError(
                f"flow.logit_std and flow.shift must be positive, got {self.logit_std}, {self.shift}"
            )


@dataclass(frozen=True)
class SampleConfig:
    """Audio samples from the EMA model during training (rank 0).

    Attributes:
        every: Steps between sample rounds (0: never).
        prompts: Prompts to render.
        steps: Sampler steps.
        guidance: Classifier-free guidance scale.
        negative_prompt: The unconditional branch.
        duration: Seconds (0: ``data.duration``).
        seed: Seed of the first prompt's noise (prompt i uses seed + i).
    """

    every: int = 0
    prompts: tuple[str, ...] = ()
    steps: int = FALLBACKS["steps"]  # the sampler defaults of generation
    guidance: float = FALLBACKS["guidance"]
    negative_prompt: str = ""
    duration: float = 0.0
    seed: int = 2024

    def __post_init__(self) -> None:
        object.__setattr__(self, "prompts", tuple(str(p) for p in self.prompts))
        require_at_least("sample", "every", self.every, 0)
        require_at_least("sample", "steps", self.steps, 1)
        if self.every and not self.prompts:
            raise InputError("sample.every is set but sample.prompts is empty; give prompts or set every = 0")


@dataclass(frozen=True)
class LoRAConfig:
    """LoRA fine-tuning through peft (the base weights stay frozen).

    Attributes:
        enabled: Train LoRA adapters instead of all weights.
        rank: Adapter rank r.
        alpha: Scaling numerator (the update is scaled by alpha / r).
        dropout: Dropout on the adapter input.
        targets: Which linears get adapters: ``attention`` (qkv and output projections, single-block
            ``linear1``/``linear2``) and/or ``mlp`` (double-block MLPs).
    """

    enabled: bool = False
    rank: int = 16
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = ("attention", "mlp")

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        require_at_least("lora", "rank", self.rank, 1)
        if not self.targets or any(t not in ("attention", "mlp") for t in self.targets):
            raise InputError(
                f"lora.targets must be a non-empty subset of attention, mlp; got {list(self.targets)}"
            )
        if not 0 <= self.dropout < 1:
            raise InputError(f"lora.dropout must be in [0, 1), got {self.dropout}")
