"""Bundled mel-VAE trainer: config validation, overfitting, exact resume, export folding, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from fluxmusic.audio import AudioVAE, write_audio
from fluxmusic.training import component_run as runs
from fluxmusic.training.autoencoder import (
    AutoencoderTrainConfig,
    build,
    export,
    held_out_l1,
    main,
    train,
)
from fluxmusic.data.clip_bank import ClipBank, list_clips

SECONDS = 0.32  # 32 frames


def write_dataset(root: Path, n_train: int = 4, n_test: int = 2) -> Path:
    """Chords of decaying partials at 16 kHz plus reference-format manifests."""
    g = torch.Generator().manual_seed(0)
    t = torch.arange(int(SECONDS * 16000)) / 16000
    for split, n in (("train", n_train), ("test", n_test)):
        entries = []
        for i in range(n):
            f0 = 110.0 * 2 ** (float(torch.rand((), generator=g)) * 3)
            wave = sum(torch.sin(2 * math.pi * f0 * k * t) / k for k in (1, 2, 3)) * torch.exp(-3 * t)
            wave = wave + 0.01 * torch.randn(t.shape, generator=g)
            rel = f"audio/{split}/c{i}.wav"
            write_audio(root / rel, 0.3 * wave / wave.abs().max())
            entries.append({"wav": rel, "label": f"clip {i}"})
        (root / f"{split}.json").write_text(json.dumps(entries))
    return root


def tiny(**sections: dict) -> AutoencoderTrainConfig:
    data = {
        "run": {"threads": 1, "log_every": 2, "eval_every": 0, "checkpoint_every": 2, "progress": False},
        "model": {
            "block_out_channels": [8, 16, 16],
            "norm_num_groups": 8,
            "mid_block_add_attention": False,
        },
        "data": {"clip_seconds": SECONDS, "crop_frames": 16, "batch_size": 2, "eval_clips": 0},
        "optim": {"lr": 3e-3, "warmup_steps": 0, "max_steps": 6},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return runs.config_from_dict(AutoencoderTrainConfig, data)


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> ClipBank:
    root = write_dataset(tmp_path_factory.mktemp("data"))
    return ClipBank.load(root, list_clips(root, "train"), SECONDS, keep_waveforms=False)


def test_config_validation_and_overrides(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="norm_num_groups"):
        tiny(model={"block_out_channels": [12, 16, 16]})
    with pytest.raises(ValueError, match="multiple of the downsample"):
        tiny(data={"crop_frames": 18})
    with pytest.raises(ValueError, match="unknown key"):
        tiny(optim={"learning_rate": 1.0})
    with pytest.raises(ValueError, match="unknown config section"):
        runs.config_from_dict(AutoencoderTrainConfig, {"trainer": {}})
    toml = tmp_path / "vae.toml"
    toml.write_text("[model]\nblock_out_channels = [16, 32, 64]\nnorm_num_groups = 16\n[loss]\nkl = 0.001\n")
    config = runs.load_config(AutoencoderTrainConfig, toml, ["optim.lr=2e-3", "data.crop_frames=64"])
    assert config.model.block_out_channels == (16, 32, 64)
    assert (config.loss.kl, config.optim.lr, config.data.crop_frames) == (0.001, 2e-3, 64)
    again = runs.config_from_dict(AutoencoderTrainConfig, runs.config_to_dict(config))
    assert again == config


def test_loss_decreases_on_tiny_set(bank: ClipBank, tmp_path: Path) -> None:
    config = tiny(optim={"max_steps": 25}, run={"checkpoint_every": 25})
    fresh, _ = build(config)
    vae, stats, step = train(config, bank, tmp_path / "run")
    before = held_out_l1(fresh, bank.mels, stats)
    after = held_out_l1(vae, bank.mels, stats)
    assert step == 25
    assert after < 0.6 * before, (before, after)


def test_resume_is_bit_identical(bank: ClipBank, tmp_path: Path) -> None:
    config = tiny(run={"keep_last": 2})
    straight, _, _ = train(config, bank, tmp_path / "a")
    for stop in (2, 3):
        train(config, bank, tmp_path / "b", resume=True, stop_at=stop)
    resumed, _, step = train(config, bank, tmp_path / "b", resume=True)
    assert step == 6
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    kept = [p.name for p in runs.list_checkpoints(tmp_path / "b")]
    assert kept == ["step_00000004", "step_00000006"]
    _, optimizers, state = runs.load_checkpoint(tmp_path / "b" / "checkpoints" / "step_00000006")
    assert state["step"] == 6 and "vae" in optimizers and "rng.data" in state


def test_export_folds_normalisation_exactly(bank: ClipBank, tmp_path: Path) -> None:
    vae, stats, _ = train(tiny(), bank, tmp_path / "run")
    expected = held_out_l1(vae, bank.mels, stats)
    export(vae, stats, bank, tmp_path / "final")
    loaded = AudioVAE.from_pretrained(tmp_path / "final", subfolder=None).eval()
    with torch.no_grad():
        posterior = loaded.encode(bank.mels[:, None])
        recon = loaded.decode(posterior.mode())[:, 0]
    assert float((recon - bank.mels).abs().mean()) == pytest.approx(expected, rel=1e-4)
    assert float(posterior.sample(torch.Generator().manual_seed(0)).std()) == pytest.approx(1.0, abs=0.05)


def test_cli_trains_resumes_and_exports(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data")
    toml = tmp_path / "vae.toml"
    toml.write_text(
        "[model]\nblock_out_channels = [8, 16, 16]\nnorm_num_groups = 8\nmid_block_add_attention = false\n"
        f"[data]\nclip_seconds = {SECONDS}\ncrop_frames = 16\nbatch_size = 2\neval_clips = 2\n"
        "[optim]\nmax_steps = 4\nwarmup_steps = 1\n[run]\ncheckpoint_every = 2\nprogress = false\n"
    )
    out = tmp_path / "run"
    main(["--config", str(toml), "--data", str(root), "--out", str(out), "--stop-at", "2"])
    assert not (out / "final").exists()
    main(["--data", str(root), "--out", str(out), "--resume"])
    summary = json.loads((out / "final_summary.json").read_text())
    assert summary["step"] == 4 and summary["held_out_mel_l1"] > 0
    vae = AudioVAE.from_pretrained(out / "final", subfolder=None)
    assert vae.scaling_factor == pytest.approx(summary["scaling_factor"])
    assert json.loads((out / "clips_train.json").read_text()) == list_clips(root, "train")
