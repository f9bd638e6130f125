"""AudioVAE: exact AudioLDM2 config, scaled-latent contract, upcasting, save/load and load errors."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch

from fluxmusic.audio import (
    AUDIOLDM2_VAE_CONFIG,
    AudioVAE,
    HifiGanVocoder,
    LatentDistribution,
    clip_log_mel,
)
from fluxmusic.hub import WeightsNotFoundError

VAE_PARAMETERS = 55_376_873


def test_exact_config_parameter_count(audioldm2_vae: AudioVAE) -> None:
    count = sum(p.numel() for p in audioldm2_vae.parameters())
    assert count == VAE_PARAMETERS
    assert round(count / 1e6, 1) == 55.4


def test_exact_config_properties(audioldm2_vae: AudioVAE) -> None:
    assert audioldm2_vae.scaling_factor == 0.4110932946205139
    assert audioldm2_vae.latent_channels == 8
    assert audioldm2_vae.downsample == 4
    assert audioldm2_vae.force_upcast
    config = audioldm2_vae.config
    assert all(config[k] == v for k, v in AUDIOLDM2_VAE_CONFIG.items())


def test_exact_config_shapes_short_clip(audioldm2_vae: AudioVAE) -> None:
    mel = torch.randn(1, 1, 16, 64) - 4.0
    with torch.inference_mode():
        posterior = audioldm2_vae.encode(mel)
        assert posterior.mean.shape == posterior.logvar.shape == (1, 8, 4, 16)
        assert audioldm2_vae.decode(posterior.mode()).shape == (1, 1, 16, 64)


def test_latents_are_scaled(tiny_vae: AudioVAE) -> None:
    mel = torch.randn(2, 1, 16, 64)
    s = tiny_vae.scaling_factor
    with torch.inference_mode():
        raw = tiny_vae.autoencoder.encode(mel).latent_dist
        posterior = tiny_vae.encode(mel)
        torch.testing.assert_close(posterior.mean, s * raw.mean)
        torch.testing.assert_close(posterior.logvar, raw.logvar + 2 * math.log(s))
        torch.testing.assert_close(posterior.std, s * raw.std)
        torch.testing.assert_close(posterior.kl(), raw.kl(), rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(
            tiny_vae.decode(posterior.mean), tiny_vae.autoencoder.decode(raw.mean).sample
        )
        assert torch.equal(tiny_vae(posterior.mean), tiny_vae.decode(posterior.mean))


def test_sampling_is_seeded_and_has_the_right_spread() -> None:
    mean = torch.full((4, 8, 16, 16), 2.0)
    posterior = LatentDistribution(
        mean=mean, logvar=torch.full_like(mean, math.log(0.25)), scaling_factor=0.5
    )
    a = posterior.sample(torch.Generator().manual_seed(0))
    b = posterior.sample(torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert not torch.equal(a, posterior.sample(torch.Generator().manual_seed(1)))
    assert a.mean().item() == pytest.approx(2.0, abs=0.05)
    assert a.std().item() == pytest.approx(0.5, abs=0.05)
    assert torch.equal(posterior.mode(), mean)


def test_small_config_overrides() -> None:
    vae = AudioVAE.from_config(
        {"block_out_channels": [16, 32]}, norm_num_groups=8, latent_channels=4, layers_per_block=1
    )
    assert (vae.downsample, vae.latent_channels) == (2, 4)
    with torch.inference_mode():
        latent = vae.encode(torch.randn(1, 1, 8, 64)).mode()
    assert latent.shape == (1, 4, 4, 32)
    with pytest.raises(ValueError, match="invalid AudioVAE config"):
        AudioVAE.from_config(not_a_key=1)


def test_rejects_bad_shapes(tiny_vae: AudioVAE) -> None:
    with pytest.raises(ValueError, match="multiples of 4"):
        tiny_vae.encode(torch.randn(1, 1, 30, 64))
    with pytest.raises(ValueError, match=r"\(B, 1, T, F\)"):
        tiny_vae.encode(torch.randn(1, 30, 64))
    with pytest.raises(ValueError, match=r"\(B, 8, T, F\)"):
        tiny_vae.decode(torch.randn(1, 4, 8, 16))


def test_force_upcast_runs_half_model_in_float32(tiny_vae: AudioVAE) -> None:
    half = copy.deepcopy(tiny_vae).to(dtype=torch.float16)
    reference = copy.deepcopy(half).to(dtype=torch.float32)
    latent = torch.randn(1, 8, 4, 16).half()
    with torch.inference_mode():
        out = half.decode(latent)
        expected = reference.decode(latent.float()).half()
    assert out.dtype == torch.float16 and half.dtype == torch.float16
    torch.testing.assert_close(out, expected)


def test_force_upcast_disables_autocast(tiny_vae: AudioVAE) -> None:
    latent = torch.randn(1, 8, 4, 16)
    with torch.inference_mode():
        plain = tiny_vae.decode(latent)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = tiny_vae.decode(latent)
    assert autocast.dtype == torch.float32
    torch.testing.assert_close(autocast, plain)


def test_save_and_load_local_folder(tiny_vae: AudioVAE, tmp_path: Path) -> None:
    tiny_vae.save_pretrained(tmp_path / "vae")
    for folder, subfolder in [(tmp_path, "vae"), (tmp_path / "vae", "vae"), (tmp_path / "vae", None)]:
        loaded = AudioVAE.from_pretrained(folder, subfolder=subfolder)
        state, expected = loaded.state_dict(), tiny_vae.state_dict()
        assert state.keys() == expected.keys()
        assert all(torch.equal(state[k], expected[k]) for k in expected)
        assert loaded.config["block_out_channels"] == [16, 32, 32]


def test_missing_folder_and_files(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="does not exist") as err:
        AudioVAE.from_pretrained(tmp_path / "absent")
    assert "absent" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text("{}")
    with pytest.raises(WeightsNotFoundError, match="missing diffusion_pytorch_model.safetensors"):
        AudioVAE.from_pretrained(tmp_path)


def test_offline_hub_id_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match=r"cvssp/audioldm2/vae/config\.json.*offline") as err:
        AudioVAE.from_pretrained("cvssp/audioldm2", cache_dir=tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_full_length_round_trip_exact_config(
    audioldm2_vae: AudioVAE, audioldm2_vocoder: HifiGanVocoder
) -> None:

    waveform = torch.randn(1, 163840) * 0.1
    with torch.inference_mode():
        mel = clip_log_mel(waveform, duration=10.24)
        assert mel.shape == (1, 1024, 64)
        latent = audioldm2_vae.encode(mel[:, None]).sample(torch.Generator().manual_seed(0))
        assert latent.shape == (1, 8, 256, 16)
        decoded = audioldm2_vae.decode(latent)
        assert decoded.shape == (1, 1, 1024, 64)
        audio = audioldm2_vocoder(decoded, num_samples=163840)
    assert audio.shape == (1, 163840)
    assert torch.isfinite(audio).all()


def test_full_length_round_trip_tiny(tiny_vae: AudioVAE, tiny_vocoder: HifiGanVocoder) -> None:

    waveform = torch.randn(1, 163840) * 0.1
    with torch.inference_mode():
        mel = clip_log_mel(waveform, duration=10.24)
        latent = tiny_vae.encode(mel[:, None]).sample(torch.Generator().manual_seed(0))
        assert latent.shape == (1, 8, 256, 16)
        decoded = tiny_vae.decode(latent)
        assert decoded.shape == (1, 1, 1024, 64)
        audio = tiny_vocoder(decoded)
    assert audio.shape == (1, 163840)
    assert torch.isfinite(audio).all()
