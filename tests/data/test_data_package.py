"""``fluxmusic.data`` and ``fluxmusic.data.demo`` export their names lazily; importing them is cheap."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("package", ["fluxmusic.data", "fluxmusic.data.demo"])
def test_every_lazy_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__ and sorted(module.__all__) == sorted(dir(module))
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError, match="no_such_name"):
        module.no_such_name  # noqa: B018


def test_importing_the_package_loads_no_submodule() -> None:
    code = (
        "import sys, fluxmusic.data, fluxmusic.data.demo; "
        "print(sorted(m for m in sys.modules if m.startswith('fluxmusic.data.demo.') or "
        "m.startswith('fluxmusic.data.') and m.count('.') == 2 and m != 'fluxmusic.data.demo')); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "False"]


def test_user_mistakes_raise_library_error_types(tmp_path: Path) -> None:
    from fluxmusic.data.demo.config import DemoDatasetConfig
    from fluxmusic.data.manifest import ManifestError, read_manifest
    from fluxmusic.data.shards import read_index
    from fluxmusic.errors import InputError, MissingFilesError

    assert issubclass(ManifestError, InputError)
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "missing.json")
    with pytest.raises(MissingFilesError, match="fluxmusic preprocess"):
        read_index(tmp_path)
    (tmp_path / "index.json").write_text('{"format": "other"}')
    with pytest.raises(InputError, match="not a fluxmusic latent index"):
        read_index(tmp_path)
    with pytest.raises(InputError, match="n_clips"):
        DemoDatasetConfig(out_dir=tmp_path, n_clips=0)
