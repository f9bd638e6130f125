"""Bundled mel-VAE trainer (a tenant of the training framework): config validation, overfitting, exact
resume (also after a real SIGKILL), export folding, the ``fluxmusic train`` command."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import REPO, component_config, run_cli, write_toml

from fluxmusic.audio import AudioVAE, write_audio
from fluxmusic.cli import main
from fluxmusic.data.clip_bank import ClipBank, list_clips
from fluxmusic.training.checkpoint import latest_checkpoint, list_checkpoints, load_training_state
from fluxmusic.training.components.vae import (
    VAETrainConfig,
    build,
    export,
    held_out_l1,
    mel_statistics,
    train,
)
from fluxmusic.training.config import load_config
from fluxmusic.training.trainers import load_experiment

SECONDS = 0.32  # 32 frames
# --set overrides that shrink configs/bundled/vae.toml to a seconds-long CPU run
TINY_SETS = [
    "model.block_out_channels=[8, 16, 16]",
    "model.norm_num_groups=8",
    "model.mid_block_add_attention=false",
    f"data.clip_seconds={SECONDS}",
    "data.crop_frames=16",
    "data.batch_size=2",
    "run.threads=1",
]


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


SIZES = {
    "model": {"block_out_channels": [8, 16, 16], "norm_num_groups": 8, "mid_block_add_attention": False},
    "optim": {"lr": 3e-3, "warmup_steps": 0},
}


def tiny(data_dir: Path, run_dir: Path, **sections: dict[str, Any]) -> VAETrainConfig:
    return VAETrainConfig.from_dict(component_config(data_dir, run_dir, SECONDS, SIZES, sections))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def bank(dataset: Path) -> ClipBank:
    return ClipBank.load(dataset, list_clips(dataset, "train"), SECONDS, keep_waveforms=False)


def test_config_validation_and_overrides(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="norm_num_groups"):
        tiny(dataset, tmp_path, model={"block_out_channels": [12, 16, 16]})
    with pytest.raises(ValueError, match="multiple of the downsample"):
        tiny(dataset, tmp_path, data={"crop_frames": 18})
    with pytest.raises(ValueError, match="unknown key"):
        tiny(dataset, tmp_path, optim={"learning_rate": 1.0})
    with pytest.raises(ValueError, match="unknown config section"):
        VAETrainConfig.from_dict({"trainer": {}})
    with pytest.raises(ValueError, match="run.trainer = 'musicflux'"):
        tiny(dataset, tmp_path, run={"trainer": "musicflux"})
    toml = tmp_path / "vae.toml"
    toml.write_text("[model]\nblock_out_channels = [16, 32, 64]\nnorm_num_groups = 16\n[loss]\nkl = 0.001\n")
    config = load_config(toml, ["optim.lr=2e-3", "data.crop_frames=64"], cls=VAETrainConfig)
    assert config.model.block_out_channels == (16, 32, 64)
    assert (config.loss.kl, config.optim.lr, config.data.crop_frames) == (0.001, 2e-3, 64)
    again = VAETrainConfig.from_dict(config.to_dict())
    assert again == config
    # the file's run.trainer picks the trainer
    assert load_experiment(toml, ["run.trainer=vae", "optim.lr=2e-3", "data.crop_frames=64"]) == config
    with pytest.raises(ValueError, match="run.trainer must be one of musicflux, vae, vocoder"):
        load_experiment(toml, ["run.trainer=autoencoder"])


def test_loss_decreases_on_tiny_set(dataset: Path, bank: ClipBank, tmp_path: Path) -> None:
    config = tiny(dataset, tmp_path / "run", run={"max_steps": 25, "checkpoint_every": 25})
    fresh, _ = build(config)
    result = train(config)
    stats = mel_statistics(bank.mels[: config.data.stats_clips])
    before = held_out_l1(fresh, bank.mels, stats)
    after = held_out_l1(result.model, bank.mels, stats)
    assert result.step == 25
    assert after < 0.6 * before, (before, after)


def test_resume_is_bit_identical(dataset: Path, tmp_path: Path) -> None:
    straight = train(tiny(dataset, tmp_path / "a", run={"keep_last": 2}))
    for stop in (2, 3):
        train(tiny(dataset, tmp_path / "b", run={"keep_last": 2, "stop_at": stop}), resume="auto")
    resumed = train(tiny(dataset, tmp_path / "b", run={"keep_last": 2}), resume=tmp_path / "b")
    assert resumed.step == 6
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    kept = [p.name for _, p in list_checkpoints(tmp_path / "b")]
    assert kept == ["step_000004", "step_000006"]
    state = load_training_state(tmp_path / "b" / "checkpoints" / "step_000006")
    assert state["step"] == 6 and "model" in state["optimizer"] and "data" in state["rng"]


def test_export_folds_normalisation_exactly(dataset: Path, bank: ClipBank, tmp_path: Path) -> None:
    config = tiny(dataset, tmp_path / "run")
    vae = train(config).model
    stats = mel_statistics(bank.mels[: config.data.stats_clips])
    expected = held_out_l1(vae, bank.mels, stats)
    export(vae, stats, bank, tmp_path / "final")
    assert held_out_l1(vae, bank.mels, stats) == expected  # the trained VAE itself is left as it was
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
        '[run]\ntrainer = "vae"\nmax_steps = 4\ncheckpoint_every = 2\n'
        "[model]\nblock_out_channels = [8, 16, 16]\nnorm_num_groups = 8\nmid_block_add_attention = false\n"
        f"[data]\nclip_seconds = {SECONDS}\ncrop_frames = 16\nbatch_size = 2\neval_clips = 2\n"
        "[optim]\nwarmup_steps = 1\n"
    )
    out = tmp_path / "run"
    paths = ["--set", f"data.dir={root}", "--set", f"run.dir={out}"]
    assert main(["train", "--config", str(toml), *paths, "--set", "run.stop_at=2", "-q"]) == 0
    assert not (out / "final").exists()
    assert main(["train", "--resume", str(out), "-q"]) == 0
    summary = json.loads((out / "final_summary.json").read_text())
    assert summary["step"] == 4 and summary["held_out_mel_l1"] > 0
    vae = AudioVAE.from_pretrained(out / "final", subfolder=None)
    assert vae.scaling_factor == pytest.approx(summary["scaling_factor"])
    assert json.loads((out / "clips_train.json").read_text()) == list_clips(root, "train")


def test_cli_trains_the_bundled_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``fluxmusic train --config configs/bundled/vae.toml`` runs the VAE tenant (sizes shrunk by --set)."""
    root = write_dataset(tmp_path / "data", n_train=3, n_test=1)
    out = tmp_path / "run"
    sets = [*TINY_SETS, "run.max_steps=3", "run.checkpoint_every=2", f"data.dir={root}", f"run.dir={out}"]
    argv = ["train", "--config", str(REPO / "configs" / "bundled" / "vae.toml"), "-q"]
    assert main([*argv, *(arg for s in sets for arg in ("--set", s))]) == 0
    assert "trained 3 steps" in capsys.readouterr().out
    assert (out / "latest").read_text().strip() == "step_000003"
    checkpoint = latest_checkpoint(out)
    assert checkpoint == out / "checkpoints" / "step_000003"
    assert sorted(p.name for p in checkpoint.iterdir()) == [
        "config.json",
        "model.safetensors",
        "training_state.pt",
    ]
    meta = json.loads((checkpoint / "config.json").read_text())
    assert meta["model_type"] == "vae" and meta["config"]["block_out_channels"] == [8, 16, 16]
    saved = json.loads((out / "train_config.json").read_text())  # the bundled numbers, as shipped
    assert saved["run"]["trainer"] == "vae" and saved["optim"]["lr"] == 5e-4 and saved["loss"]["kl"] == 1e-4
    assert (out / "final" / "config.json").is_file() and (out / "logs" / "metrics.csv").is_file()


