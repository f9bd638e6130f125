"""Family classifier: learns separable synthetic classes, saves/loads exactly, trains deterministically."""

from __future__ import annotations

import json
import math

import pytest
import torch

from fluxmusic.evaluation.family_classifier import (
    FamilyClassifier,
    FamilyClassifierConfig,
    accuracy_report,
    band_statistics,
    confusion_matrix,
)
from fluxmusic.evaluation.family_training import TrainSettings, train_family_classifier

SR = 16000


def synthetic_clips(n_per_class: int, seed: int, seconds: float = 1.0) -> tuple[torch.Tensor, list[str]]:
    """Three 'families': low tones, high tones, noise bursts; random pitch, gain and timing."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SR)) / SR
    clips, labels = [], []
    for name in ("low", "high", "noise"):
        for _ in range(n_per_class):
            gain = 0.05 + 0.4 * float(torch.rand((), generator=g))
            if name == "noise":
                wave = torch.randn(t.shape, generator=g) * (torch.rand((), generator=g) < 2) * 0.3
                envelope = (
                    torch.sin(2 * math.pi * (2 + 4 * float(torch.rand((), generator=g))) * t) > 0
                ).float()
                wave = wave * envelope
            else:
                base = 150 if name == "low" else 2500
                freq = base * (1 + 0.5 * float(torch.rand((), generator=g)))
                wave = torch.sin(2 * math.pi * freq * t + float(torch.rand((), generator=g)) * 6)
            clips.append(gain * wave / wave.abs().max().clamp(min=1e-6))
            labels.append(name)
    return torch.stack(clips), labels


FAST = TrainSettings(epochs=6, batch_size=16, lr=3e-3, crop_frames=64)


@pytest.fixture(scope="module")
def trained() -> FamilyClassifier:
    audio, labels = synthetic_clips(12, seed=0)
    model, history = train_family_classifier(audio, labels, settings=FAST)
    assert len(history) == FAST.epochs and history[-1]["loss"] < history[0]["loss"]
    return model


def test_learns_separable_classes(trained: FamilyClassifier) -> None:
    audio, labels = synthetic_clips(8, seed=1)
    assert trained.families == ("high", "low", "noise")
    predicted = trained.predict(audio)
    assert sum(p == t for p, t in zip(predicted, labels)) / len(labels) >= 0.9
    probs, emb = trained.analyse(audio[:5], batch_size=2)
    assert probs.shape == (5, 3) and emb.shape == (5, trained.config.embed_dim)
    assert torch.allclose(probs.sum(-1), torch.ones(5), atol=1e-5)


def test_gain_invariant(trained: FamilyClassifier) -> None:
    audio, _ = synthetic_clips(2, seed=2)
    audio = 0.3 * audio / audio.abs().amax(dim=1, keepdim=True)
    p1, e1 = trained.analyse(audio)
    p2, e2 = trained.analyse(audio * 2.5)  # above the absolute log-mel floor, only the gain changes
    assert torch.allclose(e1, e2, atol=1e-3) and torch.allclose(p1, p2, atol=1e-4)


def test_save_load_roundtrip(trained: FamilyClassifier, tmp_path) -> None:
    audio, _ = synthetic_clips(2, seed=3)
    folder = trained.save(tmp_path / "judge", report={"held_out": {"accuracy": 1.0}})
    assert json.loads((folder / "config.json").read_text())["families"] == ["high", "low", "noise"]
    loaded = FamilyClassifier.load(folder)
    assert torch.equal(loaded.embed_audio(audio), trained.embed_audio(audio))
    with pytest.raises(FileNotFoundError, match="not a family classifier"):
        FamilyClassifier.load(tmp_path / "nothing")


def test_training_is_deterministic() -> None:
    audio, labels = synthetic_clips(4, seed=4)
    settings = TrainSettings(epochs=2, batch_size=8, crop_frames=48, blur=0.5, noise=0.05)
    a, _ = train_family_classifier(audio, labels, settings=settings)
    b, _ = train_family_classifier(audio, labels, settings=settings)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name


def test_cnn_arch_trains_and_takes_any_length() -> None:
    audio, labels = synthetic_clips(4, seed=5)
    config = FamilyClassifierConfig(
        families=("high", "low", "noise"), arch="cnn", channels=(4, 8), embed_dim=8
    )
    settings = TrainSettings(epochs=1, batch_size=8, crop_frames=48, time_mask=8, freq_mask=4)
    model, _ = train_family_classifier(audio, labels, config, settings, audio[:3], labels[:3])
    assert model.embed_audio(audio[:2, : SR // 2]).shape == (2, 8)


def test_band_statistics_shape_and_config_validation() -> None:
    assert band_statistics(torch.randn(2, 10, 64)).shape == (2, 384)
    with pytest.raises(ValueError, match="arch='rnn'"):
        FamilyClassifierConfig(families=("a", "b"), arch="rnn")
    with pytest.raises(ValueError, match="distinct"):
        FamilyClassifierConfig(families=("a", "a"))
    with pytest.raises(ValueError, match="unknown FamilyClassifierConfig keys"):
        FamilyClassifierConfig.from_dict({"families": ["a", "b"], "depth": 3})
    with pytest.raises(ValueError, match="not in the configured families"):
        train_family_classifier(torch.zeros(2, 1600), ["a", "c"], FamilyClassifierConfig(families=("a", "b")))


def test_accuracy_report_and_confusion() -> None:
    true = ["a", "a", "b", "b", "c"]
    predicted = ["a", "b", "b", "b", "a"]
    assert confusion_matrix(true, predicted, ["a", "b", "c"]) == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    report = accuracy_report(true, predicted, ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(0.6) and report["count"] == 5
    assert report["per_family"] == {"a": 0.5, "b": 1.0, "c": 0.0}
    assert report["top_confusion"]["c"] == {"family": "a", "fraction": 1.0}
