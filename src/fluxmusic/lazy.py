"""The one ``__init__`` convention of fluxmusic's packages: public names load their module on first use.

A package ``__init__`` holds a docstring and a table ``{"Name": "fluxmusic.pkg.module"}``, then::

    __getattr__, __dir__, __all__ = lazy_exports(__name__, _LAZY)

so ``import fluxmusic.audio`` costs nothing until a name is used, ``fluxmusic --help`` never imports
torch, and a package ``__init__`` never creates an import loop with its own modules. The layer test
reads these tables as imports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, table: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package`` exporting ``table``'s names from their modules."""

    def __getattr__(name: str) -> Any:
        if name in table:
            return getattr(import_module(table[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(table)

    return __getattr__, __dir__, sorted(table)
