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
from fluxmusic.components import MODEL_INDEX, bundle_model_dir, load_model_dir
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
