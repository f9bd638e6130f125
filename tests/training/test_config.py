"""Typed training configs: TOML, --set overrides, unknown keys and bad values are errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import REPO, tiny_config, write_toml

from fluxmusic.training.config import TrainConfig, load_config, parse_override
from fluxmusic.training.trainers import load_experiment


def test_toml_round_trip_and_overrides(tmp_path: Path) -> None:
    path = write_toml(tiny_config(tmp_path / "run", tmp_path / "m.json"), tmp_path / "c.toml")
    config = load_config(
        path,
        [
            "optim.lr=5e-4",
            "run.max_steps=12",
            "data.manifest=data/other.json",
            'sample.prompts=["a calm piano piece", "drums"]',
            "sample.every=4",
            "text.options.seed=3",
            "lora.targets=['attention']",
            "optim.betas=[0.9, 0.95]",
        ],
    )
    assert config.optim.lr == 5e-4 and config.run.max_steps == 12
    assert config.data.manifest == "data/other.json"
    assert config.sample.prompts == ("a calm piano piece", "drums")
    assert config.text.options == {"txt_dim": 40, "pooled_dim": 24, "seed": 3}
    assert config.lora.targets == ("attention",) and config.optim.betas == (0.9, 0.95)
    assert config.model.musicflux().hidden_size == 64
    again = TrainConfig.from_dict(config.to_dict())
    assert again == config
    saved = config.save_json(tmp_path / "saved.json")
    assert load_config(saved) == config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.learning_rate=1"], "unknown key(s) optim.learning_rate"),
        (["trainer.steps=1"], "unknown config section(s) ['trainer']"),
        (["run.max_steps=1.5"], "run.max_steps must be an integer"),
        (["run.max_steps=0"], "run.max_steps must be >= 1"),
        (["run.precision=fp16"], "run.precision must be one of bf16, fp32"),
        (["data.caption_dropout=1.0"], "data.caption_dropout must be in [0, 1)"),
        (["data.shards=x"], "exactly one of data.manifest"),
        (["model.preset=huge"], "model.preset must be one of"),
        (["model.overrides={hidden=3}"], "model.overrides has unknown keys ['hidden']"),
        (["model.overrides={num_heads=5}"], "must be divisible by num_heads"),
        (["run.tensorboard=1"], "run.tensorboard must be true or false"),
        (["lora.targets=['ffn']"], "lora.targets must be a non-empty subset"),
        (["sample.every=10"], "sample.prompts is empty"),
        (["run.strategy=fsdp", "lora.enabled=true"], "LoRA with FSDP is not supported"),
        (["optim.betas=[0.9]"], "optim.betas must be two numbers"),
        (["nodot=1"], "--set expects section.key=value"),
        (["run.trainer=vae"], "run.trainer = 'vae', but TrainConfig is the config of 'musicflux'"),
        (["optim.lr=nan"], "optim.lr must be a finite number, got nan"),
        (["ema.decay=-inf"], "ema.decay must be a finite number"),
        (["run.seed=1\n[evil]\nx=1"], "--set takes one line"),
        (["run.max_nonfinite=0"], "run.max_nonfinite must be >= 1"),
    ],
)
def test_bad_configs_name_the_key(tmp_path: Path, overrides: list[str], message: str) -> None:
    path = write_toml(tiny_config(tmp_path / "run", tmp_path / "m.json"), tmp_path / "c.toml")
    with pytest.raises(ValueError) as err:
        load_config(path, overrides)
    assert message in str(err.value)


def test_parse_override_values() -> None:
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a.b=true") == (["a", "b"], True)
    assert parse_override("a.b=some/path.json") == (["a", "b"], "some/path.json")
    assert parse_override('a.b.c="x=y"') == (["a", "b", "c"], "x=y")


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("[run\nmax_steps = 3")
    with pytest.raises(ValueError, match="cannot parse"):
        load_config(tmp_path / "bad.toml")


EXAMPLES = ("train_tiny", "train_small", "train_giant_fsdp", "finetune_small", "finetune_small_lora")


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_configs_are_valid(name: str) -> None:
    config = load_config(REPO / "configs" / f"{name}.toml")
    assert config.run.max_steps >= 1
    assert config.lora.enabled == name.endswith("lora")


@pytest.mark.parametrize(("name", "trainer"), [("vae", "vae"), ("vocoder", "vocoder")])
def test_bundled_component_configs_dispatch_on_run_trainer(name: str, trainer: str) -> None:
    """One loader for every trainer: ``run.trainer`` picks the config class; --set works the same."""
    config = load_experiment(REPO / "configs" / "bundled" / f"{name}.toml", ["run.max_steps=3"])
    assert config.TRAINER == trainer == config.run.trainer and config.run.max_steps == 3
    assert type(config).from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown key\\(s\\) optim.batch_size; \\[optim\\] has"):
        load_experiment(REPO / "configs" / "bundled" / f"{name}.toml", ["optim.batch_size=3"])


def test_experiments_without_run_trainer_are_musicflux(tmp_path: Path) -> None:
    path = write_toml(tiny_config(tmp_path / "run", tmp_path / "m.json"), tmp_path / "c.toml")
    assert load_experiment(path) == load_config(path)
    with pytest.raises(ValueError, match="run.trainer must be one of musicflux, vae, vocoder; got 'gan'"):
        load_experiment(path, ["run.trainer=gan"])
