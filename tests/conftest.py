"""Shared fixtures: golden tensors from the reference implementation and tiny random models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from fluxmusic.config import MusicFluxConfig
from fluxmusic.model import MusicFlux

GOLDEN = Path(__file__).parent / "fixtures" / "golden"


@pytest.fixture(scope="session")
def golden_tiny() -> dict[str, torch.Tensor]:
    """Tensors of ``musicflux_tiny.safetensors`` (reference weights, inputs and outputs)."""
    return load_file(str(GOLDEN / "musicflux_tiny.safetensors"))


@pytest.fixture(scope="session")
def golden_tiny_config() -> MusicFluxConfig:
    with safe_open(str(GOLDEN / "musicflux_tiny.safetensors"), "pt") as f:
        return MusicFluxConfig.from_dict(json.loads(f.metadata()["config"]))


@pytest.fixture()
def golden_model(golden_tiny: dict[str, torch.Tensor], golden_tiny_config: MusicFluxConfig) -> MusicFlux:
    """The reference's tiny model with its weights loaded strictly."""
    model = MusicFlux(golden_tiny_config)
    state = {k.removeprefix("model."): v for k, v in golden_tiny.items() if k.startswith("model.")}
    model.load_state_dict(state, strict=True)
    return model.eval()


@pytest.fixture(scope="session")
def manifest() -> dict:
    """Keys, shapes and parameter counts of every released checkpoint."""
    return json.loads((GOLDEN / "checkpoint_manifest.json").read_text())


TINY_TEXT_ENTRY = {"type": "tiny", "txt_dim": 40, "pooled_dim": 24, "seed": 0}


def build_tiny_pipeline(  # noqa: ANN201
    seed: int = 0, vocoder: str = "hifigan", patch_size: int = 2, tempo_frame_seconds: float = 0.0
):
    """A whole pipeline from tiny random components (tiny MusicFlux, VAE, HiFi-GAN, T5 + CLAP)."""
    import dataclasses

    from fluxmusic import FluxMusicPipeline
    from fluxmusic.audio import AudioVAE, GriffinLimVocoder, HifiGanVocoder
    from fluxmusic.config import PRESETS
    from fluxmusic.modelfolder.index import PipelineSpec
    from fluxmusic.text.factory import build_conditioner

    torch.manual_seed(seed)
    config = dataclasses.replace(
        PRESETS["tiny"],
        patch_size=patch_size,
        in_channels=8 * patch_size**2,
        tempo_frame_seconds=tempo_frame_seconds,
    )
    transformer = MusicFlux(config)
    vae = AudioVAE.from_config(block_out_channels=[8, 16, 16], norm_num_groups=4, layers_per_block=1)
    voc = (
        HifiGanVocoder.from_config(
            upsample_initial_channel=64, resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3, 5]]
        )
        if vocoder == "hifigan"
        else GriffinLimVocoder(n_iter=4)
    )
    options = {k: v for k, v in TINY_TEXT_ENTRY.items() if k != "type"}
    text = build_conditioner("tiny", **options)
    spec = PipelineSpec(default_duration=1.28, max_duration=20.48, name="tiny-test")
    return FluxMusicPipeline(
        transformer,
        vae,
        voc,
        text,
        spec,
        device="cpu",
        dtype="float32",
        text_encoder_entry=dict(TINY_TEXT_ENTRY),
    )


@pytest.fixture(scope="session")
def tiny_pipeline():  # noqa: ANN201
    return build_tiny_pipeline()


@pytest.fixture(scope="session")
def tiny_pipeline_patch4():  # noqa: ANN201
    """The tiny pipeline with a transformer packing 4 x 4 latent patches (as the bundled model)."""
    return build_tiny_pipeline(seed=1, patch_size=4)


@pytest.fixture(scope="session")
def tiny_pipeline_tempo():  # noqa: ANN201
    """The tiny pipeline with a tempo input given random (non-zero) weights, as if trained."""
    pipe = build_tiny_pipeline(seed=2, tempo_frame_seconds=0.04)
    with torch.no_grad():
        for p in pipe.transformer.tempo_in.parameters():
            p.normal_(0, 0.2, generator=torch.Generator().manual_seed(0))
    return pipe


@pytest.fixture(scope="session")
def make_adapter():  # noqa: ANN201
    """``make_adapter(model, folder, targets, seed)``: save a rank-2 LoRA for a copy of ``model`` with a
    non-zero B (a freshly initialised adapter would change nothing); returns the adapter folder."""
    import copy

    from fluxmusic.model.lora import add_lora, lora_config, save_adapter

    def make(
        model: MusicFlux, folder: Path, targets: tuple[str, ...] = ("attention", "mlp"), seed: int = 5
    ) -> Path:
        model = copy.deepcopy(model)
        config = lora_config(2, 2.0, 0.0, targets)
        add_lora(model, config)
        torch.manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if ".lora_B." in name:
                    p.normal_(0.0, 0.3)
        return save_adapter(folder, config, model.state_dict())

    return make
