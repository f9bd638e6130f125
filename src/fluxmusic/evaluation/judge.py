"""Train, evaluate and cache the family classifier on a demo dataset (the benchmark's judge).

The classifier learns from the ``train`` split's real renders and is scored on the ``test`` split (clips of
pieces it never heard); ``mixed`` ensembles are left out of both. The folder it is saved to also holds
``report.json``: held-out accuracy, per-family accuracy, confusion matrix, training history and settings.

    fluxmusic evaluate judge --data /work/data/demo --out /work/data/demo/family_classifier
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from fluxmusic.errors import InputError
from fluxmusic.evaluation.demo_records import load_waveforms, read_records
from fluxmusic.evaluation.family_classifier import (
    REPORT_NAME,
    FamilyClassifier,
    FamilyClassifierConfig,
    accuracy_report,
)
from fluxmusic.evaluation.family_training import TrainSettings, train_family_classifier

logger = logging.getLogger(__name__)


def train_demo_classifier(
    data_dir: str | Path,
    out_dir: str | Path | None = None,
    settings: TrainSettings | None = None,
    config: FamilyClassifierConfig | None = None,
    max_train: int | None = None,
) -> tuple[FamilyClassifier, dict[str, Any]]:
    """Train on the ``train`` split, score the ``test`` split, optionally save (with ``report.json``).

    Args:
        data_dir: Demo dataset folder.
        out_dir: Where to save the classifier (None: don't).
        settings: Optimisation settings.
        config: Architecture (families default to those in the training split).
        max_train: Use only the first N training clips (by id), for quick runs.

    Returns:
        The classifier and its report.
    """
    settings = settings or TrainSettings()
    train = read_records(data_dir, "train")[:max_train]
    families = set(config.families if config else (r["family"] for r in train))
    test = [r for r in read_records(data_dir, "test") if r["family"] in families]
    if not train or not test:
        raise InputError(
            f"{data_dir}: need clips in both splits, found {len(train)} train and {len(test)} test"
        )
    start = time.perf_counter()
    train_audio = load_waveforms(data_dir, train)
    test_audio = load_waveforms(data_dir, test)
    logger.info("training family classifier on %d clips, testing on %d", len(train), len(test))
    model, history = train_family_classifier(
        train_audio,
        [r["family"] for r in train],
        config,
        settings,
        test_audio,
        [r["family"] for r in test],
    )
    predicted = model.predict(test_audio)
    report = {
        "data": str(data_dir),
        "train_clips": len(train),
        "held_out": accuracy_report([r["family"] for r in test], predicted, model.families),
        "train_accuracy": accuracy_report(
            [r["family"] for r in train], model.predict(train_audio), model.families
        )["accuracy"],
        "history": history,
        "settings": asdict(settings),
        "seconds": time.perf_counter() - start,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    if out_dir is not None:
        model.save(out_dir, report)
    return model, report


def load_or_train_classifier(
    path: str | Path, data_dir: str | Path, settings: TrainSettings | None = None
) -> tuple[FamilyClassifier, dict[str, Any]]:
    """Load the classifier saved at ``path``, or train one on ``data_dir`` and save it there first.

    Returns:
        The classifier and its ``report.json`` (empty when the folder has none).
    """
    folder = Path(path)
    if not (folder / "model.safetensors").is_file():
        logger.info("no family classifier at %s: training one on %s", folder, data_dir)
        return train_demo_classifier(data_dir, folder, settings)
    report_path = folder / REPORT_NAME
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    return FamilyClassifier.load(folder), report


def format_report(report: dict[str, Any]) -> str:
    """Held-out accuracy, per-family accuracy and top confusions as a text table."""
    held = report["held_out"]
    train_accuracy = report.get("train_accuracy", float("nan"))
    lines = [
        f"held-out accuracy {held['accuracy']:.3f} on {held['count']} clips "
        f"({len(held['per_family'])} families; train accuracy {train_accuracy:.3f})",
        f"{'family':<22}{'accuracy':>9}  most often confused with",
    ]
    for family, accuracy in held["per_family"].items():
        confusion = held["top_confusion"].get(family)
        other = f"{confusion['family']} ({confusion['fraction']:.2f})" if confusion else "-"
        lines.append(f"{family:<22}{accuracy:>9.3f}  {other}")
    return "\n".join(lines)
