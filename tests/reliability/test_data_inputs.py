"""A catalogue of bad inputs to the data tools: each is refused in one line naming the problem.

Every row of :data:`BAD_MANIFESTS` is a manifest file a user might hand to ``fluxmusic data check``
(the same reader serves training and preprocess); the command must exit with status 2, print exactly
one line on stderr (no traceback), and write nothing. Add a row whenever a new way to be wrong is found.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fluxmusic.cli import main
from fluxmusic.errors import FluxmusicError

GOOD_ITEM = {"wav": "a.wav", "label": "a tone"}

BAD_MANIFESTS: list[tuple[str, str, bytes, str]] = [
    # (id, file name, content, a fragment of the one-line message)
    ("not-utf8", "m.json", '[{"wav": "a.wav", "label": "café"}]'.encode("latin-1"), "UTF-8"),
    ("utf16", "m.json", json.dumps([GOOD_ITEM]).encode("utf-16"), "UTF-8"),
    ("not-json", "m.json", b"wav,label\na.wav,x\n", "a JSON list"),
    ("json-garbage-item", "m.json", b'[{"wav": "a.wav", "label": "x"}, {oops}]', "item 2: invalid JSON"),
    ("json-object", "m.json", json.dumps(GOOD_ITEM).encode(), "a JSON list"),
    ("json-scalar", "m.json", b"42", "a JSON list"),
    ("json-empty-file", "m.json", b"", "a JSON list"),
    ("json-empty-list", "m.json", b"[]", "no items"),
    ("list-of-numbers", "m.json", b"[1, 2, 3]", "item 1: expected an object"),
    ("list-of-strings", "m.json", b'["a.wav", "b.wav"]', "item 1: expected an object"),
    ("list-of-lists", "m.json", b'[["a.wav", "x"]]', "item 1: expected an object"),
    ("list-of-null", "m.json", b"[null]", "item 1: expected an object"),
    ("missing-label", "m.json", b'[{"wav": "a.wav"}]', "missing key(s) 'label'"),
    ("wav-not-string", "m.json", b'[{"wav": 3, "label": "x"}]', "'wav' must be"),
    ("wav-empty", "m.json", b'[{"wav": " ", "label": "x"}]', "'wav' must be"),
    ("label-number", "m.json", b'[{"wav": "a.wav", "label": 7}]', "'label' must be a string"),
    ("offset-text", "m.json", b'[{"wav": "a.wav", "label": "x", "offset": "soon"}]', "'offset' must be"),
    ("offset-negative", "m.json", b'[{"wav": "a.wav", "label": "x", "offset": -1}]', "'offset' must be"),
    ("duration-nan", "m.json", b'[{"wav": "a.wav", "label": "x", "duration": NaN}]', "'duration' must be"),
    ("duration-inf", "m.json", b'[{"wav": "a.wav", "label": "x", "duration": 1e400}]', "'duration' must be"),
    ("duration-zero", "m.json", b'[{"wav": "a.wav", "label": "x", "duration": 0}]', "'duration' must be"),
    ("bpm-negative", "m.json", b'[{"wav": "a.wav", "label": "x", "bpm": -120}]', "'bpm' must be"),
    (
        "beat-phase-one",
        "m.json",
        b'[{"wav": "a.wav", "label": "x", "bpm": 90, "beat_phase": 1}]',
        "beat_phase",
    ),
    ("huge-integer", "m.json", b'[{"wav": "a.wav", "label": "x", "offset": ' + b"9" * 5000 + b"}]", "item 1"),
    ("deeply-nested", "m.json", b"[" + b"[" * 100_000, "nested too deeply"),
    ("trailing-text", "m.json", json.dumps([GOOD_ITEM]).encode() + b" extra", "after the closing"),
    (
        "jsonl-bad-line",
        "m.jsonl",
        b'{"wav": "a.wav", "label": "x"}\n{nope\n',
        "item 2 (line 2): invalid JSON",
    ),
    ("jsonl-list-line", "m.jsonl", b'["a.wav", "x"]\n', "item 1 (line 1): expected an object"),
    ("jsonl-deep", "m.jsonl", b"[" * 100_000 + b"\n", "nested too deeply"),
    ("jsonl-empty", "m.jsonl", b"\n\n", "no items"),
    ("csv-no-columns", "m.csv", b"path,caption\na.wav,x\n", "'wav' and 'label'"),
    ("csv-extra-field", "m.csv", b"wav,label\na.wav,one, two\n", "more fields"),
    ("csv-huge-field", "m.csv", b"wav,label\na.wav," + b"x" * 200_000 + b"\n", "item 1"),
    ("csv-unclosed-quote-huge", "m.csv", b'wav,label\na.wav,"' + b"x" * 200_000, "item 1"),
    ("csv-empty", "m.csv", b"", "no items"),
    ("binary-png", "m.json", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "binary"),
    ("binary-nul-text", "m.jsonl", b'{"wav": "a.wav", "label": "x\x00"}\n', "binary"),
    ("an-audio-file", "m.json", b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00", "binary"),
    ("unknown-suffix", "m.txt", json.dumps([GOOD_ITEM]).encode(), "unknown manifest format"),
]


@pytest.mark.parametrize(
    ("name", "content", "fragment"), [row[1:] for row in BAD_MANIFESTS], ids=[row[0] for row in BAD_MANIFESTS]
)
def test_bad_manifest_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, fragment: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["data", "check", str(path), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert fragment in err and str(path) in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


@pytest.mark.parametrize("case", ["missing", "folder"])
def test_manifest_that_is_not_a_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    path = tmp_path / "m.json"
    if case == "folder":
        path.mkdir()
    assert main(["data", "check", str(path), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err


def test_huge_manifest_is_refused_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import fluxmusic.data.manifest as manifest

    monkeypatch.setattr(manifest, "MAX_MANIFEST_BYTES", 1000)
    path = tmp_path / "m.jsonl"
    path.write_text((json.dumps(GOOD_ITEM) + "\n") * 100, encoding="utf-8")
    assert main(["data", "check", str(path), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "split it" in err


def _tone_file(folder: Path) -> None:
    t = np.arange(16000 * 2) / 16000
    sf.write(folder / "a.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("m.json", json.dumps([GOOD_ITEM])),
        ("m.jsonl", json.dumps(GOOD_ITEM) + "\n"),
        ("m.csv", "wav,label\na.wav,a tone\n"),
    ],
)
def test_a_utf8_bom_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str
) -> None:
    _tone_file(tmp_path)
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert main(["data", "check", str(path), "-q"]) == 0, capsys.readouterr()
    assert "1 of 1 items ok" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["path-too-long", "nul-in-path", "a-folder", "dangling-symlink", "fifo"])
def test_unopenable_audio_paths_are_reported_items_not_tracebacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    import os

    _tone_file(tmp_path)
    wav = {"path-too-long": "x" * 5000 + ".wav", "nul-in-path": "a\u0000b.wav"}.get(case, "odd.wav")
    if case == "a-folder":
        (tmp_path / wav).mkdir()
    if case == "dangling-symlink":
        (tmp_path / wav).symlink_to(tmp_path / "nowhere.wav")
    if case == "fifo":
        os.mkfifo(tmp_path / wav)
    path = tmp_path / "m.json"
    path.write_text(json.dumps([GOOD_ITEM, {"wav": wav, "label": case}]), encoding="utf-8")
    for mode in ([], ["--headers-only"]):
        assert main(["data", "check", str(path), "-q", *mode]) == 1
        out = capsys.readouterr().out
        assert "item 2: " in out and "missing" in out and "1 of 2 items ok" in out, out


@pytest.mark.parametrize("case", ["path-too-long", "nul-in-path", "a-folder"])
def test_unopenable_audio_paths_are_skipped_by_the_loader(tmp_path: Path, case: str) -> None:
    from fluxmusic.data.dataset import AudioClipDataset, SkippedItem
    from fluxmusic.data.manifest import read_manifest

    wav = {"path-too-long": "x" * 5000 + ".wav", "nul-in-path": "a\u0000b.wav"}.get(case, "odd.wav")
    if case == "a-folder":
        (tmp_path / wav).mkdir()
    path = tmp_path / "m.json"
    path.write_text(json.dumps([{"wav": wav, "label": case}]), encoding="utf-8")
    sample = AudioClipDataset(read_manifest(path), 0.5)[(0, 0)]
    assert isinstance(sample, SkippedItem)


# --- other text files the data tools read ---


def _latent_folder(tmp_path: Path, index_bytes: bytes) -> Path:
    out = tmp_path / "latents"
    out.mkdir()
    (out / "index.json").write_bytes(index_bytes)
    return out


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "invalid JSON"),
        (b"\xff\xfe\x00garbage", "index.json"),
        (b"[1, 2]", "not a fluxmusic latent index"),
        (b'{"format": "fluxmusic-latents"}', "no shards"),
        (b'{"format": "something-else", "shards": []}', "not a fluxmusic latent index"),
    ],
)
def test_bad_latent_index_is_an_input_error(tmp_path: Path, content: bytes, fragment: str) -> None:
    from fluxmusic.data.shards import read_index

    out = _latent_folder(tmp_path, content)
    with pytest.raises(FluxmusicError, match=fragment) as info:
        read_index(out)
    assert "\n" not in str(info.value)


def test_latent_index_and_skip_logs_may_start_with_a_bom(tmp_path: Path) -> None:
    from fluxmusic.data.shards import done_items, read_index

    index = {"format": "fluxmusic-latents", "shards": [{"file": "shards/x.safetensors", "count": 1}]}
    out = _latent_folder(tmp_path, b"\xef\xbb\xbf" + json.dumps(index).encode())
    assert read_index(out)["shards"][0]["count"] == 1
    (out / "skipped-r0.jsonl").write_bytes(b'\xef\xbb\xbf{"index": 3, "item": 4, "reason": "x"}\n')
    assert done_items(out)[1] == [{"index": 3, "item": 4, "reason": "x"}]


def test_clip_bank_manifest_may_start_with_a_bom(tmp_path: Path) -> None:
    from fluxmusic.data.clip_bank import list_clips

    (tmp_path / "train.json").write_bytes(
        b"\xef\xbb\xbf" + json.dumps([{"wav": "a.wav", "label": ""}]).encode()
    )
    assert list_clips(tmp_path, "train") == ["a.wav"]
