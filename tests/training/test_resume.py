"""Crash safety: SIGKILL at any point (between steps or during a checkpoint write) loses nothing, and the
resumed run ends bit for bit where an uninterrupted one does (CPU)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import run_cli, shard_config, tiny_config, write_toml

from fluxmusic.checkpoints import load_musicflux
from fluxmusic.training.checkpoint import latest_checkpoint, list_checkpoints, load_training_state
from fluxmusic.training.config import load_config
from fluxmusic.training.loop import train


def _assert_same(a: Path, b: Path) -> None:
    for name in ("model.safetensors", "ema.safetensors"):
        left, right = load_file(str(a / name)), load_file(str(b / name))
        assert left.keys() == right.keys()
        for key in left:
            assert torch.equal(left[key], right[key]), f"{name}:{key} differs"
    sa, sb = load_training_state(a), load_training_state(b)
    assert sa["step"] == sb["step"] and sa["data"] == sb["data"]
    assert sa["optimizer"]["state"].keys() == sb["optimizer"]["state"].keys()
    for key, value in sa["optimizer"]["state"].items():
        for field in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(value[field], sb["optimizer"]["state"][key][field])


def _losses(run: Path) -> list[tuple[str, str]]:
    with (run / "logs" / "metrics.csv").open() as f:
        return [(row["step"], row["loss"]) for row in csv.DictReader(f)]


def test_sigkill_then_resume_is_bit_exact(tone_shards: Path, tmp_path: Path) -> None:
    # N = 6 uninterrupted optimizer steps (2 micro-batches each) from shards, checkpoints every 2 steps.
    reference = tmp_path / "uninterrupted"
    train(load_config(write_toml(shard_config(reference, tone_shards), tmp_path / "a.toml")))

    run = tmp_path / "killed"
    config = write_toml(shard_config(run, tone_shards), tmp_path / "b.toml")
    # 1. SIGKILL while checkpoint 4 is half written: checkpoint 2 stays intact and loadable.
    killed = run_cli("train", "--config", str(config), "-q", env={"FLUXMUSIC_FAULT": "kill-in-checkpoint:4"})
    assert killed.returncode == -9, killed.stderr
    partial = list((run / "checkpoints").glob(".tmp-step_000004-*"))
    assert len(partial) == 1 and (partial[0] / "model.safetensors").is_file()
    assert not (partial[0] / "training_state.pt").exists()
    previous = run / "checkpoints" / "step_000002"
    assert latest_checkpoint(run) == previous and (run / "latest").read_text().strip() == "step_000002"
    ema = load_musicflux(previous / "ema.safetensors")
    expected = load_file(str(reference / "checkpoints" / "step_000002" / "ema.safetensors"))
    assert all(torch.equal(ema.state_dict()[k], v) for k, v in expected.items())
    assert load_training_state(previous)["step"] == 2

    # 2. Resume, then SIGKILL between steps (after step 5; checkpoint 4 is the newest).
    killed = run_cli("train", "--resume", str(run), "-q", env={"FLUXMUSIC_FAULT": "kill-after-step:5"})
    assert killed.returncode == -9, killed.stderr
    assert not list((run / "checkpoints").glob(".tmp-*"))  # the unfinished write was cleaned up
    assert [step for step, _ in list_checkpoints(run)] == [2, 4]

    # 3. Resume to N: model, EMA and optimizer state equal the uninterrupted run's, bit for bit.
    resumed = run_cli("train", "--resume", str(run), "-q")
    assert resumed.returncode == 0, resumed.stderr
    for step in ("step_000004", "step_000006"):
        _assert_same(reference / "checkpoints" / step, run / "checkpoints" / step)
    assert _losses(run) == _losses(reference)  # the log reads as one run: rows past step 4 were redone


def test_audio_path_crash_then_resume_is_bit_exact(
    tones: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Straight from audio (seeded crops, VAE posterior samples, caption dropout): a crash after step 5
    loses step 5, and the resumed run still ends exactly where the uninterrupted one does."""
    reference = tmp_path / "uninterrupted"
    train(load_config(write_toml(tiny_config(reference, tones), tmp_path / "a.toml")))

    import fluxmusic.training.loop as loop

    def crash(point: str, step: int) -> None:
        if (point, step) == ("kill-after-step", 5):
            raise KeyboardInterrupt("simulated crash")

    run = tmp_path / "crashed"
    config = write_toml(tiny_config(run, tones), tmp_path / "b.toml")
    monkeypatch.setattr(loop, "maybe_kill", crash)
    with pytest.raises(KeyboardInterrupt):
        train(load_config(config))
    monkeypatch.undo()
    assert latest_checkpoint(run) == run / "checkpoints" / "step_000004"
    train(loop.resume_config(run), resume=run)
    _assert_same(reference / "checkpoints" / "step_000006", run / "checkpoints" / "step_000006")


def test_resume_without_checkpoint_is_one_line_error(tmp_path: Path) -> None:
    result = run_cli("train", "--resume", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "not a fluxmusic run folder" in result.stderr


def test_lora_resume_is_bit_exact(tone_shards: Path, tmp_path: Path) -> None:
    """LoRA checkpoints hold only the adapter (and its EMA); resuming rebuilds the base, continues exactly."""
    lora = {"enabled": True, "rank": 4, "dropout": 0.1}  # dropout draws from the restored torch RNG
    reference = tmp_path / "uninterrupted"
    train(load_config(write_toml(shard_config(reference, tone_shards, lora=lora), tmp_path / "a.toml")))
    run = tmp_path / "stopped"
    config = shard_config(run, tone_shards, lora=lora, run={"max_steps": 4})
    train(load_config(write_toml(config, tmp_path / "b.toml")))
    from fluxmusic.training.loop import resume_config

    train(resume_config(run, ["run.max_steps=6"]), resume=run)
    for name in ("adapter_model.safetensors", "adapter_ema.safetensors"):
        left = load_file(str(reference / "checkpoints" / "step_000006" / name))
        right = load_file(str(run / "checkpoints" / "step_000006" / name))
        assert left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)
