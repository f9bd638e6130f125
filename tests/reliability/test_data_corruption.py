"""Corrupt audio is skipped and reported, never trained on: non-finite samples and truncated files.

Covers ``fluxmusic data check`` (both the default full check and the header check training runs by
default), the training loaders (audio clips and preprocessed shards) and ``preprocess``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from fluxmusic.cli import main
from fluxmusic.data.check import check_items, check_manifest
from fluxmusic.data.dataset import AudioClipDataset, LatentShardDataset, SkippedItem, collate
from fluxmusic.data.manifest import read_manifest
from fluxmusic.data.preprocess import preprocess
from fluxmusic.data.shards import write_index

RATE = 16000
DURATION = 0.64


def _tone(seconds: float, channels: int = 1) -> np.ndarray:
    wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(RATE * seconds)) / RATE)).astype(np.float32)
    return wave if channels == 1 else np.stack([wave] * channels, axis=1)


def _non_finite(kind: str) -> np.ndarray:
    """2 s float audio: all NaN, NaN in channel 1 only, or +inf, every 0.25 s (so every window has some)."""
    if kind == "all_nan":
        return np.full(2 * RATE, np.nan, dtype=np.float32)
    if kind == "nan_channel_1":
        wave = _tone(2.0, channels=2)
        wave[:: RATE // 4, 1] = np.nan
        return wave
    wave = _tone(2.0)
    wave[RATE // 8 :: RATE // 4] = np.inf
    return wave


def _truncated_wav(path: Path, declared_s: float = 6.0, kept_s: float = 2.0, subtype: str = "PCM_16") -> Path:
    """A WAV whose header declares ``declared_s`` seconds but whose data stops after ``kept_s``."""
    full = path.with_suffix(".full.wav")
    sf.write(full, _tone(declared_s), RATE, subtype=subtype)
    raw = full.read_bytes()
    full.unlink()
    data = raw.index(b"data") + 8
    bytes_per_frame = {"PCM_16": 2, "FLOAT": 4}[subtype]
    path.write_bytes(raw[: data + int(kept_s * RATE) * bytes_per_frame])
    return path


def _truncated_aiff(path: Path) -> Path:
    full = path.with_suffix(".full.aiff")
    sf.write(full, _tone(6.0), RATE)
    raw = full.read_bytes()
    full.unlink()
    path.write_bytes(raw[: len(raw) // 3])
    return path


def _manifest(tmp_path: Path, names: list[str]) -> Path:
    path = tmp_path / "train.json"
    path.write_text(json.dumps([{"wav": f"audio/{n}", "label": n} for n in names]))
    return path


@pytest.fixture()
def audio(tmp_path: Path) -> Path:
    folder = tmp_path / "audio"
    folder.mkdir()
    sf.write(folder / "good.wav", _tone(2.0), RATE)
    for kind in ("all_nan", "nan_channel_1", "inf"):
        sf.write(folder / f"{kind}.wav", _non_finite(kind), RATE, subtype="FLOAT")
    _truncated_wav(folder / "truncated.wav")
    _truncated_wav(folder / "truncated_float.wav", subtype="FLOAT")
    _truncated_aiff(folder / "truncated.aiff")
    return folder


@pytest.mark.parametrize("decode", [True, False], ids=["full-check", "header-check"])
@pytest.mark.parametrize("kind", ["all_nan", "nan_channel_1", "inf"])
def test_check_calls_non_finite_audio_corrupt(audio: Path, kind: str, decode: bool) -> None:
    report = check_manifest(_manifest(audio.parent, [f"{kind}.wav", "good.wav"]), decode=decode)
    bad, good = report.items
    assert bad.status == "corrupt" and "NaN or Inf" in bad.message, bad.describe()
    assert good.ok


@pytest.mark.parametrize("decode", [True, False], ids=["full-check", "header-check"])
@pytest.mark.parametrize("name", ["truncated.wav", "truncated_float.wav", "truncated.aiff"])
def test_check_calls_a_truncated_file_corrupt_naming_both_lengths(
    audio: Path, name: str, decode: bool
) -> None:
    verdict = check_manifest(_manifest(audio.parent, [name]), decode=decode).items[0]
    assert verdict.status == "corrupt", verdict.describe()
    assert "truncated" in verdict.message and "6.000 s" in verdict.message
    assert ("2.000 s" if name.endswith(".wav") else "1.99") in verdict.message


def test_complete_wavs_are_not_called_truncated(tmp_path: Path) -> None:
    """Trailing chunks, odd-sized chunks and streamed (unknown-length) headers are complete files."""
    folder = tmp_path / "audio"
    folder.mkdir()
    sf.write(folder / "plain.wav", _tone(2.0), RATE)
    raw = (folder / "plain.wav").read_bytes()
    (folder / "trailing.wav").write_bytes(raw + b"LIST\x05\x00\x00\x00abcde\x00")
    data = raw.index(b"data")
    streamed = bytearray(raw)
    streamed[4:8] = streamed[data + 4 : data + 8] = struct.pack("<I", 0xFFFFFFFF)
    (folder / "streamed.wav").write_bytes(bytes(streamed))
    odd = raw[:36] + b"junk\x03\x00\x00\x00xyz\x00" + raw[36:]  # an odd chunk before "data", padded
    (folder / "odd_chunk.wav").write_bytes(odd)
    sf.write(folder / "rf64.wav", _tone(2.0), RATE, format="RF64")
    sf.write(folder / "stereo24.wav", _tone(2.0, channels=2), RATE, subtype="PCM_24")
    sf.write(folder / "plain.aiff", _tone(2.0), RATE)
    names = [
        "plain.wav",
        "trailing.wav",
        "streamed.wav",
        "odd_chunk.wav",
        "rf64.wav",
        "stereo24.wav",
        "plain.aiff",
    ]
    for decode in (True, False):
        report = check_manifest(_manifest(tmp_path, names), decode=decode)
        assert [c.describe() for c in report.bad] == []


def test_cli_data_check_reports_non_finite_and_truncated_files(
    audio: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(audio.parent, ["good.wav", "nan_channel_1.wav", "truncated.wav"])
    clean = audio.parent / "clean.json"
    assert main(["data", "check", str(manifest), "-q", "--write-clean", str(clean)]) == 1
    out = capsys.readouterr().out
    assert "item 2: " in out and "nan_channel_1.wav: corrupt" in out
    assert "item 3: " in out and "truncated.wav: corrupt" in out
    assert "1 of 3 items ok" in out
    assert [i.path.name for i in read_manifest(clean)] == ["good.wav"]


def test_training_header_check_skips_them(audio: Path) -> None:
    """Training's default data check is the header check (``data.check = "header"``)."""
    items = read_manifest(_manifest(audio.parent, ["all_nan.wav", "inf.wav", "truncated.wav", "good.wav"]))
    verdicts = check_items(items, 1.0, decode=False)
    assert [v.status for v in verdicts] == ["corrupt", "corrupt", "corrupt", "ok"]


