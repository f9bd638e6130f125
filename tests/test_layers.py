"""The import order of the package, kept by parsing every module (function-level imports included).

Layers, lowest first; a module imports only from its own package or from lower layers:

    version, lazy, errors  <-  config, files, seeding, devices, hub  <-  flow  <-  sampling  <-
    model, audio, text  <-  checkpoints, data  <-  modelfolder  <-  pipeline  <-  training, evaluation
    <-  cli, web  <-  __main__ and the root package (whose lazy table names the public classes)

Packages on one layer do not import each other (``flow`` never imports ``model``; ``training`` and
``evaluation`` stay apart), except the pairs in ``ALLOWED_SIDEWAYS``. There are no import loops between
modules, counting function-level imports and the lazy export tables of package ``__init__`` files.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: list[tuple[str, ...]] = [
    ("version", "lazy", "errors"),
    ("config", "files", "seeding", "devices", "ranks", "hub"),
    ("flow",),
    ("sampling",),
    ("model", "audio", "text"),
    ("checkpoints", "data"),
    ("modelfolder",),
    ("pipeline",),
    ("training", "evaluation"),
    ("cli", "web"),
    ("__main__", ""),  # python -m fluxmusic, and the root package's lazy table ("")
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}
ALLOWED_SIDEWAYS: set[tuple[str, str]] = {
    ("cli", "web"),  # `fluxmusic serve` starts the web app; web never imports cli
}
"""(importer, imported) pairs of one layer that may import sideways."""


def module_files(src: Path, package: str = "fluxmusic") -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` under ``src``."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _lazy_table(tree: ast.Module) -> dict[str, str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_LAZY" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def import_graph(src: Path, package: str = "fluxmusic") -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its file (and, for ``__init__`` files,
    the modules its lazy ``_LAZY`` table names)."""
    files = module_files(src, package)
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")[: len(here.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [
                    f"{module}.{a.name}" if f"{module}.{a.name}" in files else module for a in node.names
                ]
            else:
                continue
            graph[name].update(t for t in targets if t in files and t != name)
        if is_package:
            graph[name].update(m for m in _lazy_table(tree).values() if m in files)
    return graph


def layer_of(module: str, package: str = "fluxmusic") -> str:
    rest = module[len(package) :].lstrip(".")
    return rest.split(".")[0]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import from a higher layer, or sideways between two packages of one layer."""
    bad = []
    for module, targets in sorted(graph.items()):
        mine = layer_of(module)
        for target in sorted(targets):
            theirs = layer_of(target)
            if theirs == mine or (mine, theirs) in ALLOWED_SIDEWAYS:
                continue
            if mine not in RANK or theirs not in RANK:
                bad.append(f"{module} -> {target}: package {mine or theirs!r} has no layer in LAYERS")
            elif RANK[theirs] >= RANK[mine]:
                bad.append(f"{module} ({mine}) -> {target} ({theirs})")
    return bad


def import_loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return loops


def test_every_package_has_a_layer() -> None:
    packages = {layer_of(m) for m in module_files(SRC)}
    assert packages - set(RANK) == set()


def test_no_upward_or_sideways_imports() -> None:
    bad = upward_imports(import_graph(SRC))
    assert bad == [], "imports against the layer order:\n" + "\n".join(bad)


def test_no_import_loops_between_modules() -> None:
    loops = import_loops(import_graph(SRC))
    assert loops == [], "import loops:\n" + "\n".join(" <-> ".join(c) for c in loops)


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "fluxmusic" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize("where", ["top", "function"])
def test_the_checker_sees_an_upward_import(tmp_path: Path, where: str) -> None:
    line = "from fluxmusic.training.loop import train"
    body = line if where == "top" else f"def f():\n    {line}\n"
    src = _write(
        tmp_path,
        {
            "__init__.py": "",
            "model/__init__.py": "",
            "model/layers.py": body,
            "training/__init__.py": "",
            "training/loop.py": "def train(): ...\n",
        },
    )
    assert upward_imports(import_graph(src)) == [
        "fluxmusic.model.layers (model) -> fluxmusic.training.loop (training)"
    ]


def test_the_checker_sees_loops_through_lazy_tables(tmp_path: Path) -> None:
    src = _write(
        tmp_path,
        {
            "__init__.py": "",
            "audio/__init__.py": '_LAZY = {"read": "fluxmusic.audio.io"}\n',
            "audio/io.py": "def read(): ...\n",
            "audio/clips.py": "from fluxmusic.audio import read\n",
            "data/__init__.py": "",
            "data/a.py": "from fluxmusic.data.b import g\ndef f(): ...\n",
            "data/b.py": "def g():\n    from fluxmusic.data.a import f\n",
        },
    )
    loops = import_loops(import_graph(src))
    assert loops == [["fluxmusic.data.a", "fluxmusic.data.b"]]
    # a package __init__'s lazy table counts as imports: io is reached, clips -> audio is one-way
    assert import_graph(src)["fluxmusic.audio"] == {"fluxmusic.audio.io"}
