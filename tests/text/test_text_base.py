"""TextEmbedding helpers, modes, padding and the low-memory build path."""

from __future__ import annotations

import pytest
import torch
from transformers import ClapTextConfig, ClapTextModel, T5Config, T5EncoderModel

from fluxmusic.text import MODES, TextEmbedding, byte_level_tokenizer, get_mode
from fluxmusic.text.base import default_dtype, pad_tokens
from fluxmusic.text.lowmem import count_parameters, materialize_, params_on_meta


def _emb(batch: int, length: int = 5, width: int = 3, fill: float = 0.0) -> TextEmbedding:
    txt = torch.arange(batch * length * width, dtype=torch.float32).reshape(batch, length, width) + fill
    mask = torch.zeros(batch, length, dtype=torch.bool)
    mask[:, :2] = True
    return TextEmbedding(txt, mask, torch.arange(batch * 4, dtype=torch.float32).reshape(batch, 4) + fill)


def test_embedding_index_cat_repeat_to() -> None:
    emb = _emb(3)
    assert len(emb) == 3 and emb.batch_size == 3
    one = emb[1]
    assert one.txt.shape == (1, 5, 3) and torch.equal(one.y, emb.y[1:2])
    last = emb[-1]
    assert torch.equal(last.txt, emb.txt[2:])
    assert torch.equal(emb[torch.tensor([True, False, True])].y, emb.y[[0, 2]])
    picked = emb[[2, 0]]
    assert torch.equal(picked.y, emb.y[[2, 0]])
    both = TextEmbedding.cat([emb, _emb(2, fill=100.0)])
    assert both.txt.shape == (5, 5, 3) and torch.equal(both.y[3:], _emb(2, fill=100.0).y)
    rep = emb.repeat(2)
    assert torch.equal(rep.txt[0], rep.txt[1]) and torch.equal(rep.txt[2], emb.txt[1])
    half = emb.to(dtype=torch.bfloat16)
    assert half.txt.dtype == torch.bfloat16 and half.y.dtype == torch.bfloat16
    assert half.txt_mask.dtype == torch.bool


def test_embedding_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="mismatch"):
        TextEmbedding(torch.zeros(2, 5, 3), torch.zeros(2, 4, dtype=torch.bool), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="wants"):
        TextEmbedding(torch.zeros(2, 5), torch.zeros(2, 5, dtype=torch.bool), torch.zeros(2, 4))
    with pytest.raises(ValueError):
        TextEmbedding.cat([])


def test_modes_are_the_documented_ones() -> None:
    train, sample = MODES["training"], MODES["reference-sampling"]
    assert (train.t5_max_length, train.t5_pad_id, train.t5_attention_mask) == (256, 1, True)
    assert (train.clap_max_length, train.clap_attention_mask) == (77, True)
    assert (sample.t5_max_length, sample.t5_pad_id, sample.t5_attention_mask) == (256, 0, False)
    assert (sample.clap_max_length, sample.clap_attention_mask) == (256, False)
    assert get_mode(train) is train
    with pytest.raises(ValueError, match="reference-sampling"):
        get_mode("sampling")


def test_pad_tokens_pads_with_the_given_id_and_truncates() -> None:
    tok = byte_level_tokenizer("t5")
    ids, mask = pad_tokens(tok, ["ab", "", "x" * 50], max_length=8, pad_id=7)
    assert ids.shape == mask.shape == (3, 8)
    assert mask.sum(1).tolist() == [3, 1, 8]
    assert ids[0, 2].item() == 1 and (ids[0, 3:] == 7).all()  # "a", "b", </s>, then pads
    assert ids[1, 0].item() == 1 and (ids[1, 1:] == 7).all()
    assert ids[2, -1].item() == 1  # truncation keeps </s>
    with pytest.raises(TypeError):
        pad_tokens(tok, "one string", max_length=8, pad_id=0)  # type: ignore[arg-type]


def test_default_dtype() -> None:
    assert default_dtype("cpu") == torch.bfloat16
    assert default_dtype("meta") == torch.float32


def test_params_on_meta_keeps_buffers_and_materialize_is_seeded() -> None:
    config = ClapTextConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    with params_on_meta():
        model = ClapTextModel(config)
    assert all(p.device.type == "meta" for p in model.parameters())
    assert torch.equal(model.embeddings.position_ids[0], torch.arange(config.max_position_embeddings))
    materialize_(model, dtype=torch.float32, seed=3)
    assert all(p.device.type == "cpu" and not p.requires_grad for p in model.parameters())
    assert torch.equal(model.embeddings.LayerNorm.weight, torch.ones(16))
    assert torch.equal(model.embeddings.LayerNorm.bias, torch.zeros(16))
    weight = model.encoder.layer[0].attention.self.query.weight
    assert abs(weight.std().item() - 16**-0.5) < 0.05
    with params_on_meta():
        again = ClapTextModel(config)
    materialize_(again, dtype=torch.float32, seed=3)
    assert torch.equal(again.encoder.layer[0].attention.self.query.weight, weight)
    with params_on_meta():
        other = ClapTextModel(config)
    materialize_(other, dtype=torch.float32, seed=4)
    assert not torch.equal(other.encoder.layer[0].attention.self.query.weight, weight)


def test_materialize_keeps_ties_and_fp32_wo() -> None:
    config = T5Config(
        d_model=16, d_ff=32, num_heads=2, d_kv=8, num_layers=1, vocab_size=40, feed_forward_proj="gated-gelu"
    )
    with params_on_meta():
        model = T5EncoderModel(config)
    materialize_(model, dtype=torch.float16, keep_fp32=("wo",))
    assert model.shared.weight is model.encoder.embed_tokens.weight
    assert model.encoder.block[0].layer[1].DenseReluDense.wo.weight.dtype == torch.float32
    assert model.encoder.block[0].layer[1].DenseReluDense.wi_0.weight.dtype == torch.float16


def test_exact_t5xxl_parameter_count_on_meta() -> None:
    from fluxmusic.text import T5XXL_CONFIG

    with params_on_meta():
        model = T5EncoderModel(T5Config(**T5XXL_CONFIG))
    assert count_parameters(model) == 4_762_310_656  # 4.76 B, shared embedding counted once
    assert all(p.device.type == "meta" for p in model.parameters())