@pytest.mark.parametrize("name", ["all_nan.wav", "nan_channel_1.wav", "inf.wav", "truncated.wav"])
def test_audio_loader_skips_corrupt_items(audio: Path, name: str) -> None:
    items = read_manifest(_manifest(audio.parent, [name, "good.wav"]))
    dataset = AudioClipDataset(items, 0.5)
    bad, good = dataset[(0, 3)], dataset[(1, 3)]
    if name == "nan_channel_1.wav":  # training reads channel 0, which is finite: nothing to skip
        assert not isinstance(bad, SkippedItem) and torch.isfinite(bad.waveform).all()
        return
    assert isinstance(bad, SkippedItem), "a corrupt item reached training"
    assert bad.reason.startswith("corrupt") and bad.path == str(audio / name)
    batch = collate([bad, good])
    assert batch.indices == [1] and torch.isfinite(batch.waveforms).all()


def test_audio_loader_skips_audio_that_overflows_when_normalised(tmp_path: Path) -> None:
    folder = tmp_path / "audio"
    folder.mkdir()
    huge = np.full(RATE, 3e38, dtype=np.float32)
    huge[::2] = -3e38
    sf.write(folder / "huge.wav", huge, RATE, subtype="FLOAT")
    sample = AudioClipDataset(read_manifest(_manifest(tmp_path, ["huge.wav"])), 0.5)[(0, 0)]
    assert isinstance(sample, SkippedItem) or torch.isfinite(sample.waveform).all()


@pytest.fixture(scope="module")
def parts() -> tuple:
    from fluxmusic.audio import AudioVAE
    from fluxmusic.text.factory import build_conditioner

    torch.manual_seed(0)
    vae = AudioVAE.from_config(block_out_channels=[8, 16, 16], norm_num_groups=4, layers_per_block=1).eval()
    return vae, build_conditioner("tiny", txt_dim=40, pooled_dim=24, seed=0)


