"""Evaluation: metrics and attribute checks.

- ``evaluation.reconstruction``: vocoder / VAE round-trip quality;
- ``evaluation.family_classifier``, ``evaluation.family_training``, ``evaluation.judge``: instrument-family
  classifier (and its embedding), its training, and training it on the demo dataset's real renders;
- ``evaluation.tempo``: tempo estimation and requested-vs-estimated agreement;
- ``evaluation.frechet``: Fréchet distance between embedding sets;
- ``evaluation.demo_records``: demo-dataset records and audio for evaluation.

Command line: ``python -m fluxmusic.evaluation {tempo,judge,reconstruction} --help``
(see :mod:`fluxmusic.evaluation.__main__`).

Nothing heavy is imported here: the names below load their submodule on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "FamilyClassifier": "family_classifier",
    "FamilyClassifierConfig": "family_classifier",
    "TrainSettings": "family_training",
    "accuracy_report": "family_classifier",
    "fit_family_classifier": "family_training",
    "train_family_classifier": "family_training",
    "load_or_train_classifier": "judge",
    "train_demo_classifier": "judge",
    "TempoAgreement": "tempo",
    "estimate_tempi": "tempo",
    "estimate_tempo": "tempo",
    "tempo_agreement": "tempo",
    "frechet_distance": "frechet",
    "gaussian_stats": "frechet",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
