"""``fluxmusic generate`` never loses or half-writes a file: no silent overwrite, atomic writes, full disks.

Regression tests for issue 15, defects 3 (overwrite), 6 (full disk), 8 (bounded batches), 11
(permissions), 12 (formats from the suffix) and 15 (empty folders left by failed runs).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import soundfile as sf


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_an_existing_file_is_refused_before_any_work(generate, one_line, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "song.wav"
    assert generate("a jig", "-o", str(out), "--seed", "1")[0] == 0
    first = out.read_bytes()
    status, _, err = generate("a reel", "-o", str(out), "--seed", "2")
    assert status == 2 and one_line(err) and "exists" in err and "--overwrite" in err
    assert out.read_bytes() == first and json.loads(out.with_suffix(".json").read_text())["prompt"] == "a jig"
    assert generate("a reel", "-o", str(out), "--seed", "2", "--overwrite")[0] == 0
    assert json.loads(out.with_suffix(".json").read_text())["prompt"] == "a reel"


def test_a_sidecar_never_replaces_a_file_that_is_not_a_sidecar(generate, one_line, tmp_path: Path) -> None:  # noqa: ANN001
    manifest = tmp_path / "train.json"
    manifest.write_text('[{"wav": "a.wav", "label": "piano"}]')
    for extra in ((), ("--overwrite",)):
        status, _, err = generate("a jig", "-o", str(tmp_path / "train.wav"), *extra)
        assert status == 2 and one_line(err) and "not a fluxmusic sidecar" in err
    assert manifest.read_text() == '[{"wav": "a.wav", "label": "piano"}]'
    assert not (tmp_path / "train.wav").exists()


def test_a_second_run_into_a_folder_continues_the_numbering(generate, tmp_path: Path) -> None:  # noqa: ANN001
    assert generate("a jig", "a reel", "-o", str(tmp_path), "--seed", "1")[0] == 0
    before = {name: (tmp_path / name).read_bytes() for name in _files(tmp_path)}
    assert generate("an air", "-o", str(tmp_path), "--seed", "5")[0] == 0
    assert _files(tmp_path) == sorted([*before, "003-an-air.json", "003-an-air.wav"])
    assert all((tmp_path / name).read_bytes() == data for name, data in before.items())


def test_a_symlink_is_replaced_not_followed(generate, tmp_path: Path) -> None:  # noqa: ANN001
    target = tmp_path / "precious.wav"
    target.write_bytes(b"RIFF precious")
    link = tmp_path / "out.wav"
    link.symlink_to(target)
    assert generate("a jig", "-o", str(link))[0] == 2  # exists: refused without --overwrite
    assert generate("a jig", "-o", str(link), "--overwrite")[0] == 0
    assert target.read_bytes() == b"RIFF precious" and not link.is_symlink()
    assert sf.info(str(link)).samplerate == 16000


@pytest.mark.parametrize("suffix,fmt", [("flac", "FLAC"), ("ogg", "OGG"), ("mp3", "MP3")])
def test_the_suffix_names_the_format(generate, tmp_path: Path, suffix: str, fmt: str) -> None:  # noqa: ANN001
    out = tmp_path / f"song.{suffix}"
    assert generate("a jig", "-o", str(out))[0] == 0
    assert out.is_file() and sf.info(str(out)).format == fmt


@pytest.mark.parametrize(
    "args,needle",
    [
        (["-o", "song.png"], ".png is not an audio format"),
        (["-o", "song.wav", "--format", "flac"], "--format flac disagrees with -o"),
        (["-o", "x" * 300 + ".wav"], "over 255 bytes"),
    ],
)
def test_bad_outputs_are_refused_before_any_work(
    generate,
    one_line,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    needle: str,  # noqa: ANN001
) -> None:
    monkeypatch.chdir(tmp_path)
    status, _, err = generate("a jig", *args)
    assert status == 2 and one_line(err) and needle in err
    assert _files(tmp_path) == []


def test_a_folder_named_like_a_file_takes_the_clips(generate, tmp_path: Path) -> None:  # noqa: ANN001
    folder = tmp_path / "x.wav"
    folder.mkdir()
    assert generate("a jig", "-o", str(folder))[0] == 0
    assert _files(folder) == ["001-a-jig.json", "001-a-jig.wav"]


def test_micro_batches_give_the_same_clips_and_stream_to_disk(generate, tmp_path: Path) -> None:  # noqa: ANN001
    args = ("a jig", "a reel", "an air", "--num-per-prompt", "2", "--seed", "3")
    assert generate(*args, "-o", str(tmp_path / "one"))[0] == 0
    status, out, _ = generate(*args, "-o", str(tmp_path / "many"), "--batch-size", "2")
    assert status == 0 and len(out.splitlines()) == 6
    for name in _files(tmp_path / "one"):
        if name.endswith(".wav"):
            a, b = sf.read(tmp_path / "one" / name)[0], sf.read(tmp_path / "many" / name)[0]
            assert abs(a - b).max() < 1e-3, name  # the same clip whatever the batch size
    seeds = [
        json.loads((tmp_path / "many" / n).read_text())["seed"]
        for n in _files(tmp_path / "many")
        if n.endswith(".json")
    ]
    assert seeds == [3, 4, 5, 6, 7, 8]


def _full_disk_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    import soundfile

    real = soundfile.write

    def half_then_full(file: str, data, *args, **kwargs) -> None:  # noqa: ANN001
        real(file, data[: len(data) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(soundfile, "write", half_then_full)


def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(
    generate,
    one_line,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    _full_disk_writer(monkeypatch)
    out = tmp_path / "songs"
    status, _, err = generate("a jig", "-o", str(out))
    assert status == 2 and one_line(err)
    assert "No space left on device" in err and "MB free" in err and "001-a-jig.wav" in err
    assert not out.exists()  # no truncated clip, no temporary file, and the empty folder is gone


def test_a_real_full_disk(generate, one_line, tmp_path: Path) -> None:  # noqa: ANN001
    """On a 64 kB tmpfs (where this machine lets a test mount one): the first clip fits, the second not."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the ENOSPC writer test covers the logic")
    try:
        status, out, err = generate("a jig", "a reel", "--duration", "1.28", "-o", str(mount))
        assert status == 2 and one_line(err) and "free" in err
        for name in _files(mount):  # what landed is whole: every clip reads to its full length
            assert not name.startswith("."), name
            if name.endswith(".wav"):
                assert sf.info(str(mount / name)).frames == round(1.28 * 16000)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_outputs_get_the_umasks_permissions(generate, tmp_path: Path) -> None:  # noqa: ANN001
    old = os.umask(0o022)
    try:
        assert generate("a jig", "-o", str(tmp_path / "a.wav"), "--spectrogram")[0] == 0
    finally:
        os.umask(old)
    for name in ("a.wav", "a.json", "a.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_a_failed_run_leaves_no_empty_folders(generate, one_line, tmp_path: Path) -> None:  # noqa: ANN001
    status, _, err = generate(
        "a jig", "--bpm", "120", "-o", str(tmp_path / "new" / "deeper")
    )  # no tempo input
    assert status == 2 and one_line(err) and "no tempo input" in err
    assert _files(tmp_path) == []


def test_weights_and_configs_get_the_umasks_permissions(cli, tmp_path: Path) -> None:  # noqa: ANN001
    """Defect 11: model folders were written 0600 (mkstemp ignores the umask), unreadable by others."""
    import argparse

    import torch

    from fluxmusic.config import PRESETS
    from fluxmusic.model import MusicFlux

    torch.save(
        {"ema": MusicFlux(PRESETS["tiny"]).state_dict(), "args": argparse.Namespace()}, tmp_path / "r.pt"
    )
    old = os.umask(0o022)
    try:
        assert cli("convert", str(tmp_path / "r.pt"), str(tmp_path / "out"))[0] == 0
    finally:
        os.umask(old)
    for name in ("model.safetensors", "config.json"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o644, name
