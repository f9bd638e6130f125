"""Instrument-family classifier on log-mel spectrograms: a judge for generated audio and an embedding.

Two architectures over the AudioLDM2 log-mel (:func:`fluxmusic.audio.log_mel`), both for any clip length:

- ``stats-mlp``: six statistics per mel band over time (mean, standard deviation, minimum, maximum, mean
  rise and mean absolute change between frames: 384 numbers), standardised, then an MLP;
- ``cnn``: one 3x3 conv + batch norm + ReLU + 2x2 max-pool per stage, pooled over frequency, then mean-
  and max-pooled over time.

Either ends in an ``embed_dim`` layer before the classifier head: the embedding used for Fréchet
distances (taken before its ReLU, so it is roughly Gaussian).

Features are gain-invariant: each clip is peak-normalised, its log-mel taken relative to its own maximum
and floored ``floor`` nats below it, then standardised with constants measured on the training set.

Training (:func:`train_family_classifier`) uses random crops, time and frequency masks and small feature
noise, with seeded generators; a classifier is saved as a folder with ``config.json`` and
``model.safetensors`` (and ``report.json`` from the trainer).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fluxmusic.audio import N_MELS, log_mel

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
REPORT_NAME = "report.json"
ARCHS: tuple[str, ...] = ("stats-mlp", "cnn")
N_STATS = 6


@dataclass
class FamilyClassifierConfig:
    """Shape and feature settings of a :class:`FamilyClassifier` (saved as ``config.json``).

    Attributes:
        families: Class names, in logit order.
        arch: ``stats-mlp`` or ``cnn``.
        channels: Output channels of each conv stage (``cnn``).
        hidden: Hidden width of the MLP (``stats-mlp``).
        embed_dim: Width of the embedding layer.
        dropout: Dropout before the head (training only).
        floor: Log-mel floor below each clip's maximum (nats).
        feature_mean: Mean of the floored relative log-mel over the training set.
        feature_std: Its standard deviation.
        sample_rate: Expected audio rate (Hz).
    """

    families: tuple[str, ...]
    arch: str = "stats-mlp"
    channels: tuple[int, ...] = (16, 32, 64, 128)
    hidden: int = 256
    embed_dim: int = 64
    dropout: float = 0.3
    floor: float = 10.0
    feature_mean: float = -5.0
    feature_std: float = 2.5
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        self.families = tuple(self.families)
        self.channels = tuple(int(c) for c in self.channels)
        bad = []
        if len(self.families) < 2 or len(set(self.families)) != len(self.families):
            bad.append(f"families={self.families} (need >= 2 distinct)")
        if self.arch not in ARCHS:
            bad.append(f"arch={self.arch!r} (use one of {', '.join(ARCHS)})")
        if not self.channels or min(self.channels) < 1 or self.hidden < 1:
            bad.append(f"channels={self.channels}, hidden={self.hidden}")
        if self.embed_dim < 1:
            bad.append(f"embed_dim={self.embed_dim}")
        if not 0 <= self.dropout < 1:
            bad.append(f"dropout={self.dropout}")
        if self.floor <= 0 or self.feature_std <= 0:
            bad.append(f"floor={self.floor}, feature_std={self.feature_std}")
        if bad:
            raise ValueError("invalid FamilyClassifierConfig: " + "; ".join(bad))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FamilyClassifierConfig:
        """Build from a ``config.json`` dict (unknown keys are errors)."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown FamilyClassifierConfig keys: {sorted(unknown)}")
        return cls(**data)


def relative_log_mel(waveforms: Tensor, floor: float) -> Tensor:
    """Log-mel of peak-normalised audio relative to its maximum, floored at ``-floor`` (gain-invariant).

    Each clip is scaled to peak 0.5 first, so the log-mel's absolute floor (``log(1e-5)``) does not make
    quiet clips look different from loud ones. Silent clips (peak <= 1e-6) are all ``-floor``.

    Shapes:
        waveforms: (B, S) at 16 kHz
        output: (B, 1 + S // 160, 64), values in [-floor, 0]
    """
    waveforms = waveforms.float()
    peak = waveforms.abs().amax(dim=-1, keepdim=True)
    silent = peak <= 1e-6
    mel = log_mel(torch.where(silent, waveforms, 0.5 * waveforms / peak.clamp(min=1e-6)))
    relative = (mel - mel.amax(dim=(1, 2), keepdim=True)).clamp(min=-floor)
    return relative.masked_fill(silent[:, :, None], -floor)


