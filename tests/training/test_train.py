"""Single-process training end to end: loss falls, checkpoints and exports load, bad data is skipped."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file
from train_helpers import shard_config, tiny_config, write_toml, write_tones

from fluxmusic.checkpoints import load_musicflux
from fluxmusic.cli import main
from fluxmusic.training.checkpoint import latest_checkpoint, list_checkpoints, load_training_state
from fluxmusic.training.config import OptimConfig, load_config
from fluxmusic.training.ema import EMA
from fluxmusic.training.loop import train
from fluxmusic.training.optim import lr_multiplier


@pytest.fixture(scope="module")
def overfit(tones: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """30 optimizer steps (x2 micro-batches) on 8 clips, straight from audio, with samples and export."""
    tmp = tmp_path_factory.mktemp("overfit")
    config = tiny_config(
        tmp / "run",
        tones,
        run={"max_steps": 30, "log_every": 5, "checkpoint_every": 10, "keep_last": 2, "export": True,
             "tensorboard": True, "precision": "bf16"},
        optim={"lr": 2e-3, "warmup_steps": 3, "schedule": "cosine"},
        data={"caption_dropout": 0.1},
        sample={"every": 15, "prompts": ["a tone number 1", "a tone number 2"], "steps": 2, "guidance": 3.0},
    )  # fmt: skip
    return train(load_config(write_toml(config, tmp / "c.toml")))


def test_loss_falls_and_steps_are_optimizer_steps(overfit) -> None:  # noqa: ANN001
    with (overfit.run_dir / "logs" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    losses = [float(r["loss"]) for r in rows]
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20, 25, 30]
    assert sum(losses[-2:]) < 0.8 * sum(losses[:2]), losses
    assert all(float(r["tokens_per_s"]) > 0 and float(r["grad_norm"]) > 0 for r in rows)
    state = load_training_state(overfit.checkpoint)
    assert state["step"] == 30 and state["samples"] == 30 * 2 * 2  # batch 2 x accumulation 2 per step
    assert state["data"] == {"epoch": 14, "batch": 4}  # 120 clips = 15 epochs of 8 (4 micro-batches each)
    assert list((overfit.run_dir / "tensorboard").iterdir())


def test_checkpoints_are_complete_loadable_and_pruned(overfit) -> None:  # noqa: ANN001
    run = overfit.run_dir
    assert [s for s, _ in list_checkpoints(run)] == [20, 30]  # keep_last = 2
    ckpt = latest_checkpoint(run)
    assert ckpt == overfit.checkpoint == run / "checkpoints" / "step_000030"
    assert sorted(p.name for p in ckpt.iterdir()) == [
        "config.json", "ema.safetensors", "model.safetensors", "training_state.pt"
    ]  # fmt: skip
    meta = json.loads((ckpt / "config.json").read_text())
    assert (
        meta["model_type"] == "musicflux" and meta["step"] == 30 and meta["train"]["run"]["max_steps"] == 30
    )
    ema = load_musicflux(ckpt / "ema.safetensors")  # config.json beside it rebuilds the model
    model = load_musicflux(ckpt)
    trained = overfit.model.state_dict()
    assert all(torch.equal(model.state_dict()[k], trained[k]) for k in trained)
    assert any(not torch.equal(ema.state_dict()[k], trained[k]) for k in trained)
    state = load_training_state(ckpt)  # weights_only=True
    assert {"optimizer", "scheduler", "rng", "data", "step"} <= set(state)
    assert state["scheduler"]["last_epoch"] == 30


def test_export_is_a_pipeline_folder_with_the_ema_weights(overfit) -> None:  # noqa: ANN001
    from fluxmusic import FluxMusicPipeline

    pipe = FluxMusicPipeline.from_pretrained(overfit.export, device="cpu", dtype="float32")
    ema = load_file(str(overfit.checkpoint / "ema.safetensors"))
    assert all(torch.equal(pipe.transformer.state_dict()[k], v) for k, v in ema.items())
    audio = pipe("a tone number 1", steps=2, seed=0, progress=False)
    assert audio.waveforms.shape == (1, round(0.64 * 16000)) and torch.isfinite(audio.waveforms).all()
    samples = sorted(p.name for p in (overfit.run_dir / "samples").iterdir())
    assert samples == ["step_000015", "step_000030"]
    listing = json.loads((overfit.run_dir / "samples" / "step_000030" / "prompts.json").read_text())
    assert [e["prompt"] for e in listing] == ["a tone number 1", "a tone number 2"]
    assert (overfit.run_dir / "samples" / "step_000030" / "01.wav").is_file()


def test_bad_files_are_skipped_and_reported(tmp_path: Path) -> None:
    manifest = write_tones(tmp_path, n=4)
    items = json.loads(manifest.read_text())
    sf.write(tmp_path / "audio" / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    (tmp_path / "audio" / "corrupt.wav").write_bytes(b"not audio" * 200)
    sf.write(tmp_path / "audio" / "short.wav", np.ones(3200, dtype=np.float32) * 0.1, 16000)
    sf.write(tmp_path / "audio" / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    items += [
        {"wav": "audio/empty.wav", "label": "empty"},
        {"wav": "audio/missing.wav", "label": "missing"},
        {"wav": "audio/corrupt.wav", "label": "corrupt"},
        {"wav": "audio/short.wav", "label": "short"},
        {"wav": "audio/silent.wav", "label": "silent"},  # passes the header check; skipped when loaded
    ]
    manifest.write_text(json.dumps(items))
    config = tiny_config(
        tmp_path / "run", manifest, run={"max_steps": 4, "log_every": 4, "checkpoint_every": 4}
    )
    result = train(load_config(write_toml(config, tmp_path / "c.toml")))
    report = json.loads((result.run_dir / "logs" / "data_check.json").read_text())
    statuses = {Path(e["path"]).name: e["status"] for e in report["items"]}
    assert statuses["missing.wav"] == "missing" and statuses["corrupt.wav"] == "corrupt"
    assert statuses["short.wav"] == "too_short" and statuses["silent.wav"] == "ok"
    assert statuses["empty.wav"] == "empty"
    skipped = [
        json.loads(line) for line in (result.run_dir / "logs" / "skipped-r0.jsonl").read_text().splitlines()
    ]
    assert skipped and {s["path"] for s in skipped} == {str(tmp_path / "audio" / "silent.wav")}
    assert all("silent" in s["reason"] and s["item"] == 9 for s in skipped)
    state = load_training_state(result.checkpoint)
    assert state["samples"] + state["skipped"] == 4 * 2 * 2  # skipped clips were left out, not zero-filled
    assert state["skipped"] == len(skipped)


def test_refuses_to_overwrite_a_run(tones: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_toml(tiny_config(tmp_path / "run", tones, run={"max_steps": 1}), tmp_path / "c.toml")
    assert main(["train", "--config", str(config), "-q"]) == 0
    assert main(["train", "--config", str(config), "-q"]) == 2
    assert "already holds checkpoints; pass --resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "run"), "--set", "run.max_steps=2", "-q"]) == 0
    assert load_training_state(latest_checkpoint(tmp_path / "run"))["step"] == 2
    assert main(["train", "--config", str(config), "--auto-resume", "--set", "run.max_steps=3", "-q"]) == 0
    assert load_training_state(latest_checkpoint(tmp_path / "run"))["step"] == 3
    fresh = tmp_path / "fresh"
    assert main(["train", "--config", str(config), "--auto-resume", "--run-dir", str(fresh), "-q"]) == 0
    assert load_training_state(latest_checkpoint(fresh))["step"] == 1


def test_cli_config_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_toml(tiny_config(tmp_path / "run", tmp_path / "m.json"), tmp_path / "c.toml")
    assert main(["train", "--config", str(config), "--set", "optim.learning_rate=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown key(s) optim.learning_rate" in err
    assert main(["train"]) == 2
    assert "give --config" in capsys.readouterr().err


def test_ema_and_schedule() -> None:
    param = torch.nn.Parameter(torch.zeros(3))
    ema = EMA([("w", param)], decay=0.9)
    with torch.no_grad():
        param.fill_(1.0)
    ema.update()
    ema.update()
    assert torch.allclose(ema.local_state()["w"], torch.full((3,), 1 - 0.9**2))
    factor = lr_multiplier(OptimConfig(warmup_steps=4, schedule="cosine", min_lr_ratio=0.1), max_steps=14)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(4) == 1.0 and factor(9) == pytest.approx(0.55) and factor(14) == pytest.approx(0.1)
    assert lr_multiplier(OptimConfig(schedule="linear"), 10)(5) == pytest.approx(0.5)


def test_cli_preprocess_then_train_from_shards(
    tones: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_toml(tiny_config(tmp_path / "run", tones, run={"max_steps": 2}), tmp_path / "c.toml")
    shards = tmp_path / "latents"
    assert (
        main(["preprocess", str(tones), str(shards), "--config", str(config), "--shard-size", "5", "-q"]) == 0
    )
    assert "wrote 8 rows in 2 shard(s)" in capsys.readouterr().out
    overrides = ["--set", f"data.shards={shards}", "--set", 'data.manifest=""']
    assert main(["train", "--config", str(config), *overrides, "-q"]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert saved["data"]["shards"] == str(shards)


def test_cli_data_build_demo_is_wired(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "build-demo", "--help"])
    assert exit_info.value.code == 0
    assert "--n-clips" in capsys.readouterr().out


def test_activation_checkpointing_trains_the_same(tone_shards: Path, tmp_path: Path) -> None:
    weights = []
    for flag in (False, True):
        config = shard_config(tmp_path / f"run{flag}", tone_shards, run={"max_steps": 2})
        config["model"]["gradient_checkpointing"] = flag
        result = train(load_config(write_toml(config, tmp_path / f"{flag}.toml")))
        weights.append(load_file(str(result.checkpoint / "model.safetensors")))
    assert all(torch.allclose(weights[0][k], weights[1][k], atol=1e-6) for k in weights[0])


def test_patch_four_model_trains_and_exports(tone_shards: Path, tmp_path: Path) -> None:
    from fluxmusic import FluxMusicPipeline

    config = shard_config(tmp_path / "run", tone_shards, run={"max_steps": 4, "export": True})
    config["model"]["overrides"] = {"patch_size": 4, "in_channels": 8 * 16}
    result = train(load_config(write_toml(config, tmp_path / "c.toml")))
    with (result.run_dir / "logs" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and all(np.isfinite(float(r["loss"])) for r in rows)
    pipe = FluxMusicPipeline.from_pretrained(result.export, device="cpu", dtype="float32")
    assert pipe.transformer.config.patch_size == 4
    audio = pipe("a tone number 1", steps=2, seed=0, progress=False)
    assert audio.waveforms.shape == (1, round(0.64 * 16000)) and torch.isfinite(audio.waveforms).all()


def test_patch_size_mismatch_with_latents_is_named(tone_shards: Path, tmp_path: Path) -> None:
    config = shard_config(tmp_path / "run", tone_shards, run={"max_steps": 1})
    config["model"]["overrides"] = {"patch_size": 4, "in_channels": 32}  # 2 channels x 16, latents have 8
    with pytest.raises(ValueError, match="features per token"):
        train(load_config(write_toml(config, tmp_path / "c.toml")))


def test_cli_preprocess_with_its_progress_bar(tones: Path, tmp_path: Path) -> None:
    config = write_toml(tiny_config(tmp_path / "run", tones), tmp_path / "c.toml")
    assert main(["preprocess", str(tones), str(tmp_path / "latents"), "--config", str(config)]) == 0
    assert json.loads((tmp_path / "latents" / "index.json").read_text())["num_rows"] == 8


def test_bf16_on_a_cpu_without_native_bf16_warns(
    tone_shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from fluxmusic import devices

    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: False)
    config = shard_config(tmp_path / "run", tone_shards, run={"max_steps": 1, "precision": "bf16"})
    with caplog.at_level("WARNING", logger="fluxmusic.training.loop"):
        train(load_config(write_toml(config, tmp_path / "c.toml")))
    assert any("set run.precision = 'fp32'" in r.getMessage() for r in caplog.records)
