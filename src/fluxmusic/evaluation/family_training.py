"""Training the instrument-family classifier (:mod:`fluxmusic.evaluation.family_classifier`) on CPU.

AdamW with one epoch of warm-up and cosine decay, label smoothing, and optional augmentation (random crops,
time / frequency masks, blur, feature noise), all drawn from one seeded ``torch.Generator``: the same
seed and thread count give the same weights.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from fluxmusic.errors import InputError
from fluxmusic.evaluation.family_classifier import (
    FamilyClassifier,
    FamilyClassifierConfig,
    band_statistics,
    relative_log_mel,
)

logger = logging.getLogger(__name__)


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
        raise InputError(f"labels {missing} are not in the configured families {families}")
    if len(train_labels) != relative.shape[0]:
        raise InputError(f"{relative.shape[0]} clips but {len(train_labels)} labels")
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
