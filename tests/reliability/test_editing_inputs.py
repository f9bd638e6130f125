"""``fluxmusic generate`` editing flags: bad input is one line, exit 2, nothing written; good input
records the operation, its input (file name, sha256) and parameters in every sidecar."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fluxmusic.audio import read_audio
from fluxmusic.files import sha256_file
from fluxmusic.pipeline.edit_inputs import CROSSFADE_SECONDS

RATE = 16000
FADE = round(CROSSFADE_SECONDS * RATE)


def tone(seconds: float, rate: int = RATE, channels: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    mono = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.sin(2 * np.pi * 1234 * t)
    if channels == 1:
        return mono.astype(np.float32)
    return np.stack([mono * (1 + c / 4) for c in range(channels)], axis=1)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Input files: a good clip, a stereo 44.1 kHz clip, silence, garbage, an empty wav, a 50 ms clip."""
    root = tmp_path_factory.mktemp("edit-inputs")
    files = {
        "clip": (tone(1.0), RATE),
        "stereo": (tone(1.0, 44100, channels=2), 44100),
        "silent": (np.zeros(RATE, dtype=np.float32), RATE),
        "empty": (np.zeros(0, dtype=np.float32), RATE),
        "short": (tone(0.05), RATE),
    }
    out = {}
    for name, (data, rate) in files.items():
        sf.write(root / f"{name}.wav", data, rate)
        out[name] = root / f"{name}.wav"
    out["garbage"] = root / "garbage.wav"
    out["garbage"].write_bytes(b"RIFF\x00\x00not really a wave file" * 20)
    out["missing"] = root / "missing.wav"
    return out


@pytest.fixture
def edit(cli, model_dir: Path) -> Callable[..., tuple[int, str, str]]:  # noqa: ANN001
    """``fluxmusic generate`` with the tiny model, 2 steps, quiet, and no --duration of its own."""
    return lambda *argv: cli("generate", "--model", str(model_dir), "--steps", "2", "-q", *argv)


BAD: list[tuple[str, list[str], str]] = [
    ("unreadable", ["--init-audio", "{garbage}"], "cannot decode"),
    ("missing", ["--inpaint", "{missing}", "--region", "0:1"], "not found"),
    ("empty-file", ["--init-audio", "{empty}"], "no audio samples"),
    ("silent", ["--init-audio", "{silent}"], "silent"),
    ("silent-inpaint", ["--inpaint", "{silent}", "--region", "0.2:0.4"], "silent"),
    ("too-short", ["--continue", "{short}", "--duration", "2"], "at least 0.1 s"),
    ("region-outside", ["--inpaint", "{clip}", "--region", "0.5:1.5"], "--region 0.5:1.5 is outside"),
    ("region-negative", ["--inpaint", "{clip}", "--region=-0.2:0.3"], "is outside the audio"),
    ("region-empty", ["--inpaint", "{clip}", "--region", "0.4:0.4"], "--region 0.4:0.4 is empty"),
    ("region-reversed", ["--inpaint", "{clip}", "--region", "0.6:0.2"], "is empty"),
    ("regions-overlap", ["--inpaint", "{clip}", "--region", "0.1:0.5", "--region", "0.4:0.8"], "overlap"),
    ("region-malformed", ["--inpaint", "{clip}", "--region", "half"], "is not START:END"),
    ("region-nan", ["--inpaint", "{clip}", "--region", "nan:1"], "is not START:END"),
    ("strength-zero", ["--init-audio", "{clip}", "--strength", "0"], "--strength must be in (0, 1]"),
    ("strength-above-one", ["--init-audio", "{clip}", "--strength", "1.5"], "--strength must be in (0, 1]"),
    ("strength-text", ["--init-audio", "{clip}", "--strength", "lots"], "--strength must be a number"),
    ("continue-shorter", ["--continue", "{clip}", "--duration", "0.5"], "--duration must be longer"),
    ("continue-equal", ["--continue", "{clip}", "--duration", "1"], "--duration must be longer"),
    ("continue-too-long", ["--continue", "{clip}", "--duration", "900"], "--duration must be at most 600"),
    ("long-too-long", ["--duration", "600.5"], "--duration must be at most 600"),
    ("overlap-window", ["--duration", "3", "--overlap", "1.28"], "--overlap must be in [0, 1.28)"),
    ("overlap-text", ["--duration", "3", "--overlap", "some"], "--overlap must be a number"),
    ("two-edits", ["--init-audio", "{clip}", "--inpaint", "{clip}"], "do not combine"),
    ("strength-alone", ["--strength", "0.5"], "--strength applies to --init-audio only"),
    ("region-alone", ["--region", "0:1"], "--region applies to --inpaint only"),
    ("inpaint-no-region", ["--inpaint", "{clip}"], "--inpaint needs at least one --region"),
    ("continue-no-duration", ["--continue", "{clip}"], "--continue needs --duration"),
    ("duration-variation", ["--init-audio", "{clip}", "--duration", "2"], "--duration does not apply"),
    ("overlap-inpaint", ["--inpaint", "{clip}", "--region", "0:0.5", "--overlap", "1"], "--overlap applies"),
]


