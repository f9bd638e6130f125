"""What ``SectionedConfig`` fills in: section defaults, the trainer name, component run sections."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from fluxmusic.errors import InputError
from fluxmusic.training.components.sections import ComponentRunConfig, ComponentTrainConfig, run_section
from fluxmusic.training.components.vae import VAERunConfig, VAETrainConfig
from fluxmusic.training.components.vocoder import VocoderTrainConfig
from fluxmusic.training.config import SectionedConfig, TrainConfig, plain
from fluxmusic.training.sections import BaseRunConfig, EMAConfig


def test_a_section_without_a_default_takes_its_class_defaults() -> None:
    config = TrainConfig()
    assert config.ema == EMAConfig() and config.data.manifest == "train.json"
    assert VAETrainConfig().run == VAERunConfig()
    assert VAETrainConfig().run is not VAETrainConfig().run  # a fresh section per config


def test_the_trainer_is_the_run_section_default() -> None:
    assert (TrainConfig.TRAINER, VAETrainConfig.TRAINER, VocoderTrainConfig.TRAINER) == (
        "musicflux",
        "vae",
        "vocoder",
    )
    assert ComponentTrainConfig.TRAINER == ""
    with pytest.raises(InputError, match="run.trainer = 'vocoder'"):
        VAETrainConfig(run=VAERunConfig(trainer="vocoder"))


@dataclass(frozen=True)
class _OtherRun(BaseRunConfig):
    trainer: str = "other"


@dataclass(frozen=True)
class _OtherConfig(SectionedConfig):
    TRAINER = "other"

    run: _OtherRun = dataclasses.field(default_factory=lambda: _OtherRun(dir="elsewhere"))
    ema: EMAConfig


def test_an_explicit_trainer_and_section_default_are_kept() -> None:
    assert _OtherConfig().run.dir == "elsewhere" and _OtherConfig.TRAINER == "other"
    assert _OtherConfig().ema == EMAConfig() and list(_OtherConfig.sections()) == ["run", "ema"]


def test_run_section_defaults() -> None:
    section = run_section("thing", "ThingRunConfig")
    assert issubclass(section, ComponentRunConfig) and section.__name__ == "ThingRunConfig"
    run = section()
    assert (run.trainer, run.dir) == ("thing", "runs/bundled_thing")
    names = [f.name for f in dataclasses.fields(section)]
    assert names == [f.name for f in dataclasses.fields(ComponentRunConfig)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.dir = "x"  # type: ignore[misc]


def test_plain_is_json_ready() -> None:
    assert plain(EMAConfig()) == dataclasses.asdict(EMAConfig())
    assert plain({"a": (1, (2, 3)), "b": [4]}) == {"a": [1, [2, 3]], "b": [4]}
    assert VAETrainConfig().model.vae_config()["block_out_channels"] == [32, 64, 128]
