"""Fixtures of the reliability suite: a tiny model folder and a runner that captures one CLI call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fluxmusic.cli import main


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline) -> Path:  # noqa: ANN001
    """The tiny random pipeline saved as a model folder."""
    return tiny_pipeline.save_pretrained(tmp_path_factory.mktemp("reliability-models") / "tiny")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``cli(*argv) -> (status, stdout, stderr)`` through ``fluxmusic.cli.main``."""

    def run(*argv: str) -> tuple[int, str, str]:
        status = main(list(argv))
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


@pytest.fixture
def generate(cli, model_dir: Path) -> Callable[..., tuple[int, str, str]]:  # noqa: ANN001
    """``generate(*argv)``: ``fluxmusic generate`` with the tiny model, 2 steps, 0.32 s, quiet."""

    def run(*argv: str) -> tuple[int, str, str]:
        return cli("generate", "--model", str(model_dir), "--steps", "2", "--duration", "0.32", "-q", *argv)

    return run


@pytest.fixture
def one_line() -> Callable[[str], bool]:
    """``one_line(stderr)``: a user mistake's report is exactly one line, with no traceback."""
    return lambda err: err.count("\n") == 1 and "Traceback" not in err and err.startswith("fluxmusic ")
