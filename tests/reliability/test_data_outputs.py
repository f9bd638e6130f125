"""What the data tools write: never onto their inputs, checked before the work, atomic, one-line failures.

``fluxmusic data check`` (its ``--report`` and ``--write-clean`` files) and the preprocess library
function (its output folder and options).
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fluxmusic.cli import main
from fluxmusic.errors import FluxmusicError, InputError

RATE = 16000


def _tone(seconds: float) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(RATE * seconds)) / RATE)).astype(np.float32)


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    """Two good items and a missing one: ``--write-clean`` would keep two of three."""
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "a.wav", _tone(1.5), RATE)
    sf.write(tmp_path / "audio" / "b.wav", _tone(1.5), RATE)
    path = tmp_path / "train.json"
    names = ["a.wav", "gone.wav", "b.wav"]
    path.write_text(json.dumps([{"wav": f"audio/{n}", "label": n} for n in names]), encoding="utf-8")
    return path


@pytest.fixture()
def no_work(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the items checked, so a test can tell that a refusal came before any work."""
    import fluxmusic.data.check as check

    calls: list[int] = []
    real = check.check_item

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(check, "check_item", counted)
    return calls


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    for needle in needles:
        assert needle in captured.err, captured.err
    return captured.err


def _temp_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*.tmp"))


