"""``preprocess``: VAE posteriors + text embeddings in shards; bad items listed; resumable; rank-sharded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fluxmusic.audio import AudioVAE
from fluxmusic.data.dataset import LatentShardDataset, collate
from fluxmusic.data.preprocess import preprocess
from fluxmusic.data.shards import read_index, shard_items, write_index
from fluxmusic.text.factory import build_conditioner

DURATION = 0.64


@pytest.fixture(scope="module")
def parts() -> tuple[AudioVAE, object]:
    torch.manual_seed(0)
    vae = AudioVAE.from_config(block_out_channels=[8, 16, 16], norm_num_groups=4, layers_per_block=1).eval()
    return vae, build_conditioner("tiny", txt_dim=40, pooled_dim=24, seed=0)


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    audio = tmp_path / "audio"
    audio.mkdir()
    items = []
    for i in range(5):
        t = np.arange(int(16000 * (0.8 + 0.5 * i))) / 16000
        sf.write(audio / f"c{i}.wav", (0.3 * np.sin(2 * np.pi * 200 * (i + 1) * t)).astype(np.float32), 16000)
        items.append({"wav": f"audio/c{i}.wav", "label": f"clip {i}"})
    sf.write(audio / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    (audio / "broken.wav").write_bytes(b"garbage" * 50)
    sf.write(audio / "short.wav", np.ones(1600, dtype=np.float32), 16000)
    items.insert(2, {"wav": "audio/silent.wav", "label": "silence"})
    items += [
        {"wav": "audio/missing.wav", "label": "gone"},
        {"wav": "audio/broken.wav", "label": "broken"},
        {"wav": "audio/short.wav", "label": "short"},
    ]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(items))
    return path


def _run(manifest: Path, out: Path, parts: tuple, **kwargs: object):  # noqa: ANN202
    vae, text = parts
    report = preprocess(
        manifest, out, vae, text, DURATION, shard_size=2, batch_size=2, min_duration=0.5, **kwargs
    )
    return report, write_index(out, vae, text, DURATION, manifest)


def test_shards_hold_posteriors_and_text_and_list_bad_items(
    manifest: Path, tmp_path: Path, parts: tuple
) -> None:
    report, index = _run(manifest, tmp_path / "out", parts)
    assert report.encoded == 5 and report.rows == 5
    assert index["num_rows"] == 5 and index["latent_shape"] == [8, 16, 16]
    assert [s["count"] for s in index["shards"]] == [2, 2, 1]
    skipped = {s["item"]: s for s in index["skipped"]}
    assert sorted(skipped) == [3, 7, 8, 9]  # 1-based item numbers, with paths and reasons
    assert skipped[3]["path"].endswith("silent.wav") and "silent" in skipped[3]["reason"]
    assert "not found" in skipped[7]["reason"] and "decode" in skipped[8]["reason"]
    assert "too_short" in skipped[9]["reason"]
    rows = shard_items(tmp_path / "out")
    assert [r["label"] for r in rows] == [f"clip {i}" for i in range(5)]

    vae, text = parts
    dataset = LatentShardDataset(tmp_path / "out")
    a, b, again = dataset[(0, 1)], dataset[(0, 2)], dataset[(0, 1)]
    assert torch.equal(a.latent, again.latent) and not torch.equal(a.latent, b.latent)  # fresh, seeded
    expected = text.encode(["clip 0"])
    assert torch.allclose(a.txt, expected.txt[0], atol=1e-6) and torch.allclose(a.y, expected.y[0], atol=1e-6)
    draws = torch.stack([dataset[(1, s)].latent for s in range(200)])
    from safetensors import safe_open

    with safe_open(str(tmp_path / "out" / index["shards"][0]["file"]), "pt") as f:
        mean, logvar = f.get_tensor("mean")[1], f.get_tensor("logvar")[1]
    assert torch.allclose(draws.mean(0), mean, atol=4 * float(torch.exp(0.5 * logvar).max()) / 200**0.5)
    batch = collate([dataset[(i, i)] for i in range(3)])
    assert batch.latents.shape == (3, 8, 16, 16) and batch.txt.shape[0] == 3 and batch.captions[2] == "clip 2"
    empty_txt, _, _ = dataset.empty_text()
    assert torch.equal(empty_txt, text.encode([""]).txt[0])


def test_resume_skips_finished_items(manifest: Path, tmp_path: Path, parts: tuple) -> None:
    out = tmp_path / "out"
    _run(manifest, out, parts)
    again, index = _run(manifest, out, parts)
    assert again.encoded == 0 and again.already_done == 9  # 5 encoded + 4 skipped earlier
    shards = sorted((out / "shards").glob("*.safetensors"))
    shards[1].unlink()  # as if the run had died before writing this shard
    redo, index = _run(manifest, out, parts)
    assert redo.encoded == 2 and index["num_rows"] == 5
    assert sorted(r["index"] for r in shard_items(out)) == [0, 1, 3, 4, 5]


def test_ranks_split_the_work(manifest: Path, tmp_path: Path, parts: tuple) -> None:
    vae, text = parts
    out = tmp_path / "out"
    done = [
        preprocess(manifest, out, vae, text, DURATION, rank=r, world_size=2, min_duration=0.5) for r in (0, 1)
    ]
    assert done[0].encoded + done[1].encoded == 5 and min(d.encoded for d in done) >= 2
    index = write_index(out, vae, text, DURATION, manifest)
    assert index["num_rows"] == 5 and len(index["skipped"]) == 4
    assert sorted(p.name for p in out.glob("skipped-r*.jsonl")) == ["skipped-r0.jsonl", "skipped-r1.jsonl"]
    assert read_index(out)["text"]["txt_dim"] == 40


def test_windows_mode_encodes_every_window(manifest: Path, tmp_path: Path, parts: tuple) -> None:
    _, index = _run(manifest, tmp_path / "out", parts, crop="windows")
    windows = [r for r in shard_items(tmp_path / "out") if r["index"] == 5]  # a 2.8 s clip
    assert [w["window"] for w in windows] == [0, 1, 2, 3]  # 0.64 s windows; the 0.24 s tail is dropped
    assert [w["offset"] for w in windows] == pytest.approx([0.0, 0.64, 1.28, 1.92])


def test_duration_must_fit_the_vae(manifest: Path, tmp_path: Path, parts: tuple) -> None:
    vae, text = parts
    with pytest.raises(ValueError, match="multiple of 8"):
        preprocess(manifest, tmp_path / "out", vae, text, 0.5)
