from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from fluxmusic.cli import main
from fluxmusic.config import PRESETS
from fluxmusic.model import MusicFlux


def test_convert_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    state = MusicFlux(PRESETS["tiny"]).state_dict()
    torch.save({"ema": state, "args": argparse.Namespace(lr=1.0)}, tmp_path / "ref.pt")
    assert main(["convert", str(tmp_path / "ref.pt"), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert "tiny" in capsys.readouterr().out


def test_convert_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", str(tmp_path / "missing.pt"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found" in err and "Traceback" not in err


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "convert" in capsys.readouterr().out


def test_only_user_errors_become_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A library user-error type is one line (exit 2); a plain exception is a bug and keeps its traceback."""
    import fluxmusic.checkpoints as checkpoints
    from fluxmusic.errors import InputError

    def user_mistake(*args: object, **kwargs: object) -> None:
        raise InputError("the preset 'huge' is unknown; use one of tiny, small")

    def bug(*args: object, **kwargs: object) -> None:
        raise ValueError("internal shapes disagree")

    monkeypatch.setattr(checkpoints, "convert", user_mistake)
    assert main(["convert", "a.pt", "out"]) == 2
    assert (
        capsys.readouterr().err
        == "fluxmusic convert: error: the preset 'huge' is unknown; use one of tiny, small\n"
    )
    monkeypatch.setattr(checkpoints, "convert", bug)
    with pytest.raises(ValueError, match="internal shapes disagree"):
        main(["convert", "a.pt", "out"])
