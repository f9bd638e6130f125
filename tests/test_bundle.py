"""Freezing a model folder for shipping (``fluxmusic bundle``) and the hash check on loading it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from fluxmusic.checkpoints import CheckpointError
from fluxmusic.cli import main
from fluxmusic.model.lora import ship_adapter
from fluxmusic.modelfolder.bundle import bundle_model_dir
from fluxmusic.modelfolder.index import MODEL_INDEX
from fluxmusic.modelfolder.load import load_model_dir
from fluxmusic.pipeline import FluxMusicPipeline


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline) -> Path:  # noqa: ANN001
    return tiny_pipeline.save_pretrained(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture()
def bundled(source_dir: Path, tmp_path: Path) -> Path:
    return bundle_model_dir(source_dir, tmp_path / "bundled", defaults={"steps": 3, "guidance": 2.5})


def test_bundle_casts_weights_records_hashes_and_defaults(bundled: Path) -> None:
    index = json.loads((bundled / MODEL_INDEX).read_text())
    assert sorted(index["sha256"]) == [
        "transformer/model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
        "vocoder/model.safetensors",
    ]
    assert all(len(digest) == 64 for digest in index["sha256"].values())
    assert index["defaults"]["steps"] == 3 and index["defaults"]["guidance"] == 2.5
    with safe_open(bundled / "transformer" / "model.safetensors", "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.bfloat16"}


def test_bundled_folder_loads_and_generates(bundled: Path) -> None:
    pipe = FluxMusicPipeline.from_pretrained(bundled, device="cpu", dtype="float32")
    out = pipe("a calm piano piece", duration=0.64, seed=1)
    assert out.waveforms.shape == (1, round(0.64 * 16000)) and out.waveforms.abs().max() > 0


def test_bundled_guidance_interval_is_the_default(source_dir: Path, tmp_path: Path) -> None:
    folder = bundle_model_dir(
        source_dir, tmp_path / "b", defaults={"steps": 3, "guidance_interval": (0.5, 1.0)}
    )
    pipe = FluxMusicPipeline.from_pretrained(folder, device="cpu", dtype="float32")
    assert pipe.spec.defaults["guidance_interval"] == [0.5, 1.0]
    kwargs = {"duration": 0.64, "seed": 1, "guidance": 4.0, "progress": False}
    default = pipe("a calm piano piece", **kwargs).waveforms
    explicit = pipe("a calm piano piece", guidance_interval=(0.5, 1.0), **kwargs).waveforms
    everywhere = pipe("a calm piano piece", guidance_interval=(0.0, 1.0), **kwargs).waveforms
    assert torch.equal(default, explicit) and not torch.equal(default, everywhere)


def test_bundled_guidance_eta_and_shift_are_the_defaults(source_dir: Path, tmp_path: Path) -> None:
    folder = bundle_model_dir(
        source_dir, tmp_path / "b", defaults={"steps": 3, "guidance_eta": 0.0, "shift": 2.0}
    )
    pipe = FluxMusicPipeline.from_pretrained(folder, device="cpu", dtype="float32")
    assert pipe.spec.defaults["guidance_eta"] == 0.0 and pipe.spec.defaults["shift"] == 2.0
    kwargs = {"duration": 0.64, "seed": 1, "guidance": 4.0, "progress": False}
    default = pipe("a calm piano piece", **kwargs).waveforms
    explicit = pipe("a calm piano piece", guidance_eta=0.0, shift=2.0, **kwargs).waveforms
    plain = pipe("a calm piano piece", guidance_eta=1.0, shift=2.0, **kwargs).waveforms
    uniform = pipe("a calm piano piece", guidance_eta=0.0, shift=1.0, **kwargs).waveforms
    assert torch.equal(default, explicit)
    assert not torch.equal(default, plain) and not torch.equal(default, uniform)
    with pytest.raises(ValueError, match="guidance eta"):
        bundle_model_dir(source_dir, tmp_path / "c", defaults={"guidance_eta": -1})
    with pytest.raises(ValueError, match="shift must be a positive"):
        pipe("a calm piano piece", shift=0.0, **kwargs)


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline, make_adapter) -> Path:  # noqa: ANN001
    return make_adapter(tiny_pipeline.transformer, tmp_path_factory.mktemp("adapter") / "lora")


def test_bundled_adapter_is_folded_in_on_load(source_dir: Path, adapter_dir: Path, tmp_path: Path) -> None:
    from fluxmusic.model.lora import has_lora

    folder = bundle_model_dir(source_dir, tmp_path / "b", dtype=torch.float32, adapter=adapter_dir)
    index = json.loads((folder / MODEL_INDEX).read_text())
    assert index["adapters"] == ["adapter"] and "adapter/adapter_model.safetensors" in index["sha256"]
    shipped = FluxMusicPipeline.from_pretrained(folder, device="cpu", dtype="float32")
    assert not has_lora(shipped.transformer)  # merged: a plain MusicFlux, the base's speed
    base = FluxMusicPipeline.from_pretrained(source_dir, device="cpu", dtype="float32")
    kwargs = {"duration": 0.64, "seed": 1, "steps": 3, "progress": False}
    before = base("a calm piano piece", **kwargs).mels
    base.load_lora(adapter_dir)
    with_adapter = base("a calm piano piece", **kwargs).mels
    merged = shipped("a calm piano piece", **kwargs).mels
    assert (with_adapter - before).abs().max() > 1e-2
    torch.testing.assert_close(merged, with_adapter, atol=1e-4, rtol=1e-4)
    again = bundle_model_dir(folder, tmp_path / "again", dtype=torch.float32)  # adapters travel along
    assert json.loads((again / MODEL_INDEX).read_text())["adapters"] == ["adapter"]


def test_bundled_adapter_is_stored_in_dtype_and_checked(
    source_dir: Path, adapter_dir: Path, tmp_path: Path
) -> None:
    folder = bundle_model_dir(source_dir, tmp_path / "b", adapter=adapter_dir)
    weights = folder / "adapter" / "adapter_model.safetensors"
    with safe_open(str(weights), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="adapter_model.safetensors has sha256"):
        load_model_dir(folder, device="cpu")


def test_bad_adapters_are_refused(source_dir: Path, adapter_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a LoRA adapter folder"):
        bundle_model_dir(source_dir, tmp_path / "a", adapter=tmp_path)
    wrong = tmp_path / "wrong"
    shutil.copytree(adapter_dir, wrong)
    config = json.loads((wrong / "adapter_config.json").read_text())
    (wrong / "adapter_config.json").write_text(json.dumps({**config, "r": 3}))
    with pytest.raises(ValueError, match="does not fit"):
        bundle_model_dir(source_dir, tmp_path / "b", adapter=wrong)
    odd = tmp_path / "odd"
    shutil.copytree(adapter_dir, odd)
    (odd / "adapter_config.json").write_text(json.dumps({**config, "layers_to_transform": [0]}))
    with pytest.raises(ValueError, match=r"sets \['layers_to_transform'\]; only plain LoRA"):
        ship_adapter(odd, tmp_path / "d", torch.bfloat16)  # the shipped config would lose it, so refused
    folder = bundle_model_dir(source_dir, tmp_path / "c", adapter=adapter_dir)
    shipped = json.loads((folder / "adapter" / "adapter_config.json").read_text())
    assert shipped["r"] == 2 and "base_model_name_or_path" not in shipped and "peft_version" not in shipped
    index = json.loads((folder / MODEL_INDEX).read_text())
    (folder / MODEL_INDEX).write_text(json.dumps({**index, "adapters": "adapter"}))
    with pytest.raises(CheckpointError, match="'adapters' must be a list"):
        load_model_dir(folder, device="cpu")


def test_modified_weights_are_refused(
    bundled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = bundled / "transformer" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_model_dir(bundled, device="cpu")
    code = main(["generate", "x", "--model", str(bundled), "-q", "-o", str(tmp_path / "x.wav")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "model.safetensors has sha256" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.wav").exists()


def test_wrong_recorded_hash_and_unlisted_files_are_refused(bundled: Path) -> None:
    index_path = bundled / MODEL_INDEX
    index = json.loads(index_path.read_text())
    index["sha256"]["vae/diffusion_pytorch_model.safetensors"] = "0" * 64
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="diffusion_pytorch_model.safetensors has sha256"):
        load_model_dir(bundled, device="cpu")
    del index["sha256"]["vae/diffusion_pytorch_model.safetensors"]
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="no recorded sha256"):
        load_model_dir(bundled, device="cpu")


def test_hashes_required_only_when_asked(source_dir: Path) -> None:
    load_model_dir(source_dir, device="cpu")  # an ordinary model folder records no hashes
    with pytest.raises(CheckpointError, match="records no sha256"):
        load_model_dir(source_dir, device="cpu", require_hashes=True)


def test_cli_bundle(source_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "frozen"
    cmd = ["bundle", str(source_dir), str(out), "--sampler", "heun", "--name", "mine"]
    assert main([*cmd, "--guidance-interval", "0.4", "1"]) == 0
    index = json.loads((out / MODEL_INDEX).read_text())
    assert index["name"] == "mine" and index["defaults"]["sampler"] == "heun"
    assert index["defaults"]["guidance_interval"] == [0.4, 1.0]
    assert main(["bundle", str(source_dir), str(out)]) == 2  # refuses to overwrite
    assert "not empty" in capsys.readouterr().err
    shutil.rmtree(out)
    assert main([*cmd, "--guidance-interval", "0.9", "0.1"]) == 2
    assert "guidance interval must satisfy" in capsys.readouterr().err
    assert main([*cmd, "--guidance-eta", "-1"]) == 2 and "guidance eta" in capsys.readouterr().err
    assert main([*cmd, "--shift", "0"]) == 2 and "--shift" in capsys.readouterr().err
    assert main([*cmd, "--guidance-eta", "0", "--shift", "3"]) == 0
    defaults = json.loads((out / MODEL_INDEX).read_text())["defaults"]
    assert defaults["guidance_eta"] == 0.0 and defaults["shift"] == 3.0
    shutil.rmtree(out)
    assert main(["bundle", str(tmp_path / "nothing"), str(out)]) == 2
    assert "not a fluxmusic model folder" in capsys.readouterr().err
    assert main([*cmd, "--adapter", str(tmp_path / "nothing")]) == 2
    assert "not a LoRA adapter folder" in capsys.readouterr().err
