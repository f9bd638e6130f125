"""``fluxmusic evaluate TOOL``: help, one-line errors on bad input, and real runs on a tiny dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fluxmusic.cli import main
from fluxmusic.cli.evaluate import TOOLS


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fluxmusic evaluate: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_help_lists_the_tools(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in TOOLS)


@pytest.mark.parametrize("tool", TOOLS)
def test_tool_help(tool: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["evaluate", tool, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--data" in out and "--out" in out


def test_missing_tool_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate"]) == 2
    assert "TOOL" in capsys.readouterr().out


@pytest.mark.parametrize("tool", TOOLS)
def test_missing_data_folder(tool: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no_such_dataset"
    argv = ["evaluate", tool, "--data", str(missing)]
    if tool == "judge":
        argv += ["--out", str(tmp_path / "classifier")]
    assert main(argv) == 2
    assert "no_such_dataset" in _one_line_error(capsys)
    assert not (tmp_path / "classifier").exists()


def test_tempo_on_an_empty_split_is_one_line(
    demo_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            ["evaluate", "tempo", "--data", str(demo_data), "--limit", "0", "--out", str(tmp_path / "t.json")]
        )
        == 2
    )
    assert "no clips" in _one_line_error(capsys)
    assert not (tmp_path / "t.json").exists()


def test_tempo_report_table_and_json(
    demo_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tempo.json"
    argv = [
        "evaluate",
        "tempo",
        "--data",
        str(demo_data),
        "--split",
        "test",
        "--by",
        "family",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["group", "n", "log_corr", "oct_corr", "acc1", "acc2", "median"]
    assert [line.split()[:2] for line in table[1:]] == [
        ["all", "13"],
        ["bass", "6"],
        ["mixed", "1"],
        ["pipes", "6"],
    ]
    saved = json.loads(out.read_text())
    assert saved["all"]["count"] == 13 and set(saved["family"]) == {"bass", "mixed", "pipes"}
    assert len(saved["ids"]) == len(saved["estimated"]) == 13
    assert saved["all"]["valid"] >= 10 and saved["all"]["acc2"] > 0.5  # steady synthetic beats


def test_reconstruction_griffin_lim(
    demo_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "recon.json"
    argv = ["evaluate", "reconstruction", "--data", str(demo_data), "--clips", "3", "--clip-seconds", "1.28",
            "--griffin-lim", "2", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    name, metrics = capsys.readouterr().out.strip().split(" ", 1)
    assert name == "griffin_lim_2" and json.loads(metrics)["clips"] == 3
    saved = json.loads(out.read_text())
    assert saved["clips"] == [f"audio/test/c{i:06d}.wav" for i in (28, 29, 30)]
    assert set(saved["results"]) == {"griffin_lim_2"} and saved["results"]["griffin_lim_2"]["log_mel_l1"] > 0
