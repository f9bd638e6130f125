"""``fluxmusic evaluate GENERATED --reference REF``: offline runs, the JSON, and the bad-input table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fluxmusic.cli import main
from fluxmusic.cli.evaluate import EMBEDDING_NAMES, METRIC_NAMES

SR = 16000


def _write_set(folder: Path, count: int, base: int, bpm: float = 120.0, prompt: str = "solo bass") -> Path:
    """``count`` clips of decaying tones on every beat, pitches from ``base``; each with a sidecar."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(base)
    for i in range(count):
        t = np.arange(int(0.25 * SR)) / SR
        out = np.zeros(int(2.0 * SR), np.float32)
        for k, start in enumerate(range(0, out.size - t.size, int(60 / bpm * SR))):
            midi = base + int(rng.integers(0, 5)) + (k % 3)
            out[start : start + t.size] += np.sin(2 * np.pi * 440 * 2 ** ((midi - 69) / 12) * t) * np.exp(
                -t / 0.1
            )
        sf.write(folder / f"clip{i:02d}.wav", 0.5 * out / np.abs(out).max(), SR, subtype="PCM_16")
        sidecar = {"prompt": f"{prompt}, {int(bpm)} BPM", "bpm": bpm, "family": "bass"}
        (folder / f"clip{i:02d}.json").write_text(json.dumps(sidecar))
    return folder


@pytest.fixture
def sets(tmp_path: Path) -> dict[str, Path]:
    from fluxmusic.evaluation.family_classifier import FamilyClassifier, FamilyClassifierConfig

    torch.manual_seed(0)
    FamilyClassifier(FamilyClassifierConfig(families=("bass", "pipes"))).save(tmp_path / "judge")
    return {
        "gen": _write_set(tmp_path / "gen", 10, 48),
        "ref": _write_set(tmp_path / "ref", 10, 50),
        "judge": tmp_path / "judge",
        "cache": tmp_path / "cache",
    }


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fluxmusic evaluate: error: "), err
    return lines[0]


def test_names_match_the_registries() -> None:
    from fluxmusic.evaluation.backends import EMBEDDINGS
    from fluxmusic.evaluation.set_metrics import METRICS

    assert tuple(METRICS) == METRIC_NAMES and tuple(EMBEDDINGS) == EMBEDDING_NAMES


