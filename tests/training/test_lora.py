"""Fine-tuning: full fine-tuning from a reference-format checkpoint, and LoRA adapters the pipeline loads."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import tiny_config, write_toml

from fluxmusic.config import PRESETS
from fluxmusic.model import MusicFlux
from fluxmusic.model.lora import add_lora, lora_config, remove_lora
from fluxmusic.training.config import load_config
from fluxmusic.training.loop import train


@pytest.fixture(scope="module")
def reference_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A tiny model saved the way the reference trainer saves (pickled dict with "ema", "model", "args")."""
    torch.manual_seed(1234)
    state = {k: v.clone() for k, v in MusicFlux(PRESETS["tiny"]).state_dict().items()}
    path = tmp_path_factory.mktemp("reference") / "musicflow_tiny.pt"
    noisy = {k: v + 0.01 for k, v in state.items()}
    torch.save({"ema": state, "model": noisy, "opt": {}, "args": argparse.Namespace(lr=3e-5)}, path)
    return path, state


def test_full_finetune_from_reference_checkpoint(reference_checkpoint, tones: Path, tmp_path: Path) -> None:  # noqa: ANN001
    path, state = reference_checkpoint
    config = tiny_config(
        tmp_path / "run", tones, run={"max_steps": 2}, optim={"lr": 1e-6}, model={"init_from": str(path)}
    )
    result = train(load_config(write_toml(config, tmp_path / "c.toml")))
    tuned = result.model.state_dict()
    assert all(torch.allclose(tuned[k], state[k], atol=1e-4) for k in state)  # started from the "ema" weights
    assert any(not torch.equal(tuned[k], state[k]) for k in state)  # and trained
    wrong = dict(config, model={"preset": "small", "init_from": str(path)})
    wrong["run"] = dict(config["run"], dir=str(tmp_path / "run2"))
    with pytest.raises(ValueError, match="holds a different transformer"):
        train(load_config(write_toml(wrong, tmp_path / "w.toml")))


def test_init_from_bf16_weights_trains_fp32_master_weights(tones: Path, tmp_path: Path) -> None:
    from fluxmusic.checkpoints import save_musicflux
    from fluxmusic.training.build import build_model

    torch.manual_seed(3)
    folder = save_musicflux(MusicFlux(PRESETS["tiny"]).to(torch.bfloat16), tmp_path / "bf16")
    config = tiny_config(tmp_path / "run", tones, model={"init_from": str(folder)})
    model = build_model(load_config(write_toml(config, tmp_path / "c.toml")))
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # bf16 master weights would lose updates


def test_init_from_a_model_folder_folds_in_its_adapters(
    tiny_pipeline, make_adapter, tones: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:  # noqa: ANN001
    from fluxmusic import FluxMusicPipeline
    from fluxmusic.modelfolder.bundle import bundle_model_dir
    from fluxmusic.training.build import build_model

    source = tiny_pipeline.save_pretrained(tmp_path / "source")
    adapter = make_adapter(tiny_pipeline.transformer, tmp_path / "adapter", ("attention",), seed=2)
    folder = bundle_model_dir(source, tmp_path / "shipped", dtype=torch.float32, adapter=adapter)
    sampled = FluxMusicPipeline.from_pretrained(folder, device="cpu").transformer.state_dict()

    def start(init_from: Path) -> dict[str, torch.Tensor]:
        run = tiny_config(tmp_path / init_from.name, tones, model={"init_from": str(init_from)})
        return build_model(load_config(write_toml(run, tmp_path / f"{init_from.name}.toml"))).state_dict()

    assert all(torch.equal(v, sampled[k]) for k, v in start(folder).items())  # the model the folder samples
    with caplog.at_level("WARNING", logger="fluxmusic.training.build"):
        bare = start(folder / "transformer")
    assert "also lists adapters" in caplog.text
    assert any(not torch.equal(v, sampled[k]) for k, v in bare.items())  # the base alone, as warned


def test_lora_finetune_and_pipeline_load_unload(
    reference_checkpoint, tone_shards: Path, tmp_path: Path
) -> None:  # noqa: ANN001
    from fluxmusic import FluxMusicPipeline
    from fluxmusic.audio import AudioVAE, GriffinLimVocoder
    from fluxmusic.modelfolder.index import PipelineSpec
    from fluxmusic.text.factory import build_conditioner

    path, state = reference_checkpoint
    config = tiny_config(
        tmp_path / "run",
        None,
        run={"max_steps": 4, "export": True},
        model={"init_from": str(path)},
        data={"manifest": "", "shards": str(tone_shards)},
        optim={"lr": 1e-2},
        lora={"enabled": True, "rank": 4, "alpha": 8.0},
    )
    result = train(load_config(write_toml(config, tmp_path / "c.toml")))
    trained = result.model.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in state.items() if k in trained)  # base frozen
    ckpt = result.checkpoint
    assert {"adapter_config.json", "adapter_model.safetensors", "adapter_ema.safetensors"} <= {
        p.name for p in ckpt.iterdir()
    }
    adapter = load_file(str(result.export / "adapter_model.safetensors"))
    assert adapter.keys() == load_file(str(ckpt / "adapter_ema.safetensors")).keys()
    assert all(".lora_A." in k or ".lora_B." in k for k in adapter)

    torch.manual_seed(0)
    base = MusicFlux(PRESETS["tiny"])
    base.load_state_dict(state)
    vae = AudioVAE.from_config(block_out_channels=[8, 16, 16], norm_num_groups=4, layers_per_block=1)
    text = build_conditioner("tiny", txt_dim=40, pooled_dim=24, seed=0)
    pipe = FluxMusicPipeline(
        base, vae, GriffinLimVocoder(n_iter=2), text, PipelineSpec(default_duration=0.64)
    )

    def generate() -> torch.Tensor:
        return pipe("a tone number 1", steps=3, seed=7, progress=False).mels

    before = generate()
    pipe.load_lora(result.export)
    with_adapter = generate()
    assert not torch.equal(with_adapter, before)
    with pytest.raises(ValueError, match="already loaded"):
        pipe.load_lora(result.export)
    pipe.unload_lora()
    assert torch.equal(generate(), before)  # unloaded = the base model, exactly
    assert sorted(pipe.transformer.state_dict()) == sorted(state)
    pipe.load_lora(ckpt, weight_name="adapter_ema.safetensors")
    assert torch.equal(generate(), with_adapter)  # the export is the EMA adapter
    pipe.unload_lora()


def test_lora_adapter_for_small_rank16_is_under_5_percent(tmp_path: Path) -> None:
    with torch.device("meta"):
        small = MusicFlux(PRESETS["small"])
    base = sum(p.numel() for p in small.parameters())
    add_lora(small, lora_config(16, 16.0, 0.0, ("attention", "mlp")))
    adapter = sum(p.numel() for n, p in small.named_parameters() if ".lora_" in n)
    assert all(p.requires_grad == (".lora_" in n) for n, p in small.named_parameters())
    assert base == 142_333_984 and adapter == 3_932_160
    assert adapter / base < 0.05  # 2.8 % (fp32 file: 15.7 MB vs 569 MB)
    remove_lora(small)
    assert sum(p.numel() for p in small.parameters()) == base
