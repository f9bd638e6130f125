"""``data check``: corrupt, empty, missing, too-short and silent files are reported with their paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fluxmusic.cli import main
from fluxmusic.data.check import check_manifest
from fluxmusic.data.manifest import read_manifest


def _tone(seconds: float, rate: int = 16000) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)).astype(np.float32)


@pytest.fixture()
def messy(tmp_path: Path) -> Path:
    """One file of each kind, and a manifest listing them (plus a file that does not exist)."""
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "good.wav", _tone(2.0), 16000)
    sf.write(audio / "good8k.flac", _tone(2.0, 8000), 8000)
    (audio / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 10)
    sf.write(audio / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    sf.write(audio / "short.wav", _tone(0.3), 16000)
    sf.write(audio / "silent.wav", np.zeros(32000, dtype=np.float32), 16000)
    sf.write(audio / "dc.wav", np.full(32000, 0.25, dtype=np.float32), 16000)  # constant offset: silent
    nan = _tone(2.0)
    nan[100] = np.nan
    sf.write(audio / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(audio / "long.wav", _tone(3.0), 16000)
    items = [
        ("good.wav", "ok"),
        ("good8k.flac", "ok"),
        ("corrupt.wav", "corrupt"),
        ("empty.wav", "empty"),
        ("missing.wav", "missing"),
        ("short.wav", "too_short"),
        ("silent.wav", "silent"),
        ("dc.wav", "silent"),
        ("nan.wav", "corrupt"),
    ]
    manifest = [{"wav": f"audio/{name}", "label": status} for name, status in items]
    manifest.append({"wav": "audio/long.wav", "label": "bad_region", "offset": 5.0})
    manifest.append({"wav": "audio/long.wav", "label": "too_short", "offset": 2.5})
    manifest.append({"wav": "audio/long.wav", "label": "ok", "offset": 1.0, "duration": 1.5})
    path = tmp_path / "train.json"
    path.write_text(json.dumps(manifest))
    return path


def test_every_problem_is_classified_with_its_path(messy: Path) -> None:
    report = check_manifest(messy, min_duration=1.0, report_path=messy.with_name("report.json"))
    expected = [item.caption for item in read_manifest(messy)]  # the label names the expected status
    assert [c.status for c in report.items] == expected
    for verdict, item in zip(report.items, read_manifest(messy)):
        assert verdict.path == str(item.path)
    assert report.items[1].warnings and "8000 Hz" in report.items[1].warnings[0]
    assert report.items[-1].duration_s == pytest.approx(1.5)
    summary = json.loads(messy.with_name("report.json").read_text())["summary"]
    assert summary["ok"] == 3 and summary["bad"] == 9
    assert summary["by_status"]["silent"] == 2 and summary["by_status"]["corrupt"] == 2


def test_headers_only_skips_decoding(messy: Path) -> None:
    report = check_manifest(messy, decode=False, workers=2)
    statuses = {c.path.rsplit("/", 1)[-1]: c.status for c in report.items}
    assert statuses["silent.wav"] == "ok"  # silence needs decoding
    assert statuses["missing.wav"] == "missing" and statuses["corrupt.wav"] == "corrupt"


def test_cli_data_check(messy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = tmp_path / "clean.jsonl"
    code = main(["data", "check", str(messy), "--write-clean", str(clean), "-q"])
    out = capsys.readouterr().out
    assert code == 1  # some items are bad
    assert f"item 5: {tmp_path / 'audio' / 'missing.wav'}: missing" in out
    assert f"item 7: {tmp_path / 'audio' / 'silent.wav'}: silent" in out
    assert "3 of 12 items ok" in out
    assert messy.with_name("train.check.json").is_file()
    assert [i.path.name for i in read_manifest(clean)] == ["good.wav", "good8k.flac", "long.wav"]
    assert main(["data", "check", str(clean), "-q"]) == 0


def test_cli_bad_manifest_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.json"
    path.write_text('[{"wav": "a.wav", "label": "x"}, {"wav": "b.wav"}]')
    assert main(["data", "check", str(path), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "item 2: missing key(s) 'label'" in err
