"""The bad-input catalogue of ``generate``, ``convert``, model folders and the Python API (issue 15).

Every case is a user mistake: it must end in one line naming the problem (exit status 2, no traceback)
before any work is done, and leave no file behind. Defects 9, 10, 12, 14 and 15 of the red-team report.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fluxmusic.config import PRESETS
from fluxmusic.model import MusicFlux


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--device", "gpu0"], "unknown device 'gpu0'"),
        (["--seed", "99999999999999999999"], "--seed must be in [0,"),
        (["--seed", "-1"], "--seed must be in [0,"),
        (["--duration", "1e-5"], "--duration must be a positive number of seconds (at least 0.01)"),
        (["--num-per-prompt", "0"], "--num-per-prompt must be >= 1"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--steps", "0"], "--steps must be >= 1"),
        (["--guidance", "inf"], "--guidance must be a finite number"),
    ],
)
def test_generate_refuses_bad_values_before_any_work(
    generate,
    one_line,
    tmp_path: Path,
    args: list[str],
    needle: str,  # noqa: ANN001
) -> None:
    status, _, err = generate("a jig", "-o", str(tmp_path / "new" / "a.wav"), *args)
    assert status == 2 and one_line(err) and needle in err, err
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("device", ["cuda", "cuda:7", "mps"])
def test_absent_devices_are_refused_by_name(generate, one_line, tmp_path: Path, device: str) -> None:  # noqa: ANN001
    if device.startswith("cuda") and torch.cuda.device_count() > int(device.partition(":")[2] or 0):
        pytest.skip("this machine has that GPU")
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    status, _, err = generate("a jig", "-o", str(tmp_path / "out" / "a.wav"), "--device", device)
    assert status == 2 and one_line(err) and f"device {device}" in err
    assert not (tmp_path / "out").exists()


def test_prompts_that_are_not_utf8(generate, one_line, tmp_path: Path) -> None:  # noqa: ANN001
    status, _, err = generate("a jig \udcff", "-o", str(tmp_path / "a.wav"))  # undecodable argv bytes
    assert status == 2 and one_line(err) and "prompt 1 is not valid UTF-8" in err
    binary = tmp_path / "prompts.txt"
    binary.write_bytes(b"a jig\n\x00\x01\x02\xff\n")
    status, _, err = generate("--prompt-file", str(binary), "-o", str(tmp_path / "b.wav"))
    assert status == 2 and one_line(err) and "not UTF-8 text" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompts.txt"]


def test_a_prompt_file_of_endless_zeros_is_refused(generate, one_line, tmp_path: Path) -> None:  # noqa: ANN001
    status, _, err = generate("--prompt-file", "/dev/zero", "-o", str(tmp_path / "a.wav"))
    assert status == 2 and one_line(err) and "over 16 MB" in err


def test_a_utf8_bom_is_not_part_of_the_first_prompt(generate, tmp_path: Path) -> None:  # noqa: ANN001
    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes("\ufeffa jig\nan air\n".encode())
    assert generate("--prompt-file", str(prompts), "-o", str(tmp_path / "out"))[0] == 0
    assert json.loads((tmp_path / "out" / "001-a-jig.json").read_text())["prompt"] == "a jig"


def _broken(model_dir: Path, tmp_path: Path, edit) -> Path:  # noqa: ANN001
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    index = json.loads((copy / "fluxmusic.json").read_text())
    (copy / "fluxmusic.json").write_text(json.dumps(edit(index)))
    return copy


@pytest.mark.parametrize(
    "edit,needle",
    [
        (lambda index: [index], "must hold a JSON object"),
        (lambda index: {**index, "transformer": 123}, "'transformer' must name a subfolder"),
        (lambda index: {**index, "default_duration": "long"}, "default_duration must be a number"),
        (lambda index: {**index, "defaults": {"steps": 0}}, "steps must be >= 1"),
        (lambda index: {**index, "defaults": {"stepz": 3}}, "unknown sampling defaults"),
        (lambda index: {**index, "vocoder": {**index["vocoder"], "n_iters": 3}}, "bad vocoder options"),
        (lambda index: {**index, "vocoder": {"type": "wavenet"}}, "unknown vocoder type 'wavenet'"),
    ],
)
def test_malformed_model_folders_are_named(
    cli,
    one_line,
    model_dir: Path,
    tmp_path: Path,
    edit,
    needle: str,  # noqa: ANN001
) -> None:
    folder = _broken(model_dir, tmp_path, edit)
    status, _, err = cli("generate", "x", "--model", str(folder), "-q", "-o", str(tmp_path / "a.wav"))
    assert status == 2 and one_line(err) and needle in err, err
    if needle not in ("must hold a JSON object", "'transformer' must name a subfolder"):
        assert "fluxmusic.json" in err or "model" in err


class _Exploit:
    def __reduce__(self):  # noqa: ANN204
        return (os.system, ("echo pwned",))


def _tiny_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return MusicFlux(PRESETS["tiny"]).state_dict()


@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda p: p.write_bytes(b""), "is empty (0 bytes): not a checkpoint"),
        (lambda p: p.write_bytes(random.Random(0).randbytes(4096)), "is not a"),
        (lambda p: p.write_bytes(random.Random(3).randbytes(4096)), "is not a"),
        (
            lambda p: p.write_bytes(pickle.dumps({"ema": _Exploit()})),
            "contains code or objects other than tensors",
        ),
        (lambda p: torch.save({1: torch.zeros(2)}, p), "keys must be parameter names"),
        (
            lambda p: torch.save({k: v.int() for k, v in _tiny_state().items()}, p),
            "is int32, not floating point",
        ),
        (
            lambda p: torch.save({k: v > 0 for k, v in _tiny_state().items()}, p),
            "is bool, not floating point",
        ),
        (lambda p: torch.save([1, 2], p), "holds a list, not a state dict"),
    ],
)
def test_convert_refuses_what_is_not_a_plain_checkpoint(
    cli,
    one_line,
    tmp_path: Path,
    make,
    needle: str,  # noqa: ANN001
) -> None:
    source = tmp_path / "in.pt"
    make(source)
    status, _, err = cli("convert", str(source), str(tmp_path / "out"))
    assert status == 2 and one_line(err) and needle in err, err
    assert "weights_only" not in err and "\x1b[" not in err  # our sentence, not torch's advice or colours
    assert not (tmp_path / "out").exists()


def test_convert_never_writes_into_a_folder_that_holds_files(cli, one_line, tmp_path: Path) -> None:  # noqa: ANN001
    torch.save({"ema": _tiny_state(), "args": argparse.Namespace(lr=1.0)}, tmp_path / "ref.pt")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    status, _, err = cli("convert", str(tmp_path / "ref.pt"), str(out))
    assert status == 2 and one_line(err) and "is not an empty folder" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_the_malicious_pickle_message_in_a_real_process(tmp_path: Path) -> None:
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"ema": _Exploit()}))
    cmd = [sys.executable, "-m", "fluxmusic", "convert", str(tmp_path / "evil.pt"), str(tmp_path / "out")]
    run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "FORCE_COLOR": "1"})
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "pwned" not in run.stdout
    assert "posix.system" in run.stderr and "weights_only" not in run.stderr and "\x1b[" not in run.stderr


@pytest.mark.parametrize(
    "kwargs,error,needle",
    [
        ({"prompt": None}, TypeError, "prompt must be a string"),
        ({"prompt": 123}, TypeError, "prompt must be a string"),
        ({"num_per_prompt": 1.5}, TypeError, "num_per_prompt must be an integer"),
        ({"seed": "7"}, TypeError, "seed must be an integer"),
        ({"seed": 1.5}, TypeError, "seed must be an integer"),
        ({"seed": 7, "generator": torch.Generator()}, ValueError, "seed or generator, not both"),
        ({"bpm": "fast"}, TypeError, "bpm must be a number"),
        ({"steps": 2.7}, TypeError, "steps must be an integer"),
        ({"steps": True}, TypeError, "steps must be an integer"),
    ],
)
def test_python_api_mistakes_name_the_argument(tiny_pipeline, kwargs: dict, error: type, needle: str) -> None:  # noqa: ANN001
    call = {"prompt": "a jig", "duration": 0.32, "steps": 2, "progress": False, **kwargs}
    with pytest.raises(error, match=needle):
        tiny_pipeline(**call)