def test_offline_note_statistics_run_writes_json(
    sets: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxruntime")
    from fluxmusic.errors import MissingFilesError
    from fluxmusic.evaluation.notes import basic_pitch_model_path

    try:
        basic_pitch_model_path()
    except MissingFilesError:
        pytest.skip("basic-pitch is not installed (pip install --no-deps basic-pitch)")
    out = tmp_path / "m.json"
    argv = [
        "evaluate",
        str(sets["gen"]),
        "--reference",
        str(sets["ref"]),
        "--embedding",
        "basic-pitch",
        "--metrics",
        "fad,fad-inf,fad-clips,tempo",
        "--json",
        str(out),
        "--cache-dir",
        str(sets["cache"]),
        "-q",
    ]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "fad-inf" in table and "generated: 10 clips" in table and "basic-pitch" in table
    saved = json.loads(out.read_text())
    metrics = saved["metrics"]
    assert set(metrics) >= {"fad", "fad-inf", "fad-inf-err", "fad-clips-max", "tempo"}
    assert all(isinstance(v, float) for v in metrics.values()) and metrics["fad"] > 0
    assert saved["embedding"]["backend"] == "basic-pitch" and saved["embedding"]["sample_rate"] == 22050
    assert saved["generated"]["clips"] == 10 and saved["generated"]["seconds_mean"] == pytest.approx(2.0)
    assert saved["reference"]["source"] == str(sets["ref"])
    assert len(saved["details"]["fad-clips"]["per_clip"]) == 10
    assert len(list(sets["cache"].rglob("*.npy"))) == 20
    assert main(argv) == 0  # from the cache: the same numbers
    assert json.loads(out.read_text())["metrics"]["fad"] == pytest.approx(metrics["fad"], rel=1e-6)


def test_family_embedding_kl_and_accuracy(sets: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "f.json"
    argv = [
        "evaluate",
        str(sets["gen"]),
        "--reference",
        str(sets["ref"]),
        "--embedding",
        "family",
        "--classifier",
        str(sets["judge"]),
        "--metrics",
        "fad,kl,family",
        "--json",
        str(out),
        "--no-cache",
        "-q",
    ]
    assert main(argv) == 0
    saved = json.loads(out.read_text())
    assert saved["metrics"]["kl"] >= 0 and 0 <= saved["metrics"]["family"] <= 1
    assert saved["details"]["kl"]["pairs"] == 10 and saved["embedding"]["dim"] == 64


def test_a_folder_named_like_a_tool(sets: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sets["gen"].parent)
    sets["gen"].rename(sets["gen"].parent / "tempo")
    argv = [
        "evaluate",
        "./tempo",
        "--reference",
        "ref",
        "--embedding",
        "family",
        "--classifier",
        "judge",
        "-q",
        "--no-cache",
    ]
    assert main(argv) == 0


def _bad_cases(root: Path, sets: dict[str, Path]) -> dict[str, tuple[list[str], str]]:
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("no audio here")
    bad = _write_set(root / "bad", 3, 50)
    (bad / "clip01.wav").write_bytes(b"this is not audio")
    fewer = _write_set(root / "fewer", 4, 50)
    gen, ref = str(sets["gen"]), str(sets["ref"])
    family = ["--embedding", "family", "--classifier", str(sets["judge"]), "--no-cache"]
    return {
        "missing folder": ([str(root / "nowhere"), "--reference", ref], "nowhere does not exist"),
        "empty set": ([gen, "--reference", str(root / "empty")], "holds no audio clips (1 other files"),
        "non-audio file": ([str(bad), "--reference", ref, *family], "1 of 3 clip(s) unreadable"),
        "not a manifest": ([gen, "--reference", str(root / "empty" / "notes.txt")], "not a manifest"),
        "mismatched pairs": (
            [gen, "--reference", str(fewer), "--metrics", "kl", *family],
            "kl needs paired sets",
        ),
        "unknown metric": ([gen, "--reference", ref, "--metrics", "fad,fid"], "unknown metric 'fid'"),
        "unknown embedding": (
            [gen, "--reference", ref, "--embedding", "vggish"],
            "unknown embedding 'vggish'",
        ),
        "too small": ([str(fewer), "--reference", ref, "--metrics", "fad-inf", *family], "at least 8 clips"),
        "no classifier": (
            [gen, "--reference", ref, "--metrics", "kl", "--embedding", "basic-pitch"],
            "--classifier",
        ),
        "no prompts": (
            [gen, "--reference", ref, "--metrics", "tempo", "--prompts", str(root / "none.txt"), *family],
            "prompts file",
        ),
    }


CASES = (
    "missing folder",
    "empty set",
    "non-audio file",
    "not a manifest",
    "mismatched pairs",
    "unknown metric",
    "unknown embedding",
    "too small",
    "no classifier",
    "no prompts",
)


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line(
    case: str, sets: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, expected = _bad_cases(tmp_path, sets)[case]
    assert main(["evaluate", *argv, "-q"]) == 2
    assert expected in _one_line_error(capsys)


def test_unreadable_clips_can_be_skipped_and_are_counted(sets: dict[str, Path], tmp_path: Path) -> None:
    (sets["gen"] / "clip03.wav").write_bytes(b"RIFF broken")
    out = tmp_path / "s.json"
    argv = [
        "evaluate",
        str(sets["gen"]),
        "--reference",
        str(sets["ref"]),
        "--embedding",
        "family",
        "--classifier",
        str(sets["judge"]),
        "--skip-unreadable",
        "--json",
        str(out),
        "--no-cache",
        "-q",
    ]
    assert main(argv) == 0
    saved = json.loads(out.read_text())
    assert saved["generated"]["clips"] == 9 and list(saved["generated"]["unreadable"]) == [
        str(sets["gen"] / "clip03.wav")
    ]


def test_missing_weights_offline_names_the_hub_id(
    sets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    argv = ["evaluate", str(sets["gen"]), "--reference", str(sets["ref"]), "--embedding", "clap-music", "-q"]
    assert main(argv) == 2
    line = _one_line_error(capsys)
    assert "laion/larger_clap_music" in line and "hf download" in line
