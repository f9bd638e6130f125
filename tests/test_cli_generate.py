from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from fluxmusic.cli import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline) -> Path:  # noqa: ANN001
    return tiny_pipeline.save_pretrained(tmp_path_factory.mktemp("models") / "tiny")


def _run(model_dir: Path, *args: str) -> int:
    return main(["generate", "--model", str(model_dir), "--steps", "2", "--duration", "0.64", "-q", *args])


def test_generate_file_with_sidecar_and_spectrogram(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "song.wav"
    assert _run(model_dir, "a calm piano piece", "-o", str(out), "--seed", "5", "--spectrogram") == 0
    audio, rate = sf.read(out)
    assert rate == 16000 and audio.shape == (round(0.64 * 16000),)
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["prompt"] == "a calm piano piece" and sidecar["seed"] == 5
    assert sidecar["steps"] == 2 and sidecar["sampler"] == "euler" and sidecar["model"] == str(model_dir)
    assert {"guidance", "duration", "fluxmusic_version", "negative_prompt"} <= set(sidecar)
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_guidance_interval_is_recorded_and_reproduces(model_dir: Path, tmp_path: Path) -> None:
    args = ("a jig", "--seed", "2", "--guidance", "4", "--guidance-interval", "0.7", "1")
    assert _run(model_dir, *args, "-o", str(tmp_path / "a.wav")) == 0
    assert json.loads((tmp_path / "a.json").read_text())["guidance_interval"] == [0.7, 1.0]
    assert _run(model_dir, *args, "-o", str(tmp_path / "b.wav")) == 0
    assert _run(model_dir, *args[:-3], "-o", str(tmp_path / "c.wav")) == 0
    a, b, c = (sf.read(tmp_path / f"{n}.wav")[0] for n in "abc")
    assert (a == b).all() and not (a == c).all()


def test_guidance_eta_and_shift_are_recorded(model_dir: Path, tmp_path: Path) -> None:
    base = ("a jig", "--seed", "2", "--guidance", "4")
    assert _run(model_dir, *base, "-o", str(tmp_path / "plain.wav")) == 0
    plain = json.loads((tmp_path / "plain.json").read_text())
    assert plain["guidance_eta"] == 1.0 and plain["shift"] == 1.0  # the tiny model's defaults
    assert _run(model_dir, *base, "--guidance-eta", "0", "--shift", "2", "-o", str(tmp_path / "p.wav")) == 0
    side = json.loads((tmp_path / "p.json").read_text())
    assert side["guidance_eta"] == 0.0 and side["shift"] == 2.0
    assert not (sf.read(tmp_path / "plain.wav")[0] == sf.read(tmp_path / "p.wav")[0]).all()


def test_sidecar_reproduces_the_clip(model_dir: Path, tmp_path: Path) -> None:
    assert _run(model_dir, "a jig", "-o", str(tmp_path / "a.wav"), "--seed", "9") == 0
    side = json.loads((tmp_path / "a.json").read_text())
    assert _run(model_dir, side["prompt"], "-o", str(tmp_path / "b.wav"), "--seed", str(side["seed"])) == 0
    assert (sf.read(tmp_path / "a.wav")[0] == sf.read(tmp_path / "b.wav")[0]).all()


def test_sidecar_is_the_pipelines_resolved_settings(model_dir: Path, tmp_path: Path, tiny_pipeline) -> None:  # noqa: ANN001
    from fluxmusic.sampling import SampleSettings

    assert _run(model_dir, "a jig", "a reel", "-o", str(tmp_path), "--seed", "4", "--guidance", "3") == 0
    side = json.loads((tmp_path / "002-a-reel.json").read_text())
    settings = SampleSettings.from_dict(side)
    assert (
        settings.seed == 5 and settings.steps == 2 and settings.guidance == 3.0 and settings.duration == 0.64
    )
    out = tiny_pipeline.generate(side["prompt"], settings, progress=False)
    assert set(out.clip_settings(0)) <= set(side)  # every resolved setting is recorded
    audio = sf.read(tmp_path / "002-a-reel.wav", dtype="float32")[0]
    assert abs(audio - out.waveforms[0].numpy()).max() < 1e-3  # the sidecar alone regenerates the clip


def test_help_lists_the_samplers_from_the_flow_package(capsys: pytest.CaptureFixture[str]) -> None:
    from fluxmusic.flow import SAMPLERS

    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    assert "{" + ",".join(SAMPLERS) + "}" in capsys.readouterr().out


def test_prompt_file_into_folder_flac(model_dir: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a fast fiddle reel\n\n# a comment\na slow organ chorale\n")
    out = tmp_path / "outs"
    assert (
        _run(
            model_dir,
            "--prompt-file",
            str(prompts),
            "-o",
            str(out),
            "--format",
            "flac",
            "--num-per-prompt",
            "2",
            "--sampler",
            "heun",
        )
        == 0
    )
    files = sorted(p.name for p in out.glob("*.flac"))
    assert files == [
        "001-a-fast-fiddle-reel.flac",
        "002-a-fast-fiddle-reel.flac",
        "003-a-slow-organ-chorale.flac",
        "004-a-slow-organ-chorale.flac",
    ]


@pytest.mark.parametrize(
    "args,needle",
    [
        ([], "give a prompt"),
        (["x", "--duration", "0"], "--duration"),
        (["x", "--duration", "-3"], "--duration"),
        (["x", "--duration", "601"], "--duration must be at most 600"),  # longer than one window: long form
        (["x", "--steps", "0"], "--steps"),
        (["x", "--guidance", "nan"], "--guidance"),
        (["x", "--guidance-interval", "0.6", "0.2"], "guidance interval must satisfy"),
        (["x", "--guidance-eta", "-0.5"], "guidance eta must be"),
        (["x", "--shift", "0"], "--shift must be a positive"),
        (["x", "--model", "enormous"], "unknown model"),
        (["x", "--prompt-file", "/nonexistent/prompts.txt"], "not found"),
        (["x", "--bpm", "1000"], "--bpm must be between"),
        (["x", "--bpm", "120"], "no tempo input"),  # the tiny test model has none
    ],
)
def test_bad_input_exits_with_one_line(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    base = ["generate", "-q", "-o", str(tmp_path / "o.wav")]
    if "--model" not in args:
        base += ["--model", str(model_dir)]
    assert main(base + args) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_empty_prompt_file(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.txt").write_text("\n  \n")
    assert _run(model_dir, "--prompt-file", str(tmp_path / "empty.txt")) == 2
    assert "holds no prompts" in capsys.readouterr().err


def test_output_under_a_file_is_refused(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "afile").write_text("x")
    assert _run(model_dir, "x", "-o", str(tmp_path / "afile" / "a.wav")) == 2
    assert "cannot write" in capsys.readouterr().err


def test_unknown_sampler_and_offline_weights_in_a_real_process(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    cmd = [sys.executable, "-m", "fluxmusic", "generate", "x", "-o", str(tmp_path / "a.wav")]
    bad_sampler = subprocess.run(cmd + ["--sampler", "ddim"], capture_output=True, text=True, env=env)
    assert bad_sampler.returncode == 2 and "invalid choice" in bad_sampler.stderr
    offline = subprocess.run(cmd + ["--model", "small"], capture_output=True, text=True, env=env)
    assert offline.returncode == 2
    assert "Traceback" not in offline.stderr and offline.stderr.count("\n") == 1
    assert "musicflow_s.pt" in offline.stderr and "audioldm2" in offline.stderr