def _assert_same_checkpoint(a: Path, b: Path) -> None:
    left, right = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)
    sa, sb = load_training_state(a), load_training_state(b)
    assert sa["step"] == sb["step"]
    opt_a, opt_b = sa["optimizer"]["model"]["state"], sb["optimizer"]["model"]["state"]
    assert opt_a.keys() == opt_b.keys()
    for key, value in opt_a.items():
        for field in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(value[field], opt_b[key][field]), (key, field)
    assert all(torch.equal(sa["rng"][k], sb["rng"][k]) for k in ("data", "noise"))
    assert all(torch.equal(sa["tensors"][k], sb["tensors"][k]) for k in sa["tensors"])


def test_sigkill_then_resume_is_bit_exact(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real SIGKILL while checkpoint 4 is half written, then a crash after step 5: the resumed run ends
    bit for bit (weights, AdamW moments, generator states) where an uninterrupted one does."""
    reference = tmp_path / "uninterrupted"
    train(tiny(dataset, reference, run={"keep_last": 5}))

    run = tmp_path / "killed"
    layer = {"run": {"trainer": "vae", "keep_last": 5}}
    toml = write_toml(component_config(dataset, run, SECONDS, SIZES, layer), tmp_path / "vae.toml")
    killed = run_cli("train", "--config", str(toml), "-q", env={"FLUXMUSIC_FAULT": "kill-in-checkpoint:4"})
    assert killed.returncode == -9, killed.stderr
    partial = list((run / "checkpoints").glob(".tmp-step_000004-*"))
    assert len(partial) == 1 and (partial[0] / "model.safetensors").is_file()
    assert latest_checkpoint(run) == run / "checkpoints" / "step_000002"
    assert (run / "latest").read_text().strip() == "step_000002"

    import fluxmusic.training.components.tenant as tenant

    def crash(point: str, step: int) -> None:
        if (point, step) == ("kill-after-step", 5):
            raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(tenant, "maybe_kill", crash)
    assert main(["train", "--resume", str(run), "-q"]) == 130
    monkeypatch.undo()
    assert not list((run / "checkpoints").glob(".tmp-*"))  # the unfinished write was cleaned up
    assert [step for step, _ in list_checkpoints(run)] == [2, 4]

    assert main(["train", "--resume", str(run), "-q"]) == 0
    for step in ("step_000002", "step_000004", "step_000006"):
        _assert_same_checkpoint(reference / "checkpoints" / step, run / "checkpoints" / step)