def band_statistics(features: Tensor) -> Tensor:
    """Per-band statistics over time: mean, std, min, max, mean rise, mean absolute change.

    Shapes:
        features: (B, T, 64), T >= 2 -> (B, 6 * 64), statistic-major
    """
    delta = features[:, 1:] - features[:, :-1]
    stats = [
        features.mean(1),
        features.std(1),
        features.amin(1),
        features.amax(1),
        delta.clamp(min=0).mean(1),
        delta.abs().mean(1),
    ]
    return torch.cat(stats, dim=1)


class FamilyClassifier(nn.Module):
    """Standardised relative log-mels -> family logits and an embedding (see the module docstring).

    Shapes:
        features: (B, T, 64) from :meth:`features`
        logits: (B, len(families)); embedding: (B, embed_dim)
    """

    def __init__(self, config: FamilyClassifierConfig) -> None:
        super().__init__()
        self.config = config
        if config.arch == "cnn":
            stages: list[nn.Module] = []
            width = 1
            for channels in config.channels:
                stages += [
                    nn.Conv2d(width, channels, 3, padding=1, bias=False),
                    nn.BatchNorm2d(channels),
                    nn.ReLU(inplace=True),
                    nn.MaxPool2d(2),
                ]
                width = channels
            self.stages = nn.Sequential(*stages)
            pooled_width = 2 * width
        else:
            self.register_buffer("stats_mean", torch.zeros(N_STATS * N_MELS))
            self.register_buffer("stats_std", torch.ones(N_STATS * N_MELS))
            self.stages = nn.Sequential(
                nn.Linear(N_STATS * N_MELS, config.hidden), nn.ReLU(inplace=True), nn.Dropout(config.dropout)
            )
            pooled_width = config.hidden
        self.embed = nn.Linear(pooled_width, config.embed_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.embed_dim, len(config.families))

    @property
    def families(self) -> tuple[str, ...]:
        """Class names in logit order."""
        return self.config.families

    def features(self, waveforms: Tensor) -> Tensor:
        """Standardised relative log-mel of 16 kHz waveforms.

        Shapes:
            waveforms: (B, S) -> (B, 1 + S // 160, 64)
        """
        cfg = self.config
        return (relative_log_mel(waveforms, cfg.floor) - cfg.feature_mean) / cfg.feature_std

    def forward_features(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """(logits, embedding) of standardised features.

        Shapes:
            features: (B, T, 64) with T >= 2 ** len(channels) (``cnn``) or T >= 2
            -> (B, n_families), (B, embed_dim)
        """
        if features.dim() != 3 or features.shape[-1] != N_MELS:
            raise ValueError(f"features must be (B, T, {N_MELS}), got {tuple(features.shape)}")
        if self.config.arch == "cnn":
            x = self.stages(features[:, None]).mean(dim=3)  # (B, C, T')
            pooled = torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)
        else:
            pooled = self.stages((band_statistics(features) - self.stats_mean) / self.stats_std)
        embedding = self.embed(pooled)
        return self.head(self.dropout(F.relu(embedding))), embedding

    def forward(self, features: Tensor) -> Tensor:
        """Logits of standardised features. Shapes: (B, T, 64) -> (B, n_families)."""
        return self.forward_features(features)[0]

    @torch.no_grad()
    def analyse(self, waveforms: Tensor, batch_size: int = 32) -> tuple[Tensor, Tensor]:
        """(probabilities, embeddings) of waveforms, in eval mode, float32 on CPU.

        Shapes:
            waveforms: (B, S) at 16 kHz -> (B, n_families), (B, embed_dim)
        """
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        probs, embeds = [], []
        for chunk in waveforms.split(batch_size):
            logits, emb = self.forward_features(self.features(chunk.to(device)))
            probs.append(logits.softmax(-1).float().cpu())
            embeds.append(emb.float().cpu())
        self.train(was_training)
        return torch.cat(probs), torch.cat(embeds)

    def predict(self, waveforms: Tensor, batch_size: int = 32) -> list[str]:
        """Most likely family of each clip. Shapes: waveforms (B, S)."""
        probs, _ = self.analyse(waveforms, batch_size)
        return [self.families[i] for i in probs.argmax(-1).tolist()]

    def embed_audio(self, waveforms: Tensor, batch_size: int = 32) -> Tensor:
        """Embeddings for Fréchet distances. Shapes: (B, S) -> (B, embed_dim)."""
        return self.analyse(waveforms, batch_size)[1]

    def save(self, folder: str | Path, report: dict[str, Any] | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (+ ``report.json``) into ``folder``."""
        from safetensors.torch import save_file

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(out / WEIGHTS_NAME))
        (out / CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        if report is not None:
            (out / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
        return out

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> FamilyClassifier:
        """Load a folder written by :meth:`save` (strict), in eval mode."""
        from safetensors.torch import load_file

        root = Path(folder)
        if not (root / CONFIG_NAME).is_file() or not (root / WEIGHTS_NAME).is_file():
            raise FileNotFoundError(
                f"{root}: not a family classifier folder (needs {CONFIG_NAME}, {WEIGHTS_NAME})"
            )
        config = FamilyClassifierConfig.from_dict(json.loads((root / CONFIG_NAME).read_text()))
        model = cls(config)
        model.load_state_dict(load_file(str(root / WEIGHTS_NAME)), strict=True)
        return model.to(device).eval()


@dataclass
class TrainSettings:
    """Optimisation settings of :func:`train_family_classifier`.

    Attributes:
        epochs: Passes over the training set.
        batch_size: Clips per step.
        lr: Peak AdamW learning rate (cosine decay, one epoch of warm-up).
        weight_decay: AdamW weight decay.
        crop_frames: Random crop length (frames) per training example; 0 = whole clips.
        time_mask: Longest time mask (frames); 0 disables (masks suit ``cnn``, not ``stats-mlp``).
        freq_mask: Widest frequency mask (mel bins); 0 disables.
        noise: Standard deviation of Gaussian noise added to standardised features (hurts ``stats-mlp``:
            bands that sit at the floor have almost no spread).
        blur: Probability of smoothing a clip's features (a box filter of odd size up to ``blur_frames``
            frames by up to 3 bands), to make the judge tolerate the smearing of a VAE and vocoder.
        blur_frames: Largest time extent of the blur.
        seed: Seed of initialisation, shuffling and augmentation.
    """

    epochs: int = 100
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    crop_frames: int = 0
    time_mask: int = 0
    freq_mask: int = 0
    noise: float = 0.0
    blur: float = 0.5
    blur_frames: int = 7
    seed: int = 0


def _augment(batch: Tensor, settings: TrainSettings, generator: torch.Generator) -> Tensor:
    """Random crop, time and frequency masks, blur, feature noise (each when enabled). Shapes: (B, T, 64)."""
    b, t, f = batch.shape
    crop = settings.crop_frames if 0 < settings.crop_frames < t else t
    starts = torch.randint(0, t - crop + 1, (b, 1), generator=generator)
    frames = starts + torch.arange(crop)
    x = batch.gather(1, frames[:, :, None].expand(b, crop, f))
    fill = float(x.amin())
    for size, axis, limit in ((settings.time_mask, 1, crop), (settings.freq_mask, 2, f)):
        if size > 0:
            width = torch.randint(0, size + 1, (b, 1), generator=generator)
            start = (torch.rand((b, 1), generator=generator) * (limit - width + 1)).long()
            position = torch.arange(limit)
            mask = (position >= start) & (position < start + width)
            x = x.masked_fill(mask[:, :, None] if axis == 1 else mask[:, None, :], fill)
    if settings.blur > 0:
        chosen = torch.rand(b, generator=generator) < settings.blur
        for i in chosen.nonzero().flatten().tolist():
            kt = 1 + 2 * int(torch.randint(0, settings.blur_frames // 2 + 1, (1,), generator=generator))
            kf = 1 + 2 * int(torch.randint(0, 2, (1,), generator=generator))
            pad = (kt // 2, kf // 2)
            x[i] = F.avg_pool2d(x[i][None, None], (kt, kf), 1, pad, count_include_pad=False)[0, 0]
    if settings.noise > 0:
        x = x + settings.noise * torch.randn(x.shape, generator=generator)
    return x


@torch.no_grad()
def _accuracy(model: FamilyClassifier, features: Tensor, labels: Tensor, batch_size: int = 64) -> float:
    model.eval()
    hits = sum(
        int((model(chunk).argmax(-1) == target).sum())
        for chunk, target in zip(features.split(batch_size), labels.split(batch_size))
    )
    return hits / max(len(labels), 1)


def train_family_classifier(
    train_waveforms: Tensor,
    train_labels: Sequence[str],
    config: FamilyClassifierConfig | None = None,
    settings: TrainSettings | None = None,
    val_waveforms: Tensor | None = None,
    val_labels: Sequence[str] | None = None,
) -> tuple[FamilyClassifier, list[dict[str, float]]]:
    """Train a classifier from scratch on CPU (deterministic for a given seed and thread count).

    Args:
        train_waveforms: 16 kHz training clips.
        train_labels: Family of each clip.
        config: Architecture; families default to the sorted distinct labels.
        settings: Optimisation settings.
        val_waveforms, val_labels: Optional held-out clips, evaluated after every epoch (for the log and
            the history only; no model selection, so the held-out accuracy stays unbiased).

    Returns:
        The model (eval mode) and the per-epoch history (``loss``, ``val_accuracy``).

    Shapes:
        train_waveforms: (N, S); val_waveforms: (M, S')
    """
    floor = (config or FamilyClassifierConfig(families=("a", "b"))).floor
    relative = torch.cat([relative_log_mel(chunk, floor) for chunk in train_waveforms.split(64)])
    val = None
    if val_waveforms is not None and val_labels is not None:
        val = (torch.cat([relative_log_mel(chunk, floor) for chunk in val_waveforms.split(64)]), val_labels)
    return fit_family_classifier(relative, train_labels, config, settings, val)


def fit_family_classifier(
    relative: Tensor,
    train_labels: Sequence[str],
    config: FamilyClassifierConfig | None = None,
    settings: TrainSettings | None = None,
    val: tuple[Tensor, Sequence[str]] | None = None,
) -> tuple[FamilyClassifier, list[dict[str, float]]]:
    """:func:`train_family_classifier` from precomputed :func:`relative_log_mel` features.

    ``config.feature_mean`` / ``feature_std`` (and the ``stats-mlp`` normalisation) are measured on
    ``relative``.

    Shapes:
        relative: (N, T, 64); val: ((M, T', 64), M labels)
    """
    settings = settings or TrainSettings()
    families = tuple(sorted(set(train_labels))) if config is None else config.families
    config = config or FamilyClassifierConfig(families=families)
    index = {name: i for i, name in enumerate(families)}
    missing = sorted(set(train_labels) - set(index))
    if missing:
        raise ValueError(f"labels {missing} are not in the configured families {families}")
    if len(train_labels) != relative.shape[0]:
        raise ValueError(f"{relative.shape[0]} clips but {len(train_labels)} labels")
    labels = torch.tensor([index[name] for name in train_labels])
    config.feature_mean = float(relative.float().mean())
    config.feature_std = float(relative.float().std())
    features = (relative.float() - config.feature_mean) / config.feature_std
    val_set = None
    if val is not None:
        val_features = (val[0].float() - config.feature_mean) / config.feature_std
        val_set = (val_features, torch.tensor([index[name] for name in val[1]]))

    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    model = FamilyClassifier(config)
    if config.arch == "stats-mlp":
        stats = torch.cat([band_statistics(chunk) for chunk in features.split(256)])
        model.stats_mean.copy_(stats.mean(0))
        model.stats_std.copy_(stats.std(0).clamp(min=1e-3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = math.ceil(len(labels) / settings.batch_size)
    total, warmup = settings.epochs * steps_per_epoch, steps_per_epoch

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))

    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    history: list[dict[str, float]] = []
    for epoch in range(settings.epochs):
        model.train()
        order = torch.randperm(len(labels), generator=generator)
        loss_sum = torch.zeros(())
        for batch_index in order.split(settings.batch_size):
            x = _augment(features[batch_index], settings, generator)
            loss = F.cross_entropy(model(x), labels[batch_index], label_smoothing=0.05)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            lr_schedule.step()
            loss_sum += loss.detach() * len(batch_index)
        record = {"epoch": epoch + 1, "loss": float(loss_sum) / len(labels)}
        if val_set is not None:
            record["val_accuracy"] = _accuracy(model, *val_set)
        history.append(record)
        logger.info("family classifier epoch %s", record)
    return model.eval(), history


def confusion_matrix(
    true: Sequence[str], predicted: Sequence[str], families: Sequence[str]
) -> list[list[int]]:
    """Counts ``[i][j]`` of clips of family ``families[i]`` predicted as ``families[j]``."""
    index = {name: i for i, name in enumerate(families)}
    matrix = [[0] * len(families) for _ in families]
    for t, p in zip(true, predicted):
        matrix[index[t]][index[p]] += 1
    return matrix


def accuracy_report(true: Sequence[str], predicted: Sequence[str], families: Sequence[str]) -> dict[str, Any]:
    """Overall and per-family accuracy, the confusion matrix and each family's most common confusion."""
    matrix = confusion_matrix(true, predicted, families)
    per_family, confusions = {}, {}
    for i, name in enumerate(families):
        row = matrix[i]
        if sum(row):
            per_family[name] = row[i] / sum(row)
            others = [(count, families[j]) for j, count in enumerate(row) if j != i and count]
            if others:
                count, other = max(others)
                confusions[name] = {"family": other, "fraction": count / sum(row)}
    hits = sum(t == p for t, p in zip(true, predicted))
    return {
        "accuracy": hits / max(len(true), 1),
        "count": len(true),
        "families": list(families),
        "per_family": per_family,
        "top_confusion": confusions,
        "confusion": matrix,
    }
