"""Bundled HiFi-GAN trainer (a tenant of the training framework): config validation, overfitting, exact
resume (with the discriminator), a discriminator switched on mid-run, export, ``fluxmusic train``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from train_helpers import REPO, component_config

from fluxmusic.audio import HifiGanVocoder, write_audio
from fluxmusic.cli import main
from fluxmusic.data.clip_bank import ClipBank, list_clips
from fluxmusic.training.checkpoint import latest_checkpoint, load_training_state
from fluxmusic.training.components.gan import MultiPeriodDiscriminator, stft_loss
from fluxmusic.training.components.vocoder import VocoderTrainConfig, build, held_out_mel_l1, train

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


def tiny(data_dir: Path, run_dir: Path, **sections: dict[str, Any]) -> VocoderTrainConfig:
    sizes = {
        "model": {
            "upsample_initial_channel": 32,
            "resblock_kernel_sizes": [3],
            "resblock_dilation_sizes": [[1, 3]],
        },
        "optim": {"lr": 2e-3, "warmup_steps": 0},
    }
    return VocoderTrainConfig.from_dict(component_config(data_dir, run_dir, SECONDS, sizes, sections))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def bank(dataset: Path) -> ClipBank:
    return ClipBank.load(dataset, list_clips(dataset, "train"), SECONDS)


def test_config_validation(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiply to 160"):
        tiny(
            dataset, tmp_path, model={"upsample_rates": [5, 4, 2, 2], "upsample_kernel_sizes": [10, 8, 4, 4]}
        )
    with pytest.raises(ValueError, match="differ in length"):
        tiny(dataset, tmp_path, model={"resblock_kernel_sizes": [3, 7]})
    with pytest.raises(ValueError, match="mel \\+ stft"):
        tiny(dataset, tmp_path, loss={"mel": 0.0, "stft": 0.0})
    with pytest.raises(ValueError, match="data.crop_frames must be >= 16"):
        tiny(dataset, tmp_path, data={"crop_frames": 8})
    config = tiny(dataset, tmp_path)
    assert config.model.resblock_dilation_sizes == ((1, 3),)
    assert config.optim.betas == (0.8, 0.99) and config.optim.schedule == "cosine"  # the vocoder's defaults


def test_losses_and_discriminator_shapes() -> None:
    wave = torch.randn(2, 4000, generator=torch.Generator().manual_seed(0)) * 0.1
    assert float(stft_loss(wave, wave)) == pytest.approx(0.0, abs=1e-5)
    assert float(stft_loss(0.5 * wave, wave)) > 0.1
    outputs = MultiPeriodDiscriminator((2, 3), channels=4)(wave)
    assert len(outputs) == 2
    for scores, features in outputs:
        assert scores.shape[0] == 2 and len(features) == 5


def test_loss_decreases_on_tiny_set(dataset: Path, bank: ClipBank, tmp_path: Path) -> None:
    config = tiny(dataset, tmp_path / "run", run={"max_steps": 30, "checkpoint_every": 30})
    fresh, _ = build(config, bank.mels)
    before = held_out_mel_l1(fresh.eval(), bank)
    result = train(config)
    after = held_out_mel_l1(result.model, bank)
    assert result.step == 30
    assert after < 0.8 * before, (before, after)


ADV = {"adv": 1.0, "adv_start": 2, "disc_channels": 4, "disc_periods": [2, 3]}


def test_resume_with_discriminator_is_bit_identical(dataset: Path, tmp_path: Path) -> None:
    straight = train(tiny(dataset, tmp_path / "a", loss=ADV))
    train(tiny(dataset, tmp_path / "b", loss=ADV, run={"stop_at": 3}), resume="auto")
    resumed = train(tiny(dataset, tmp_path / "b", loss=ADV), resume=tmp_path / "b")
    assert resumed.step == 6
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    checkpoint = latest_checkpoint(tmp_path / "b")
    assert (checkpoint / "discriminator.safetensors").is_file()
    assert set(load_training_state(checkpoint)["optimizer"]) == {"model", "discriminator"}


def test_reconstruction_run_continues_with_a_fresh_discriminator(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(tiny(dataset, run, run={"max_steps": 4}))
    assert not (latest_checkpoint(run) / "discriminator.safetensors").exists()
    assert main(["train", "--resume", str(run), "--set", "run.max_steps=6", "--set", "loss.adv=1.0",
                 "--set", "loss.disc_channels=4", "--set", "loss.disc_periods=[2]", "-q"]) == 0  # fmt: skip
    checkpoint = latest_checkpoint(run)
    assert checkpoint.name == "step_000006" and (checkpoint / "discriminator.safetensors").is_file()
    assert set(load_training_state(checkpoint)["optimizer"]) == {"model", "discriminator"}


def test_cli_exports_a_vocoder_taking_raw_log_mel(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data")
    toml = tmp_path / "vocoder.toml"
    toml.write_text(
        '[run]\ntrainer = "vocoder"\nmax_steps = 2\n'
        "[model]\nupsample_initial_channel = 32\nresblock_kernel_sizes = [3]\n"
        "resblock_dilation_sizes = [[1]]\n"
        f"[data]\nclip_seconds = {SECONDS}\ncrop_frames = 16\nbatch_size = 2\neval_clips = 2\n"
    )
    out = tmp_path / "run"
    assert (
        main(["train", "--config", str(toml), "--set", f"data.dir={root}", "--run-dir", str(out), "-q"]) == 0
    )
    vocoder = HifiGanVocoder.from_pretrained(out / "final", subfolder=None)
    assert vocoder.hifigan.config.normalize_before
    bank = ClipBank.load(root, list_clips(root, "train"), SECONDS)
    torch.testing.assert_close(vocoder.hifigan.mean, bank.mels.reshape(-1, 64).mean(0), atol=1e-4, rtol=0)
    audio = vocoder(bank.mels[:1])
    assert audio.shape == (1, bank.frames * 160) and torch.isfinite(audio).all()
    assert json.loads((out / "final_summary.json").read_text())["step"] == 2


def test_cli_trains_the_bundled_config(tmp_path: Path) -> None:
    """``fluxmusic train --config configs/bundled/vocoder.toml`` runs the vocoder tenant (tiny via --set)."""
    root = write_dataset(tmp_path / "data", n=2)
    out = tmp_path / "run"
    sets = [
        "model.upsample_initial_channel=32", "model.resblock_kernel_sizes=[3]",
        "model.resblock_dilation_sizes=[[1]]",
        f"data.clip_seconds={SECONDS}", "data.crop_frames=16", "data.batch_size=2", "data.eval_clips=0",
        "run.max_steps=3", "run.checkpoint_every=2", "run.export=false", f"data.dir={root}", f"run.dir={out}",
    ]  # fmt: skip
    argv = ["train", "--config", str(REPO / "configs" / "bundled" / "vocoder.toml"), "-q"]
    assert main([*argv, *(arg for s in sets for arg in ("--set", s))]) == 0
    assert (out / "latest").read_text().strip() == "step_000003"
    meta = json.loads((latest_checkpoint(out) / "config.json").read_text())
    assert meta["model_type"] == "hifigan" and meta["config"]["upsample_rates"] == [8, 5, 4]
    assert meta["train"]["optim"]["betas"] == [0.8, 0.99] and not (out / "final").exists()