@pytest.mark.parametrize("alias", ["same", "dot-relative", "symlink", "hardlink"])
def test_write_clean_onto_the_input_manifest_is_refused_before_any_work(
    manifest: Path,
    alias: str,
    no_work: list[int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = manifest.read_bytes()
    target = {"same": str(manifest), "dot-relative": "./train.json"}.get(alias)
    monkeypatch.chdir(manifest.parent)
    if alias == "symlink":
        (manifest.parent / "link.json").symlink_to(manifest)
        target = str(manifest.parent / "link.json")
    if alias == "hardlink":
        os.link(manifest, manifest.parent / "hard.json")
        target = str(manifest.parent / "hard.json")
    code = main(["data", "check", str(manifest), "-q", "--write-clean", target, "--overwrite"])
    assert code == 2
    _one_line_error(capsys, "input manifest")
    assert manifest.read_bytes() == before and no_work == []
    assert not manifest.with_name("train.check.json").exists()


def test_write_clean_onto_an_existing_file_needs_overwrite(
    manifest: Path, no_work: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    other = manifest.with_name("other.jsonl")
    other.write_text('{"wav": "keep.wav", "label": "mine"}\n', encoding="utf-8")
    assert main(["data", "check", str(manifest), "-q", "--write-clean", str(other)]) == 2
    _one_line_error(capsys, str(other), "--overwrite")
    assert other.read_text(encoding="utf-8") == '{"wav": "keep.wav", "label": "mine"}\n' and no_work == []
    assert main(["data", "check", str(manifest), "-q", "--write-clean", str(other), "--overwrite"]) == 1
    assert [json.loads(line)["label"] for line in other.read_text().splitlines()] == ["a.wav", "b.wav"]
    assert _temp_leftovers(manifest.parent) == []


@pytest.mark.parametrize("where", ["manifest", "clean", "folder"])
def test_report_is_never_written_onto_an_input_or_the_clean_manifest(
    manifest: Path, where: str, no_work: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    before = manifest.read_bytes()
    clean = manifest.with_name("clean.json")
    report = {"manifest": manifest, "clean": clean, "folder": manifest.parent / "audio"}[where]
    argv = ["data", "check", str(manifest), "-q", "--report", str(report), "--write-clean", str(clean)]
    assert main(argv) == 2
    _one_line_error(capsys, str(report))
    assert manifest.read_bytes() == before and not clean.exists() and no_work == []


def test_unknown_clean_manifest_format_is_refused_before_any_work(
    manifest: Path, no_work: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["data", "check", str(manifest), "-q", "--write-clean", str(manifest.with_name("c.txt"))]) == 2
    )
    _one_line_error(capsys, "c.txt", ".jsonl")
    assert no_work == []


def test_report_on_a_read_only_filesystem_fails_in_one_line_before_any_work(
    manifest: Path, no_work: list[int], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ro = manifest.parent / "ro"
    ro.mkdir()
    real = tempfile.mkstemp

    def read_only(*args: object, dir: object = None, **kwargs: object) -> tuple[int, str]:  # noqa: A002
        if dir is not None and Path(str(dir)).resolve().is_relative_to(ro.resolve()):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(*args, dir=dir, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    report = ro / "sub" / "report.json"
    assert main(["data", "check", str(manifest), "-q", "--report", str(report)]) == 2
    _one_line_error(capsys, str(report), "Read-only file system")
    assert no_work == [] and not (ro / "sub").exists()
    clean = ro / "clean.json"
    assert main(["data", "check", str(manifest), "-q", "--write-clean", str(clean)]) == 2
    _one_line_error(capsys, str(clean), "Read-only file system")
    assert no_work == []


def test_report_under_a_file_fails_in_one_line_before_any_work(
    manifest: Path, no_work: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    report = manifest.parent / "audio" / "a.wav" / "report.json"
    assert main(["data", "check", str(manifest), "-q", "--report", str(report)]) == 2
    _one_line_error(capsys, str(report))
    assert no_work == []


def test_disk_full_while_writing_is_one_line_and_keeps_the_old_files(
    manifest: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    report = manifest.with_name("train.check.json")
    clean = manifest.with_name("clean.json")
    assert main(["data", "check", str(manifest), "-q", "--write-clean", str(clean)]) == 1
    capsys.readouterr()
    old_report, old_clean = report.read_bytes(), clean.read_bytes()
    real_write_text, real_open = Path.write_text, open

    def full(self: Path, *args: object, **kwargs: object) -> int:
        if self.name.endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_text(self, *args, **kwargs)  # type: ignore[arg-type]

    def full_open(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        if "w" in mode and str(file).endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "write_text", full)
    monkeypatch.setattr("builtins.open", full_open)
    argv = ["data", "check", str(manifest), "-q", "--write-clean", str(clean), "--overwrite"]
    assert main(argv) == 2
    _one_line_error(capsys, str(report), "No space left on device")
    assert report.read_bytes() == old_report and clean.read_bytes() == old_clean
    assert _temp_leftovers(manifest.parent) == []


@pytest.mark.parametrize(
    "option", ["--min-duration=nan", "--min-duration=inf", "--min-duration=-1", "--workers=0", "--workers=-2"]
)
def test_bad_numeric_options_of_data_check_are_one_line(
    manifest: Path, option: str, no_work: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "check", str(manifest), "-q", option]) == 2
    _one_line_error(capsys, option.split("=")[0].removeprefix("--").replace("-", "_"))
    assert no_work == [] and not manifest.with_name("train.check.json").exists()


@pytest.mark.parametrize(
    "option",
    [
        "--clip-seconds=nan",
        "--clip-seconds=inf",
        "--clip-seconds=-1",
        "--test-fraction=nan",
        "--test-fraction=-0.5",
        "--ensemble-prob=nan",
        "--ensemble-prob=inf",
        "--caption-drop-prob=-1",
        "--n-clips=0",
        "--n-clips=-5",
        "--workers=-1",
        "--clips-per-piece=0",
        "--sample-rate=-16000",
        "--bpm-min=-10",
    ],
)
def test_bad_numeric_options_of_build_demo_are_one_line(
    tmp_path: Path, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["data", "build-demo", str(out), "--no-progress", option]) == 2
    _one_line_error(capsys)
    assert not out.exists()


# --- preprocess (the library function; its command line is cli/train.py's) ---


@pytest.fixture(scope="module")
def parts() -> tuple:
    import torch

    from fluxmusic.audio import AudioVAE
    from fluxmusic.text.factory import build_conditioner

    torch.manual_seed(0)
    vae = AudioVAE.from_config(block_out_channels=[8, 16, 16], norm_num_groups=4, layers_per_block=1).eval()
    return vae, build_conditioner("tiny", txt_dim=40, pooled_dim=24, seed=0)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("batch_size", 0),
        ("batch_size", -1),
        ("shard_size", 0),
        ("shard_size", -3),
        ("max_tries", 0),
        ("min_duration", math.nan),
        ("min_duration", -1.0),
        ("min_duration", math.inf),
        ("duration", math.nan),
        ("duration", math.inf),
        ("duration", 0.0),
        ("world_size", 0),
        ("rank", 2),
        ("rank", -1),
    ],
)
def test_preprocess_refuses_bad_options_naming_them(
    manifest: Path, parts: tuple, option: str, value: float
) -> None:
    from fluxmusic.data.preprocess import preprocess

    vae, text = parts
    options = {"duration": 0.64, "world_size": 2, option: value}
    duration = options.pop("duration")
    out = manifest.parent / "out"
    with pytest.raises(InputError, match=option):
        preprocess(manifest, out, vae, text, duration, **options)  # type: ignore[arg-type]
    assert not out.exists()


@pytest.mark.parametrize("where", ["out_dir", "shards"])
def test_preprocess_output_that_is_an_existing_file_is_an_input_error(
    manifest: Path, parts: tuple, where: str
) -> None:
    from fluxmusic.data.preprocess import preprocess

    vae, text = parts
    out = manifest.parent / "out"
    if where == "out_dir":
        out.write_text("not a folder")
    else:
        out.mkdir()
        (out / "shards").write_text("not a folder")
    with pytest.raises(InputError, match="not a folder|is a file"):
        preprocess(manifest, out, vae, text, 0.64)


def test_preprocess_output_on_a_read_only_filesystem_is_a_one_line_error_before_any_work(
    manifest: Path, parts: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fluxmusic.data.preprocess import preprocess

    vae, text = parts
    out = manifest.parent / "out"
    out.mkdir()
    real = tempfile.mkstemp

    def read_only(*args: object, dir: object = None, **kwargs: object) -> tuple[int, str]:  # noqa: A002
        if dir is not None and Path(str(dir)).resolve().is_relative_to(out.resolve()):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(*args, dir=dir, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(FluxmusicError, match="Read-only file system") as info:
        preprocess(manifest, out, vae, text, 0.64)
    assert str(out) in str(info.value) and "\n" not in str(info.value)
    assert list(out.iterdir()) == []


def test_preprocess_names_missing_files_relative_to_the_manifest(
    manifest: Path, parts: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fluxmusic.data.preprocess import preprocess

    elsewhere = manifest.parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    vae, text = parts
    report = preprocess(manifest, manifest.parent / "out", vae, text, 0.64, min_duration=0.5)
    (skip,) = report.skipped
    assert skip["item"] == 2 and skip["path"] == str(manifest.parent / "audio" / "gone.wav")
    assert str(elsewhere) not in skip["reason"] and "working directory" not in skip["reason"]
    assert "audio/gone.wav" in skip["reason"] and "manifest" in skip["reason"]