def _shard_tensors(out: Path) -> list[dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    return [load_file(str(p)) for p in sorted((out / "shards").glob("*.safetensors"))]


def test_preprocess_skips_corrupt_audio_and_writes_only_finite_latents(audio: Path, parts: tuple) -> None:
    names = ["good.wav", "all_nan.wav", "inf.wav", "truncated.wav"]
    manifest = _manifest(audio.parent, names)
    out = audio.parent / "out"
    vae, text = parts
    report = preprocess(manifest, out, vae, text, DURATION, min_duration=0.5)
    index = write_index(out, vae, text, DURATION, manifest)
    assert report.encoded == 1 and index["num_rows"] == 1
    skipped = {s["item"]: s["reason"] for s in index["skipped"]}
    assert sorted(skipped) == [2, 3, 4] and all(r.startswith("corrupt") for r in skipped.values()), skipped
    for tensors in _shard_tensors(out):
        assert all(torch.isfinite(t.float()).all() for t in tensors.values())


class _NanVae:
    """Wraps a VAE so that the posterior of the ``bad_rows``-th clips it encodes (counting from 0) is NaN."""

    def __init__(self, vae: torch.nn.Module, bad_rows: set[int]) -> None:
        self.vae, self.bad_rows, self.calls = vae, bad_rows, 0
        self.downsample, self.device = vae.downsample, vae.device

    def encode(self, mel: torch.Tensor) -> SimpleNamespace:
        posterior = self.vae.encode(mel)
        mean, logvar = posterior.mean.clone(), posterior.logvar.clone()
        for row in range(mel.shape[0]):
            if self.calls + row in self.bad_rows:
                mean[row] = float("nan")
        self.calls += mel.shape[0]
        return SimpleNamespace(mean=mean, logvar=logvar)


def test_preprocess_never_writes_a_non_finite_latent(tmp_path: Path, parts: tuple) -> None:
    folder = tmp_path / "audio"
    folder.mkdir()
    for i in range(4):
        sf.write(folder / f"c{i}.wav", _tone(1.0 + i * 0.1), RATE)
    manifest = _manifest(tmp_path, [f"c{i}.wav" for i in range(4)])
    vae, text = parts
    out = tmp_path / "out"
    report = preprocess(manifest, out, _NanVae(vae, {1}), text, DURATION, batch_size=2, shard_size=2)
    assert report.encoded == 3 and report.rows == 3
    assert [(s["item"], s["reason"].split(":")[0]) for s in report.skipped] == [(2, "corrupt")]
    rows = [t["mean"] for t in _shard_tensors(out)]
    assert sum(r.shape[0] for r in rows) == 3 and all(torch.isfinite(r).all() for r in rows)
    again = preprocess(manifest, out, vae, text, DURATION, batch_size=2, shard_size=2)
    assert again.encoded == 0 and again.already_done == 4  # the skip is recorded, not redone silently


def test_latent_loader_skips_non_finite_rows(tmp_path: Path, parts: tuple) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    folder = tmp_path / "audio"
    folder.mkdir()
    for i in range(2):
        sf.write(folder / f"c{i}.wav", _tone(1.0), RATE)
    manifest = _manifest(tmp_path, ["c0.wav", "c1.wav"])
    vae, text = parts
    out = tmp_path / "out"
    preprocess(manifest, out, vae, text, DURATION)
    write_index(out, vae, text, DURATION, manifest)
    (shard,) = (out / "shards").glob("*.safetensors")
    with safe_open(str(shard), "pt") as handle:
        metadata, tensors = handle.metadata(), {k: handle.get_tensor(k) for k in handle.keys()}
    tensors["logvar"][0, 0, 0, 0] = float("inf")  # an older or damaged shard
    save_file(tensors, str(shard), metadata=metadata)
    dataset = LatentShardDataset(out)
    bad, good = dataset[(0, 1)], dataset[(1, 1)]
    assert isinstance(bad, SkippedItem) and bad.reason.startswith("corrupt") and bad.index == 0
    batch = collate([bad, good])
    assert batch.indices == [1] and [s.index for s in batch.skipped] == [0]
    assert torch.isfinite(batch.latents).all()
    assert isinstance(collate([bad]).skipped[0], SkippedItem)
