"""Demo dataset builder: pinned clips render with the requested attributes, splits, determinism, config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fluxmusic.data.demo import INSTRUMENTS, ClipRequest, DemoDatasetConfig, build_demo_dataset, plan_tasks
from fluxmusic.data.demo.captions import MOODS, make_caption, mood_class, tempo_class
from fluxmusic.data.demo.config import DEFAULT_SOUNDFONT
from fluxmusic.data.demo.render import fluidsynth_available

needs_fluidsynth = pytest.mark.skipif(
    not fluidsynth_available("fluidsynth", DEFAULT_SOUNDFONT),
    reason=f"needs the fluidsynth binary and {DEFAULT_SOUNDFONT} "
    "(apt-get install fluidsynth fluid-soundfont-gm)",
)

REEL = "ryansMammoth/AcaciaReel.abc"
CHORALE = "bach/bwv66.6.mxl"
FOLK_SONG = "essenFolksong/han1.abc#1"
REQUESTS = (
    ClipRequest(REEL, programs=(0,), bpm=80, velocity=96, start_measure=1, caption_style="sentence"),
    ClipRequest(REEL, programs=(0,), bpm=160, velocity=96, start_measure=1, caption_style="tags"),
    ClipRequest(CHORALE, family="organ", texture="solo", bpm=72, velocity=50, caption_style="paraphrase"),
    ClipRequest(
        FOLK_SONG, family="brass", texture="ensemble", bpm=140, velocity=112, caption_style="shuffled_tags"
    ),
)


def _metadata(out_dir: Path) -> list[dict]:
    return [
        json.loads(line) for line in (out_dir / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
    ]


@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoDatasetConfig, list[dict]]:
    out = tmp_path_factory.mktemp("demo_pinned")
    config = DemoDatasetConfig(out_dir=out, requests=REQUESTS, caption_drop_prob=0.0, keep_midi=True, seed=3)
    report = build_demo_dataset(config)
    assert report.n_clips == len(REQUESTS) and report.n_rejected == 0
    return config, _metadata(out)


@needs_fluidsynth
def test_pinned_clips_are_aligned_audio_caption_pairs(pinned: tuple[DemoDatasetConfig, list[dict]]) -> None:
    import soundfile as sf

    config, records = pinned
    assert [r["piece_id"] for r in records] == [r.piece_id for r in REQUESTS]
    manifests = {s: json.loads((config.out_dir / f"{s}.json").read_text()) for s in ("train", "test")}
    labels = {m["wav"]: m["label"] for ms in manifests.values() for m in ms}
    tempi = {m["wav"]: (m["bpm"], m["beat_phase"]) for ms in manifests.values() for m in ms}
    for req, rec in zip(REQUESTS, records, strict=True):
        assert tempi[rec["wav"]] == (req.bpm, pytest.approx(rec["start_quarter"] % 1.0))
        info = sf.info(str(config.out_dir / rec["wav"]))
        assert (info.frames, info.samplerate, info.channels) == (config.n_samples, 16000, 1)
        audio, _ = sf.read(str(config.out_dir / rec["wav"]), dtype="float32")
        assert np.sqrt(np.mean(audio**2)) > 1e-3, "clip is near-silent"
        assert labels[rec["wav"]] == rec["caption"] and rec["wav"].startswith(f"audio/{rec['split']}/")
        caption = rec["caption"].lower()
        names = [n.lower() for p in rec["programs"] for n in INSTRUMENTS[p].names]
        assert any(n in caption for n in names), (caption, names)
        assert f"{req.bpm} bpm" in caption or f"{req.bpm} beats per minute" in caption
        assert (rec["bpm"], rec["velocity"]) == (req.bpm, req.velocity)
        assert rec["tempo_class"] == tempo_class(req.bpm)
        assert rec["mood"] in MOODS[mood_class(rec["mode"], rec["bpm"])]
        assert rec["caption_style"] == req.caption_style
    assert records[0]["programs"] == [0] and records[0]["family"] == "piano" and records[0]["genre"] == "reel"
    assert (
        records[2]["family"] == "organ"
        and records[2]["texture"] == "solo"
        and records[2]["genre"] == "chorale"
    )
    assert records[3]["family"] == "brass" and records[3]["texture"] == "ensemble"
    assert all(INSTRUMENTS[p].family == "brass" for p in records[3]["programs"])
    assert records[2]["dynamics"] == "p" and records[3]["dynamics"] == "ff"


@needs_fluidsynth
def test_tempo_is_written_into_the_midi_and_heard(pinned: tuple[DemoDatasetConfig, list[dict]]) -> None:
    import librosa
    import mido

    config, records = pinned
    onsets = []
    for rec in records[:2]:
        midi = mido.MidiFile(str(config.out_dir / "midi" / rec["split"] / f"{rec['id']}.mid"))
        tempi = [m.tempo for m in midi if m.type == "set_tempo"]
        assert tempi == [mido.bpm2tempo(rec["bpm"])]
        now, times = 0.0, []
        for msg in midi:  # iterating a MidiFile yields delta times in seconds
            now += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                times.append(now)
        onsets.append(np.array(times))
    slow, fast = onsets
    # Same window start: at 2x BPM the same notes come twice as early, and twice as many fit in the clip.
    np.testing.assert_allclose(fast[: len(slow)], slow / 2.0, atol=2e-3)
    assert 1.6 <= len(fast) / len(slow) <= 2.4
    heard = []  # onsets detected in the audio (at least 64 ms apart): the rate roughly doubles too
    for rec in records[:2]:
        y, sr = librosa.load(str(config.out_dir / rec["wav"]), sr=None)
        heard.append(len(librosa.onset.onset_detect(y=y, sr=sr, hop_length=512, wait=2)))
    assert 1.4 <= heard[1] / heard[0] <= 2.6, heard


@needs_fluidsynth
def test_split_by_piece_determinism_and_resume(tmp_path: Path) -> None:
    kwargs = dict(n_clips=6, seed=11, clips_per_piece=2, test_fraction=0.5, collections=("ryans", "essen"))
    first = DemoDatasetConfig(out_dir=tmp_path / "a", **kwargs)
    build_demo_dataset(first)
    records = _metadata(first.out_dir)
    splits: dict[str, set[str]] = {}
    for r in records:
        splits.setdefault(r["piece_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in splits.values()), splits
    assert {r["split"] for r in records} == {"train", "test"}
    assert len(splits) == 4 and len(records) == 6  # 3 clips per collection, at most 2 per piece

    build_demo_dataset(DemoDatasetConfig(out_dir=tmp_path / "b", workers=2, **kwargs))
    for name in ("train.json", "test.json", "metadata.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    for r in records:  # FluidSynth renders deterministically, so the audio is byte-identical too
        assert (tmp_path / "a" / r["wav"]).read_bytes() == (tmp_path / "b" / r["wav"]).read_bytes()

    stamps = {r["wav"]: (first.out_dir / r["wav"]).stat().st_mtime_ns for r in records}
    report = build_demo_dataset(first)  # resume: everything is done, nothing is rendered again
    assert report.n_clips == 6 and report.stats["build"]["n_processed_now"] == 0
    assert stamps == {r["wav"]: (first.out_dir / r["wav"]).stat().st_mtime_ns for r in records}
    with pytest.raises(ValueError, match="different config"):
        build_demo_dataset(DemoDatasetConfig(out_dir=tmp_path / "a", **{**kwargs, "seed": 12}))


@needs_fluidsynth
def test_cli_builds_and_prints_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fluxmusic.cli import main

    argv = ["data", "build-demo", str(tmp_path), "--n-clips", "2", "--collections", "ryans", "--no-progress"]
    assert main(argv) == 0
    assert "clips: 2 built of 2 planned" in capsys.readouterr().out
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["n_clips"] == 2 and stats["collection"] == {"ryans": 2}
    with pytest.raises(SystemExit):
        main(["data", "build-demo", str(tmp_path), "--families", "kazoo"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_clips": 0},
        {"bpm_range": (200, 100)},
        {"families": ("kazoo",)},
        {"collections": ("beatles",)},
        {"test_fraction": 1.0},
        {"clip_seconds": -1.0},
        {"workers": -1},
        {"caption_styles": ("haiku",)},
        {"requests": (ClipRequest(REEL, split="train"), ClipRequest(REEL, split="test"))},
    ],
)
def test_invalid_config_raises(kwargs: dict, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        DemoDatasetConfig(out_dir=tmp_path, **kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"bpm": 0}, {"velocity": 128}, {"family": "kazoo"}, {"programs": (200,)}, {"texture": "duet"}]
)
def test_invalid_request_raises(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ClipRequest(REEL, **kwargs)


def test_unknown_piece_raises(tmp_path: Path) -> None:
    config = DemoDatasetConfig(out_dir=tmp_path, requests=(ClipRequest("bach/no-such-piece.mxl"),))
    with pytest.raises(ValueError, match="unknown piece"):
        plan_tasks(config)


def test_plan_is_deterministic_and_spread_over_collections(tmp_path: Path) -> None:
    config = DemoDatasetConfig(out_dir=tmp_path, n_clips=500, seed=5)
    tasks = plan_tasks(config)
    assert tasks == plan_tasks(DemoDatasetConfig(out_dir=tmp_path, n_clips=500, seed=5))
    indices = sorted(s.index for t in tasks for s in t.slots)
    assert indices == list(range(500))
    assert {t.pieces[0].collection for t in tasks} == set(config.collections)
    primaries = [t.pieces[0].piece_id for t in tasks]
    assert len(primaries) == len(set(primaries))


def test_caption_words_follow_tempo_and_mode() -> None:
    from fluxmusic.data.demo.captions import CaptionAttributes

    assert [tempo_class(b) for b in (60, 90, 120, 170)] == ["slow", "moderate", "fast", "very fast"]
    attrs = CaptionAttributes(
        instruments=(INSTRUMENTS[40].names,), section=False, ensemble_name=None, arrangement="melody",
        genre="reel", region="Irish", composer="traditional", era=None, bpm=66, tonic="E", mode="minor",
        time_signature="4/4", dynamics="pp", register="middle",
    )  # fmt: skip
    for seed in range(20):
        rng = np.random.default_rng(seed)
        caption, mentioned, mood = make_caption(attrs, rng, "sentence", drop_prob=0.0)
        assert mood in ("sad", "melancholic", "mournful", "sombre") and mood in caption
        assert "66 " in caption and "reel" in caption and ("violin" in caption or "fiddle" in caption)
        assert "bpm" in mentioned and "mood" in mentioned
