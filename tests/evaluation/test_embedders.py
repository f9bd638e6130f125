"""Embedding backends: the shared channel/rate/window rules, random-weight hub models built from their
exact configs, the offline failure, the on-disk cache; real weights only when they are on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fluxmusic.errors import InputError
from fluxmusic.evaluation.backends import EMBEDDINGS, build_embedder
from fluxmusic.evaluation.embedders import Embedder, FamilyEmbedder, split_windows, to_mono, window_count
from fluxmusic.hub import WeightsNotFoundError


class _Lengths(Embedder):
    """Embeds each window as (its length, its mean): shows the windowing and weighting."""

    name, sample_rate, window_seconds, dim = "lengths", 1000, 2.0, 2

    def embed_windows(self, windows: list[torch.Tensor]) -> torch.Tensor:
        return torch.tensor([[float(w.shape[0]), float(w.mean())] for w in windows])


def test_mono_and_windows() -> None:
    stereo = torch.stack([torch.ones(10), -torch.ones(10)])
    assert torch.equal(to_mono(stereo), torch.zeros(10))
    with pytest.raises(InputError, match=r"\(S,\) or \(C, S\)"):
        to_mono(torch.zeros(1, 2, 3))
    lengths = [w.shape[0] for w in split_windows(torch.zeros(2400), 1000)]
    assert lengths == [1000, 1000]  # a last piece under half a window is dropped
    assert [w.shape[0] for w in split_windows(torch.zeros(2600), 1000)] == [1000, 1000, 600]
    assert [w.shape[0] for w in split_windows(torch.zeros(300), 1000)] == [300]
    assert window_count(5.12, 10.0) == 1 and window_count(25.0, 10.0) == 3 and window_count(24.0, 10.0) == 2


def test_rate_channels_and_length_weighting() -> None:
    emb = _Lengths()
    clip = torch.cat([torch.ones(2000), 3 * torch.ones(1500)])  # at 1 kHz: windows of 2000 and 1500
    rows = emb.embed([clip, torch.stack([clip, clip])], 1000)
    assert rows.shape == (2, 2) and torch.allclose(rows[0], rows[1])
    assert rows[0, 0] == pytest.approx((2000 * 2000 + 1500 * 1500) / 3500)
    assert rows[0, 1] == pytest.approx((2000 * 1 + 1500 * 3) / 3500, rel=1e-5)
    resampled = emb.embed(torch.ones(1, 7000), 2000)  # 3.5 s at 2 kHz -> 3500 samples at 1 kHz
    assert resampled[0, 0] == pytest.approx((2000 * 2000 + 1500 * 1500) / 3500, rel=1e-2)
    with pytest.raises(InputError, match="no clips"):
        emb.embed([], 1000)


@pytest.fixture
def judge_folder(tmp_path: Path) -> Path:
    from fluxmusic.evaluation.family_classifier import FamilyClassifier, FamilyClassifierConfig

    torch.manual_seed(0)
    FamilyClassifier(FamilyClassifierConfig(families=("bass", "pipes"))).save(tmp_path / "judge")
    return tmp_path / "judge"


def test_family_embedder_any_rate_and_length(judge_folder: Path) -> None:
    emb = build_embedder("family", classifier=judge_folder)
    assert isinstance(emb, FamilyEmbedder) and emb.dim == 64 and emb.sample_rate == 16000
    clips = [torch.randn(44100 * 12) * 0.1, torch.randn(2, 8000) * 0.1]
    rows = emb.embed(clips, 44100)
    assert rows.shape == (2, 64) and torch.isfinite(rows).all()
    probs = emb.probabilities(clips, 44100)
    assert probs.shape == (2, 2) and torch.allclose(probs.sum(1), torch.ones(2))
    with pytest.raises(InputError, match="--classifier"):
        build_embedder("family")


def test_unknown_embedding_is_one_line() -> None:
    with pytest.raises(InputError, match="unknown embedding 'vggish'; use one of clap-music"):
        build_embedder("vggish")
    assert set(EMBEDDINGS) == {"clap-music", "clap-general", "encodec", "family", "basic-pitch"}


def test_cache_is_keyed_by_backend_content_and_settings(tmp_path: Path, judge_folder: Path) -> None:
    from fluxmusic.evaluation.embedding_cache import EmbeddingCache

    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    cache = EmbeddingCache(tmp_path / "cache", _Lengths())
    assert cache.get(cache.key(a)) is None
    cache.put(cache.key(a), np.arange(2.0))
    assert np.array_equal(cache.get(cache.key(a)), np.arange(2.0))
    assert cache.key(a) != cache.key(b) and cache.key(a) != cache.key(a, offset=1.0)
    other = EmbeddingCache(tmp_path / "cache", FamilyEmbedder.from_folder(judge_folder))
    assert other.folder != cache.folder and other.get(cache.key(a)) is None


# Hub-backed backends with random weights from their written-out configs ---------------------------------


@pytest.fixture(scope="module")
def clap_models() -> dict[str, object]:
    from transformers import ClapFeatureExtractor, ClapModel

    from fluxmusic.evaluation.clap import CLAP_CHECKPOINTS, ClapEmbedder, exact_clap_config

    out = {}
    for name, hub_id in CLAP_CHECKPOINTS.items():
        torch.manual_seed(0)
        out[name] = ClapEmbedder(ClapModel(exact_clap_config(hub_id)), ClapFeatureExtractor(), hub_id)
    return out


@pytest.mark.parametrize("name", ["clap-music", "clap-general"])
def test_clap_random_weights_any_rate_and_length(name: str, clap_models: dict[str, object]) -> None:
    emb = clap_models[name]
    assert emb.name == name and emb.sample_rate == 48000 and emb.window_seconds == 10.0 and emb.dim == 512
    params = sum(p.numel() for p in emb.model.parameters())
    assert params == {"clap-music": 193_913_882, "clap-general": 153_492_890}[name]
    long_clip, stereo_short = torch.randn(22050 * 23) * 0.1, torch.randn(2, 22050) * 0.1
    rows = emb.embed([long_clip, stereo_short], 22050)
    assert rows.shape == (2, 512) and torch.isfinite(rows).all()
    one = emb.embed_windows([emb.prepare(stereo_short, 22050)])  # one window: its own normalised row
    assert torch.allclose(one.norm(dim=1), torch.ones(1), atol=1e-5) and torch.allclose(
        one[0], rows[1], atol=1e-5
    )


def test_encodec_random_weights_any_rate_and_length() -> None:
    from transformers import EncodecModel

    from fluxmusic.evaluation.encodec import EncodecEmbedder, exact_encodec_config

    torch.manual_seed(0)
    emb = EncodecEmbedder(EncodecModel(exact_encodec_config()))
    assert emb.name == "encodec" and emb.sample_rate == 24000 and emb.dim == 128
    assert emb.checkpoint == "facebook/encodec_24khz"
    rows = emb.embed([torch.randn(16000 * 12) * 0.1, torch.randn(2, 4000) * 0.1], 16000)
    assert rows.shape == (2, 128) and torch.isfinite(rows).all()
    frames = emb.model.encoder(torch.zeros(1, 1, 24000))
    assert frames.shape == (1, 128, 75)  # 75 frames per second


@pytest.fixture
def offline_empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


@pytest.mark.parametrize(
    ("name", "hub_id"),
    [
        ("clap-music", "laion/larger_clap_music"),
        ("clap-general", "laion/clap-htsat-unfused"),
        ("encodec", "facebook/encodec_24khz"),
    ],
)
def test_loader_uses_real_hub_ids_and_fails_offline_in_one_line(
    name: str, hub_id: str, offline_empty_cache: None
) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        build_embedder(name)
    message = str(info.value)
    assert "\n" not in message and hub_id in message and "offline" in message and "hf download" in message


# Real weights: only where they are already on disk ---------------------------------------------------------


def _cached(hub_id: str) -> Path:
    from fluxmusic.hub import resolve_folder

    try:
        return resolve_folder(hub_id, required=("config.json",), need_weights=True, local_files_only=True)
    except WeightsNotFoundError:
        pytest.skip(f"{hub_id} is not in the Hugging Face cache")


@pytest.mark.weights
@pytest.mark.parametrize("name", ["clap-music", "clap-general"])
def test_real_clap_prefers_the_matching_prompt(name: str) -> None:
    from fluxmusic.evaluation.clap import CLAP_CHECKPOINTS, ClapEmbedder

    emb = ClapEmbedder.from_pretrained(_cached(CLAP_CHECKPOINTS[name]))
    t = torch.arange(48000 * 5) / 48000
    tone = 0.3 * torch.sin(2 * torch.pi * 440 * t)
    audio = emb.embed([tone], 48000)
    text = emb.embed_text(["a pure sine tone", "a crowd cheering in a stadium"])
    sims = torch.nn.functional.normalize(audio, dim=1) @ text.T
    assert audio.shape == (1, 512) and sims[0, 0] > sims[0, 1]


@pytest.mark.weights
def test_real_encodec_shape() -> None:
    from fluxmusic.evaluation.encodec import EncodecEmbedder

    emb = EncodecEmbedder.from_pretrained(_cached("facebook/encodec_24khz"))
    assert emb.embed([torch.randn(24000 * 3) * 0.1], 24000).shape == (1, 128)
