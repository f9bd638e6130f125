"""Bundled HiFi-GAN trainer: config validation, overfitting, exact resume (with discriminator), export."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from fluxmusic.audio import HifiGanVocoder, write_audio
from fluxmusic.training import component_run as runs
from fluxmusic.data.clip_bank import ClipBank, list_clips
from fluxmusic.training.vocoder_gan import (
    MultiPeriodDiscriminator,
    VocoderTrainConfig,
    build,
    held_out_mel_l1,
    main,
    stft_loss,
    train,
)

SECONDS = 0.32


def write_dataset(root: Path, n: int = 3) -> Path:
    """Harmonic tones at 16 kHz and reference-format train/test manifests."""
    t = torch.arange(int(SECONDS * 16000)) / 16000
    for split in ("train", "test"):
        entries = []
        for i in range(n):
            f0 = 150.0 * (1 + i) * (1.5 if split == "test" else 1.0)
            wave = sum(torch.sin(2 * math.pi * f0 * k * t) / k for k in (1, 2))
            rel = f"audio/{split}/c{i}.wav"
            write_audio(root / rel, 0.4 * wave / wave.abs().max())
            entries.append({"wav": rel, "label": f"tone {i}"})
        (root / f"{split}.json").write_text(json.dumps(entries))
    return root


def tiny(**sections: dict) -> VocoderTrainConfig:
    data = {
        "run": {"threads": 1, "log_every": 2, "eval_every": 0, "checkpoint_every": 2, "progress": False},
        "model": {
            "upsample_initial_channel": 32,
            "resblock_kernel_sizes": [3],
            "resblock_dilation_sizes": [[1, 3]],
        },
        "data": {"clip_seconds": SECONDS, "crop_frames": 16, "batch_size": 2, "eval_clips": 0},
        "optim": {"lr": 2e-3, "warmup_steps": 0, "max_steps": 6},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return runs.config_from_dict(VocoderTrainConfig, data)


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> ClipBank:
    root = write_dataset(tmp_path_factory.mktemp("data"))
    return ClipBank.load(root, list_clips(root, "train"), SECONDS)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="multiply to 160"):
        tiny(model={"upsample_rates": [5, 4, 2, 2], "upsample_kernel_sizes": [10, 8, 4, 4]})
    with pytest.raises(ValueError, match="differ in length"):
        tiny(model={"resblock_kernel_sizes": [3, 7]})
    with pytest.raises(ValueError, match="mel \\+ stft"):
        tiny(loss={"mel": 0.0, "stft": 0.0})
    assert tiny().model.resblock_dilation_sizes == ((1, 3),)


def test_losses_and_discriminator_shapes() -> None:
    wave = torch.randn(2, 4000, generator=torch.Generator().manual_seed(0)) * 0.1
    assert float(stft_loss(wave, wave)) == pytest.approx(0.0, abs=1e-5)
    assert float(stft_loss(0.5 * wave, wave)) > 0.1
    outputs = MultiPeriodDiscriminator((2, 3), channels=4)(wave)
    assert len(outputs) == 2
    for scores, features in outputs:
        assert scores.shape[0] == 2 and len(features) == 5


def test_loss_decreases_on_tiny_set(bank: ClipBank, tmp_path: Path) -> None:
    config = tiny(optim={"max_steps": 30}, run={"checkpoint_every": 30})
    fresh, _ = build(config, bank.mels)
    before = held_out_mel_l1(fresh.eval(), bank)
    vocoder, step = train(config, bank, tmp_path / "run")
    after = held_out_mel_l1(vocoder, bank)
    assert step == 30
    assert after < 0.8 * before, (before, after)


def test_resume_with_discriminator_is_bit_identical(bank: ClipBank, tmp_path: Path) -> None:
    config = tiny(loss={"adv": 1.0, "adv_start": 2, "disc_channels": 4, "disc_periods": [2, 3]})
    straight, _ = train(config, bank, tmp_path / "a")
    train(config, bank, tmp_path / "b", resume=True, stop_at=3)
    resumed, step = train(config, bank, tmp_path / "b", resume=True)
    assert step == 6
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    weights, optimizers, _ = runs.load_checkpoint(runs.latest_checkpoint(tmp_path / "b"))
    assert any(k.startswith("disc.") for k in weights) and set(optimizers) == {"generator", "disc"}


def test_cli_exports_a_vocoder_taking_raw_log_mel(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data")
    toml = tmp_path / "vocoder.toml"
    toml.write_text(
        "[model]\nupsample_initial_channel = 32\nresblock_kernel_sizes = [3]\n"
        "resblock_dilation_sizes = [[1]]\n"
        f"[data]\nclip_seconds = {SECONDS}\ncrop_frames = 16\nbatch_size = 2\neval_clips = 2\n"
        "[optim]\nmax_steps = 2\n[run]\nprogress = false\n"
    )
    out = tmp_path / "run"
    main(["--config", str(toml), "--data", str(root), "--out", str(out)])
    vocoder = HifiGanVocoder.from_pretrained(out / "final", subfolder=None)
    assert vocoder.hifigan.config.normalize_before
    bank = ClipBank.load(root, list_clips(root, "train"), SECONDS)
    torch.testing.assert_close(vocoder.hifigan.mean, bank.mels.reshape(-1, 64).mean(0), atol=1e-4, rtol=0)
    audio = vocoder(bank.mels[:1])
    assert audio.shape == (1, bank.frames * 160) and torch.isfinite(audio).all()
    assert json.loads((out / "final_summary.json").read_text())["step"] == 2
