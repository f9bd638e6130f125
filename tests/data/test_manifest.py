"""Manifests: reference JSON lists, JSON Lines and CSV; relative paths; errors name the item number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fluxmusic.data.manifest import ManifestError, ManifestItem, read_manifest, write_manifest


def test_reference_json_list(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "train.json"
    path.write_text(
        json.dumps([{"wav": "a.wav", "label": "piano"}, {"wav": "/abs/b.flac", "label": "drums"}])
    )
    items = read_manifest(path)
    assert [i.caption for i in items] == ["piano", "drums"]
    assert items[0].path == tmp_path / "sub" / "a.wav"  # relative to the manifest's folder
    assert items[1].path == Path("/abs/b.flac")
    assert items[0].index == 0 and items[0].offset is None and items[0].duration is None


def test_jsonl_with_offset_duration_and_extra_keys(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    lines = [
        json.dumps({"wav": "x.wav", "label": "calm", "offset": 1.5, "duration": 10, "genre": "ambient"}),
        "",
        json.dumps({"wav": "y.wav", "label": None}),
    ]
    path.write_text("\n".join(lines) + "\n")
    first, second = read_manifest(path)
    assert (first.offset, first.duration, first.extra) == (1.5, 10.0, {"genre": "ambient"})
    assert second.caption == ""  # a null caption is the empty caption
    assert second.index == 1


def test_csv(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text('wav,label,offset,duration\na.wav,"piano, slow",,\nb.wav,drums,2.0,5\n')
    a, b = read_manifest(path)
    assert a.caption == "piano, slow" and a.offset is None
    assert (b.offset, b.duration) == (2.0, 5.0)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "bad.json",
            '[{"wav": "a.wav", "label": "x"},\n {"wav": "b.wav" "label": "y"}]',
            "item 2: invalid JSON at line 2",
        ),
        ("bad.json", '[{"wav": "a.wav", "label": "x"}, {"label": "y"}]', "item 2: missing key(s) 'wav'"),
        ("bad.json", '[{"wav": "a.wav"}]', "item 1: missing key(s) 'label'"),
        ("bad.json", '{"wav": "a.wav", "label": "x"}', "must be a JSON list"),
        ("bad.json", "[]", "holds no items"),
        ("bad.json", '[{"wav": "a.wav", "label": "x"}] trailing', "after the closing"),
        ("bad.json", '[{"wav": "a.wav", "label": 3}]', "item 1: 'label' must be a string"),
        ("bad.json", '[{"wav": "", "label": "x"}]', "item 1: 'wav' must be a non-empty"),
        ("bad.json", '[{"wav": "a.wav", "label": "x", "offset": -1}]', "item 1: 'offset' must be >= 0"),
        (
            "bad.json",
            '[{"wav": "a.wav", "label": "x", "duration": "long"}]',
            "item 1: 'duration' must be a number",
        ),
        ("bad.json", '["a.wav"]', "item 1: expected an object"),
        ("bad.json", '[{"wav": "a.wav", "label": "x", "bpm": 0}]', "item 1: 'bpm' must be > 0"),
        (
            "bad.json",
            '[{"wav": "a.wav", "label": "x", "bpm": "fast"}]',
            "item 1: 'bpm' must be a number of beats per minute",
        ),
        (
            "bad.json",
            '[{"wav": "a.wav", "label": "x", "bpm": 90, "beat_phase": 1.5}]',
            "item 1: 'beat_phase' must be a fraction of a beat in [0, 1)",
        ),
        (
            "bad.jsonl",
            '{"wav": "a.wav", "label": "x"}\n\n{"wav": "b.wav", label: "y"}\n',
            "item 2 (line 3): invalid JSON",
        ),
        (
            "bad.jsonl",
            '{"wav": "a.wav", "label": "x"}\n{"wav": "b.wav"}\n',
            "item 2 (line 2): missing key(s) 'label'",
        ),
        ("bad.csv", "path,caption\na.wav,x\n", "must name columns 'wav' and 'label'"),
        ("bad.csv", "wav,label\na.wav,x\nb.wav,y,z\n", "item 2 (line 3): more fields"),
        ("bad.txt", "a.wav", "unknown manifest format"),
    ],
)
def test_errors_name_the_item(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ManifestError) as err:
        read_manifest(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "nope.json")


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv"])
def test_write_then_read_round_trip(tmp_path: Path, suffix: str) -> None:
    items = [
        ManifestItem(0, tmp_path / "a.wav", "piano, slow", wav="a.wav"),
        ManifestItem(1, tmp_path / "b.wav", "drums", offset=1.0, duration=2.5, wav="b.wav"),
        ManifestItem(2, tmp_path / "c.wav", "reel", wav="c.wav", bpm=132.0, beat_phase=0.5),
    ]
    path = write_manifest(items, tmp_path / f"out{suffix}")
    back = read_manifest(path)
    assert [(i.path, i.caption, i.offset, i.duration, i.bpm, i.beat_phase) for i in back] == [
        (i.path, i.caption, i.offset, i.duration, i.bpm, i.beat_phase) for i in items
    ]


def test_tempo_at_a_crop_counts_beats_from_the_file_start() -> None:
    item = ManifestItem(0, Path("a.wav"), "reel", bpm=120.0, beat_phase=0.25)
    assert item.tempo_at(0.0) == (120.0, 0.25)
    assert item.tempo_at(1.125)[1] == pytest.approx(0.5)  # 2.25 beats later
    assert ManifestItem(1, Path("b.wav"), "no tempo").tempo_at(3.0) == (0.0, 0.0)
