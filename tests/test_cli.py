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
