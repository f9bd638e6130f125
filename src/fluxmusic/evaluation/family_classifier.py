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

Training lives in :mod:`fluxmusic.evaluation.family_training`; a classifier is saved as a folder with
``config.json`` and ``model.safetensors`` (and ``report.json`` from :mod:`fluxmusic.evaluation.judge`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fluxmusic.audio import N_MELS, log_mel
from fluxmusic.errors import InputError, MissingFilesError

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
            raise InputError("invalid FamilyClassifierConfig: " + "; ".join(bad))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FamilyClassifierConfig:
        """Build from a ``config.json`` dict (unknown keys are errors)."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown FamilyClassifierConfig keys: {sorted(unknown)}")
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
            raise MissingFilesError(
                f"{root}: not a family classifier folder (needs {CONFIG_NAME}, {WEIGHTS_NAME})"
            )
        config = FamilyClassifierConfig.from_dict(json.loads((root / CONFIG_NAME).read_text()))
        model = cls(config)
        model.load_state_dict(load_file(str(root / WEIGHTS_NAME)), strict=True)
        return model.to(device).eval()


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
