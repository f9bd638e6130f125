"""``python -m fluxmusic.evaluation``: subcommand help and one-line errors on bad input (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxmusic.evaluation.__main__ import main

SUBCOMMANDS = ("tempo", "judge", "reconstruction")


def _exit_code(argv: list[str]) -> int | str | None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


def test_top_level_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SUBCOMMANDS)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "--data" in out and "--out" in out


def test_missing_subcommand_is_a_usage_error() -> None:
    assert _exit_code([]) == 2


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_missing_data_folder(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no_such_dataset"
    argv = [command, "--data", str(missing)]
    if command == "judge":
        argv += ["--out", str(tmp_path / "classifier")]
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "no_such_dataset" in lines[0]
    assert not (tmp_path / "classifier").exists()
