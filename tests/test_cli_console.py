"""The command line's shared parser pieces: subcommands that set their handler, ``--set`` and ``-q``."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import pytest

from fluxmusic.cli.console import add_overrides, add_quiet, command


def _handler(args: argparse.Namespace) -> int:
    return 0


def _subparsers() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(prog="tool")
    return parser, parser.add_subparsers(dest="command")


def test_command_sets_the_handler_and_help() -> None:
    parser, sub = _subparsers()
    p = command(sub, "go", _handler, help="go somewhere", description="Go somewhere, quickly.")
    add_overrides(p)
    add_quiet(p)
    args = parser.parse_args(["go", "--set", "a.b=1", "--set", "c.d=2", "-q"])
    assert args.handler is _handler and args.set == ["a.b=1", "c.d=2"] and args.quiet
    assert parser.parse_args(["go"]).set is None and not parser.parse_args(["go"]).quiet
    assert "go somewhere" in parser.format_help()
    assert "override a config key (repeatable)" in p.format_help() and "no progress bar" in p.format_help()


def test_a_description_with_line_breaks_keeps_its_layout() -> None:
    _, sub = _subparsers()
    laid_out = command(sub, "a", _handler, help="a", description="first line\n  example: tool a\n")
    wrapped = command(sub, "b", _handler, help="b", description="one paragraph " * 12)
    assert laid_out.formatter_class is argparse.RawDescriptionHelpFormatter
    assert "\n  example: tool a\n" in laid_out.format_help()
    assert wrapped.formatter_class is argparse.HelpFormatter


def test_quiet_names_what_it_hides() -> None:
    _, sub = _subparsers()
    p = command(sub, "c", _handler, help="c", description="c")
    add_quiet(p, "progress lines")
    assert "no progress lines" in p.format_help()


def test_train_shorthands_are_overrides_after_set(monkeypatch: pytest.MonkeyPatch) -> None:
    import fluxmusic.training.trainers as trainers
    from fluxmusic.cli import main

    seen: dict[str, list[str]] = {}

    def load(path: str, overrides: list[str]) -> str:
        seen["overrides"] = overrides
        return "config"

    monkeypatch.setattr(trainers, "load_experiment", load)
    monkeypatch.setattr(
        trainers, "train", lambda config, resume: SimpleNamespace(step=0, checkpoint=None, export=None)
    )
    argv = ["train", "--config", "x.toml", "--set", "a.b=1", "--init-from", "w.pt", "--run-dir", "r", "-q"]
    assert main(argv) == 0
    assert seen["overrides"] == ["a.b=1", 'model.init_from="w.pt"', 'run.dir="r"']
