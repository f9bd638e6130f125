"""``fluxmusic.evaluation`` exports its names lazily and imports no training code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fluxmusic.evaluation

PACKAGE = Path(fluxmusic.evaluation.__file__).parent


def test_every_lazy_name_resolves() -> None:
    assert sorted(fluxmusic.evaluation.__all__) == sorted(dir(fluxmusic.evaluation))
    for name in fluxmusic.evaluation.__all__:
        assert getattr(fluxmusic.evaluation, name) is not None, name
    with pytest.raises(AttributeError, match="no_such_name"):
        fluxmusic.evaluation.no_such_name  # noqa: B018


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_imports_no_training_cli_or_argparse(path: Path) -> None:
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    banned = {m for m in imported if m.split(".")[:2] in (["fluxmusic", "training"], ["fluxmusic", "cli"])}
    assert not banned and "argparse" not in imported, (path.name, banned)


def test_user_mistakes_raise_library_error_types(demo_data: Path, tmp_path: Path) -> None:
    from fluxmusic.errors import InputError, MissingFilesError
    from fluxmusic.evaluation.benchmark import held_out_prompts
    from fluxmusic.evaluation.judge import train_demo_classifier
    from fluxmusic.evaluation.reconstruction import reconstruction_report
    from fluxmusic.evaluation.tempo_report import tempo_report

    missing = tmp_path / "missing"
    for call in (
        lambda: tempo_report(missing),
        lambda: train_demo_classifier(missing),
        lambda: reconstruction_report(missing),
        lambda: held_out_prompts(missing, ("bass",), 4),
    ):
        with pytest.raises(MissingFilesError, match="missing"):
            call()
    with pytest.raises(InputError, match="no clips"):
        tempo_report(demo_data, limit=0)
    with pytest.raises(InputError, match="states a BPM"):
        held_out_prompts(demo_data, ("kazoo",), 4)
    with pytest.raises(InputError, match="need clips in both splits"):
        train_demo_classifier(demo_data, max_train=0)