@pytest.mark.parametrize("args,needle", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_edit_input_is_one_line_exit_2_and_writes_nothing(
    edit, one_line, inputs: dict[str, Path], tmp_path: Path, args: list[str], needle: str
) -> None:
    out = tmp_path / "out" / "clip.wav"
    argv = [a.format(**{k: str(v) for k, v in inputs.items()}) for a in args]
    status, stdout, err = edit("a jig", *argv, "-o", str(out))
    assert status == 2 and one_line(err), err
    assert needle in err, err
    assert not (tmp_path / "out").exists() and stdout == ""


def _sidecar(path: Path) -> dict:
    return json.loads(path.with_suffix(".json").read_text())


def test_variation_through_the_cli_records_its_input(edit, inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "var.wav"
    assert edit("a jig", "--init-audio", str(inputs["stereo"]), "--strength", "0.4", "-o", str(out))[0] == 0
    audio, rate = sf.read(out)
    assert rate == RATE and audio.shape == (RATE,)  # 1 s of 44.1 kHz stereo -> 1 s mono at 16 kHz
    side = _sidecar(out)
    assert side["operation"] == "variation" and side["edit"] == {"strength": 0.4}
    assert side["input"]["file"] == "stereo.wav" and side["input"]["sha256"] == sha256_file(inputs["stereo"])
    assert side["input"]["channels"] == 2 and side["input"]["sample_rate"] == 44100


def test_inpaint_through_the_cli_keeps_the_input_samples(
    edit, inputs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "fixed.wav"
    args = ("--inpaint", str(inputs["clip"]), "--region", "0.3:0.5", "--region", "0.7:0.8", "--seed", "2")
    assert edit("a jig", *args, "-o", str(out))[0] == 0
    written, original = read_audio(out, RATE).numpy(), read_audio(inputs["clip"], RATE).numpy()
    assert written.shape == original.shape
    keep = np.ones(RATE, dtype=bool)
    for start, end in ((4800, 8000), (11200, 12800)):
        keep[start - FADE : end + FADE] = False
    assert np.array_equal(written[keep], original[keep])  # PCM_16 in, PCM_16 out: the same integers
    side = _sidecar(out)
    assert side["operation"] == "inpaint" and side["edit"]["regions"] == [[0.3, 0.5], [0.7, 0.8]]
    assert side["input"]["sha256"] == sha256_file(inputs["clip"]) and side["seed"] == 2


def test_continue_and_long_form_through_the_cli(edit, inputs: dict[str, Path], tmp_path: Path) -> None:
    cont, long = tmp_path / "more.wav", tmp_path / "long.wav"
    assert edit("a jig", "--continue", str(inputs["clip"]), "--duration", "2.5", "-o", str(cont))[0] == 0
    assert edit("a reel", "--duration", "3", "--overlap", "0.4", "-o", str(long))[0] == 0
    more, original = read_audio(cont, RATE).numpy(), read_audio(inputs["clip"], RATE).numpy()
    assert more.shape == (round(2.5 * RATE),) and np.array_equal(more[: RATE - FADE], original[: RATE - FADE])
    side = _sidecar(cont)
    assert side["operation"] == "continuation" and side["duration"] == 2.5
    assert side["input"]["file"] == "clip.wav"
    assert sf.read(long)[0].shape == (3 * RATE,)
    side = _sidecar(long)
    assert side["operation"] == "long-form" and side["edit"] == {
        "overlap": 0.4,
        "windows": 3,
        "crossfade": CROSSFADE_SECONDS,
        "mask_edge_frames": 4,
    }


def test_plain_generation_records_its_operation(generate, tmp_path: Path) -> None:
    assert generate("a jig", "-o", str(tmp_path / "a.wav"))[0] == 0
    assert _sidecar(tmp_path / "a.wav")["operation"] == "text-to-music"
