"""T5-XXL and CLAP text tower: exact shapes, modes, loading real-format checkpoints, loud failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import ClapConfig, ClapModel, T5Config, T5EncoderModel

from fluxmusic.text import (
    MODES,
    T5XXL_CONFIG,
    ClapTextEncoder,
    FluxMusicConditioner,
    T5Encoder,
    WeightsNotFoundError,
)

PROMPTS = ["an upbeat jazz tune with a walking bass line", "low quality, gentle"]


def test_full_width_t5_gives_4096_wide_states_in_both_modes(wide_t5: T5Encoder) -> None:
    assert wide_t5.dim == 4096 and wide_t5.dtype == torch.bfloat16
    states, mask = wide_t5.encode(PROMPTS, MODES["training"])
    assert states.shape == (2, 256, 4096) and mask.shape == (2, 256)
    assert torch.isfinite(states).all()
    sampled, mask_s = wide_t5.encode(PROMPTS, MODES["reference-sampling"])
    assert sampled.shape == (2, 256, 4096) and torch.equal(mask, mask_s)
    assert not torch.equal(states, sampled)  # pad id and masking change the states


@pytest.mark.slow
def test_exact_t5xxl_encodes_to_b_256_4096(t5_tokenizer: Any) -> None:
    t5 = T5Encoder.from_config(t5_tokenizer)  # all 24 layers, 4.76 B parameters, ~9.5 GB in bf16
    assert sum(p.numel() for p in t5.model.parameters()) == 4_762_310_656
    states, _ = t5.encode(PROMPTS, MODES["training"])
    assert states.shape == (2, 256, 4096) and torch.isfinite(states).all()


def test_exact_clap_text_tower_gives_768_pooled(exact_clap: ClapTextEncoder) -> None:
    config = exact_clap.config
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers) == (50265, 768, 12)
    assert (config.max_position_embeddings, config.projection_dim, config.pad_token_id) == (514, 512, 1)
    y_train = exact_clap.encode(PROMPTS, MODES["training"])
    y_sample = exact_clap.encode(PROMPTS, MODES["reference-sampling"])
    assert y_train.shape == y_sample.shape == (2, 768)
    assert y_train.abs().max() <= 1.0  # tanh pooler
    assert not torch.equal(y_train, y_sample)


def test_flux_conditioner_shapes(wide_t5: T5Encoder, exact_clap: ClapTextEncoder) -> None:
    cond = FluxMusicConditioner(wide_t5, exact_clap)
    assert cond.mode == "training" and (cond.txt_dim, cond.pooled_dim) == (4096, 768)
    emb = cond.encode(PROMPTS)
    assert emb.txt.shape == (2, 256, 4096) and emb.y.shape == (2, 768) and emb.txt_mask.shape == (2, 256)
    assert emb.txt.dtype == torch.float32
    sampling = FluxMusicConditioner(wide_t5, exact_clap, mode="reference-sampling")
    assert sampling.cache_key != cond.cache_key


def test_mode_token_ids_and_masks(tiny: FluxMusicConditioner) -> None:
    prompts = ["soft piano", ""]
    train, sample = MODES["training"], MODES["reference-sampling"]
    ids, mask = tiny.t5.tokenize(prompts, train)
    assert ids.shape == (2, 256) and mask.sum(1).tolist() == [11, 1]
    assert ids[0, 10].item() == 1  # </s> ends the prompt
    assert (ids[0, 11:] == 1).all() and (ids[1, 1:] == 1).all()  # training pads with </s> (1)
    ids_s, mask_s = tiny.t5.tokenize(prompts, sample)
    assert torch.equal(mask_s, mask) and torch.equal(ids_s[mask], ids[mask])
    assert (ids_s[~mask] == 0).all()  # sampling pads with <pad> (0)
    cids, cmask = tiny.clap.tokenize(prompts, train)
    assert cids.shape == (2, 77) and cmask.sum(1).tolist() == [12, 2]
    assert cids[0, 0].item() == 0 and cids[0, 11].item() == 2 and (cids[~cmask] == 1).all()
    cids_s, cmask_s = tiny.clap.tokenize(prompts, sample)
    assert cids_s.shape == (2, 256) and (cids_s[~cmask_s] == 1).all()
    assert torch.equal(cids_s[:, :77], cids)


def test_training_mode_masks_attention_and_sampling_mode_does_not(tiny: FluxMusicConditioner) -> None:
    prompts = ["soft piano", "drums"]
    train, sample = MODES["training"], MODES["reference-sampling"]
    short = type(train)("short", 32, 1, True, 20, True)
    short_nomask = type(train)("short-nomask", 32, 0, False, 20, False)
    states, mask = tiny.t5.encode(prompts, train)
    states_short, _ = tiny.t5.encode(prompts, short)
    # With the attention mask, real-token states do not depend on how much padding follows.
    torch.testing.assert_close(states[:, :32][mask[:, :32]], states_short[mask[:, :32]], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        tiny.clap.encode(prompts, train), tiny.clap.encode(prompts, short), atol=1e-5, rtol=1e-5
    )
    # Without it the pads are attended, so the padded length changes the result.
    s_long, mask_long = tiny.t5.encode(prompts, sample)
    s_short, _ = tiny.t5.encode(prompts, short_nomask)
    assert not torch.allclose(s_long[:, :32][mask_long[:, :32]], s_short[mask_long[:, :32]], atol=1e-4)
    assert not torch.allclose(
        tiny.clap.encode(prompts, sample), tiny.clap.encode(prompts, short_nomask), atol=1e-4
    )


def _small_clap_model() -> ClapModel:
    text = dict(
        vocab_size=260,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        projection_dim=16,
        max_position_embeddings=300,
    )
    audio = dict(
        hidden_size=32,
        depths=[1, 1],
        num_attention_heads=[2, 2],
        patch_embeds_hidden_size=16,
        projection_dim=16,
        spec_size=64,
        num_mel_bins=16,
        window_size=4,
        patch_stride=[4, 4],
        patch_size=4,
        enable_fusion=False,
    )
    torch.manual_seed(0)
    return ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=16)).eval()


@pytest.fixture
def clap_dir(tmp_path: Path, clap_tokenizer: Any) -> tuple[Path, ClapModel]:
    model = _small_clap_model()
    model.save_pretrained(tmp_path)
    clap_tokenizer.save_pretrained(tmp_path)
    return tmp_path, model


def test_clap_loader_reads_the_text_tower_of_a_clapmodel_checkpoint(clap_dir: tuple[Path, ClapModel]) -> None:
    folder, original = clap_dir
    encoder = ClapTextEncoder.from_pretrained(folder, dtype=torch.float32)
    ids, mask = encoder.tokenize(PROMPTS, MODES["training"])
    with torch.no_grad():
        expected = original.text_model(input_ids=ids, attention_mask=mask.long()).pooler_output
    torch.testing.assert_close(encoder.encode(PROMPTS, MODES["training"]), expected, atol=1e-6, rtol=1e-6)
    with torch.no_grad():
        got = encoder.model.embeddings.word_embeddings.weight
    assert torch.equal(got, original.text_model.embeddings.word_embeddings.weight)


def test_clap_loader_fails_loudly_on_a_missing_text_weight(clap_dir: tuple[Path, ClapModel]) -> None:
    folder, _ = clap_dir
    state = load_file(folder / "model.safetensors")
    dropped = "text_model.encoder.layer.1.attention.self.query.weight"
    del state[dropped]
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(WeightsNotFoundError, match=dropped.replace(".", r"\.")) as info:
        ClapTextEncoder.from_pretrained(folder)
    assert "\n" not in str(info.value)


def test_clap_loader_rejects_a_bare_text_model_checkpoint(clap_dir: tuple[Path, ClapModel]) -> None:
    folder, _ = clap_dir
    state = load_file(folder / "model.safetensors")
    save_file(
        {k: v for k, v in state.items() if not k.startswith("text_projection.")}, folder / "model.safetensors"
    )
    with pytest.raises(WeightsNotFoundError, match="text_projection"):
        ClapTextEncoder.from_pretrained(folder)
    bare = {k.removeprefix("text_model."): v for k, v in state.items() if k.startswith("text_model.")}
    save_file(bare, folder / "model.safetensors")
    with pytest.raises(WeightsNotFoundError, match="text_model"):
        ClapTextEncoder.from_pretrained(folder)


def test_clap_loader_reads_pytorch_bin_with_weights_only(clap_dir: tuple[Path, ClapModel]) -> None:
    folder, original = clap_dir
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    encoder = ClapTextEncoder.from_pretrained(folder, dtype=torch.float32)
    assert torch.equal(encoder.model.pooler.dense.weight, original.text_model.pooler.dense.weight)


def _save_tiny_t5(folder: Path, tokenizer: Any) -> T5EncoderModel:
    config = T5Config(
        **dict(T5XXL_CONFIG, d_model=32, d_ff=64, num_heads=4, d_kv=8, num_layers=2, vocab_size=259)
    )
    torch.manual_seed(0)
    model = T5EncoderModel(config).eval()
    model.save_pretrained(folder / "text_encoder_3")
    tokenizer.save_pretrained(folder / "tokenizer_3")
    return model


def test_t5_from_pretrained_local_folder_and_reload(tmp_path: Path, t5_tokenizer: Any) -> None:
    original = _save_tiny_t5(tmp_path, t5_tokenizer)
    t5 = T5Encoder.from_pretrained(tmp_path, dtype=torch.float32)
    ids, mask = t5.tokenize(PROMPTS, MODES["training"])
    with torch.no_grad():
        expected = original(input_ids=ids, attention_mask=mask.long()).last_hidden_state
    states, _ = t5.encode(PROMPTS, MODES["training"])
    torch.testing.assert_close(states, expected, atol=1e-5, rtol=1e-5)
    t5.release()
    assert t5.released
    again, _ = t5.encode(PROMPTS, MODES["training"])  # reloads from the folder
    assert torch.equal(again, states)
    half = T5Encoder.from_pretrained(tmp_path, dtype=torch.float16)
    ffn = half.model.encoder.block[0].layer[1].DenseReluDense
    assert ffn.wo.weight.dtype == torch.float32 and ffn.wi_0.weight.dtype == torch.float16


def test_release_of_an_in_memory_encoder_raises_on_encode() -> None:
    cond = FluxMusicConditioner.tiny(seed=5)
    cond.release()
    assert cond.txt_dim == 40  # metadata survives release
    with pytest.raises(RuntimeError, match="built in memory"):
        cond.encode(["x"])


def test_missing_files_raise_one_clear_error(tmp_path: Path, t5_tokenizer: Any) -> None:
    with pytest.raises(WeightsNotFoundError, match="config.json") as info:
        T5Encoder.from_pretrained(tmp_path)
    assert "model.safetensors" in str(info.value) and "\n" not in str(info.value)
    _save_tiny_t5(tmp_path, t5_tokenizer)
    (tmp_path / "text_encoder_3" / "model.safetensors").unlink()
    with pytest.raises(WeightsNotFoundError, match="model.safetensors"):
        T5Encoder.from_pretrained(tmp_path)
    with pytest.raises(WeightsNotFoundError, match="offline.*HF_HUB_OFFLINE") as info:
        T5Encoder.from_pretrained("nobody-org/no-such-repo", local_files_only=True, cache_dir=tmp_path / "hf")
    assert "nobody-org/no-such-repo" in str(info.value)
    with pytest.raises(WeightsNotFoundError, match="no such local folder"):
        ClapTextEncoder.from_pretrained(tmp_path / "nowhere")
