"""The model shipped inside the package: present, intact, loadable offline, and it makes sound."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fluxmusic.checkpoints import CheckpointError
from fluxmusic.cli import main
from fluxmusic.files import sha256_file
from fluxmusic.modelfolder.index import MODEL_INDEX, weight_files
from fluxmusic.modelfolder.load import bundled_model_dir
from fluxmusic.pipeline import FluxMusicPipeline


def test_bundled_model_is_packaged_with_hashes_under_50_mb() -> None:
    root = bundled_model_dir()
    index = json.loads((root / MODEL_INDEX).read_text())
    assert index["text_encoder"]["type"] == "minilm" and index["vocoder"]["type"] == "griffin-lim"
    assert sorted(index["sha256"]) == weight_files(root)
    assert all(sha256_file(root / name) == digest for name, digest in index["sha256"].items())
    assert sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) < 50 * 2**20


@pytest.fixture(scope="module")
def bundled_pipeline() -> FluxMusicPipeline:
    return FluxMusicPipeline.from_pretrained(device="cpu")  # no name: the bundled model


def test_default_pipeline_is_the_bundled_model(bundled_pipeline: FluxMusicPipeline) -> None:
    index = json.loads((bundled_model_dir() / MODEL_INDEX).read_text())
    assert bundled_pipeline.spec.name == index["name"]
    assert bundled_pipeline.spec.default_duration == index["default_duration"]


def test_bundled_adapter_is_folded_into_its_target_linears(bundled_pipeline: FluxMusicPipeline) -> None:
    import re

    import torch
    from safetensors.torch import load_file

    from fluxmusic.model.lora import has_lora

    root = bundled_model_dir()
    assert json.loads((root / MODEL_INDEX).read_text())["adapters"] == ["adapter"]
    assert not has_lora(bundled_pipeline.transformer)  # merged on load: a plain MusicFlux
    raw = load_file(str(root / "transformer" / "model.safetensors"))
    state = bundled_pipeline.transformer.state_dict()
    changed = {k for k, v in raw.items() if not torch.equal(state[k], v.float())}
    pattern = json.loads((root / "adapter" / "adapter_config.json").read_text())["target_modules"]
    targets = {
        f"{name}.weight"
        for name, _ in bundled_pipeline.transformer.named_modules()
        if re.fullmatch(pattern, name)
    }
    assert changed == targets and len(targets) == 6 * 4 + 4 * 2  # every LoRA linear moved, nothing else


def test_bundled_model_generates_a_short_clip(bundled_pipeline: FluxMusicPipeline) -> None:
    out = bundled_pipeline(
        ["a fast fiddle reel on violin", "a slow organ chorale"], duration=1.28, steps=4, seed=0
    )
    assert out.waveforms.shape == (2, round(1.28 * 16000))
    assert out.waveforms.isfinite().all() and (out.waveforms.abs().amax(dim=1) > 1e-3).all()
    assert not (out.waveforms[0] == out.waveforms[1]).all()  # the prompt matters


def test_bundled_model_plays_the_beats_it_is_given(bundled_pipeline: FluxMusicPipeline) -> None:
    import numpy as np

    from fluxmusic.evaluation.tempo import beat_alignment

    assert bundled_pipeline.transformer.config.tempo_frame_seconds > 0  # the tempo input is shipped
    read = bundled_pipeline(["a jig on fiddle, 132 bpm"], duration=1.28, steps=2, progress=False)
    assert read.bpm == [132.0]  # read from the prompt
    # the same words and noise, only the tempo input differs: each clip's onsets should fall on its own
    # beat grid more than on the other tempi's
    tempi = (60.0, 90.0, 150.0)
    own, other = [], []
    for prompt in ("a piano piece", "a fiddle reel"):
        for bpm in tempi:
            clip = bundled_pipeline(prompt, bpm=bpm, steps=8, seed=3, progress=False).waveforms[0]
            own.append(beat_alignment(clip, bpm))
            other += [beat_alignment(clip, b) for b in tempi if b != bpm]
    assert np.mean(own) > np.mean(other) + 0.05, (own, other)


def test_bundled_model_with_a_wrong_hash_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = Path(shutil.copytree(bundled_model_dir(), tmp_path / "model"))
    index = json.loads((copy / MODEL_INDEX).read_text())
    index["sha256"]["transformer/model.safetensors"] = "f" * 64
    (copy / MODEL_INDEX).write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="sha256"):
        FluxMusicPipeline.from_pretrained(copy, device="cpu")
    assert main(["generate", "a jig", "--model", str(copy), "-q", "-o", str(tmp_path / "a.wav")]) == 2
    assert "expected ffffffffffffffff" in capsys.readouterr().err
    assert not (tmp_path / "a.wav").exists()


def test_cli_default_command_writes_music_offline(tmp_path: Path) -> None:
    """The README's first command, as a user runs it: no --model, default length and steps, no network."""
    import os
    import subprocess
    import sys

    import soundfile as sf

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fluxmusic",
            "generate",
            "a fast fiddle reel on violin",
            "-o",
            "reel.wav",
            "-q",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    audio, rate = sf.read(tmp_path / "reel.wav")
    index = json.loads((bundled_model_dir() / MODEL_INDEX).read_text())
    assert rate == 16000 and audio.shape == (round(index["default_duration"] * rate),)
    assert float((audio**2).mean() ** 0.5) > 0.01  # audible, not silence
