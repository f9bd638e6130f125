"""Strict JSON reports: non-finite floats become null, the file is written whole."""

from __future__ import annotations

import json
import math

from fluxmusic.files import atomic_write_json, json_safe


def test_json_safe_replaces_non_finite_floats_at_any_depth() -> None:
    value = {"a": math.nan, "b": [1.0, math.inf, {"c": -math.inf}], "d": (2, "x"), "e": 0.5}
    assert json_safe(value) == {"a": None, "b": [1.0, None, {"c": None}], "d": [2, "x"], "e": 0.5}


def test_atomic_write_json_writes_strict_json(tmp_path) -> None:
    path = atomic_write_json(tmp_path / "report.json", {"fd": math.nan, "rows": [1.5]})
    text = path.read_text()
    assert text.endswith("\n") and "NaN" not in text
    assert json.loads(text) == {"fd": None, "rows": [1.5]}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
