from __future__ import annotations

import pytest
import torch

from fluxmusic.config import PRESETS, RELEASED_PRESETS, MusicFluxConfig
from fluxmusic.model import MusicFlux, image_ids, pack, text_ids


@pytest.mark.parametrize("name", RELEASED_PRESETS)
def test_state_dict_matches_released_checkpoint(name: str, manifest: dict) -> None:
    with torch.device("meta"):
        model = MusicFlux(PRESETS[name])
    expected = manifest[name]["state_dict"]
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(ours) - set(expected)) == []
    assert sorted(set(expected) - set(ours)) == []
    assert ours == expected
    assert model.num_parameters == manifest[name]["num_parameters"]


@pytest.mark.parametrize("name", RELEASED_PRESETS)
def test_preset_matches_reference_params(name: str, manifest: dict) -> None:
    assert PRESETS[name] == MusicFluxConfig.from_dict(manifest[name]["params"])


def test_golden_forward(golden_model: MusicFlux, golden_tiny: dict) -> None:
    g = golden_tiny
    with torch.no_grad():
        out = golden_model(
            g["prepare.img"],
            g["prepare.img_ids"],
            g["forward.txt"],
            g["prepare.txt_ids"],
            g["forward.t"],
            g["forward.y"],
        )
    assert out.shape == g["forward.out"].shape
    torch.testing.assert_close(out, g["forward.out"], atol=1e-5, rtol=0)


def test_bound_velocity_equals_forward(golden_model: MusicFlux, golden_tiny: dict) -> None:
    g = golden_tiny
    fn = golden_model.bind(g["prepare.img_ids"], g["forward.txt"], g["prepare.txt_ids"], g["forward.y"])
    with torch.no_grad():
        direct = golden_model(
            g["prepare.img"],
            g["prepare.img_ids"],
            g["forward.txt"],
            g["prepare.txt_ids"],
            g["forward.t"],
            g["forward.y"],
        )
        bound = fn(g["prepare.img"], g["forward.t"])
    torch.testing.assert_close(bound, direct, atol=1e-6, rtol=0)


def test_bf16_autocast_close_to_fp32(golden_model: MusicFlux, golden_tiny: dict) -> None:
    g = golden_tiny
    args = (
        g["prepare.img"],
        g["prepare.img_ids"],
        g["forward.txt"],
        g["prepare.txt_ids"],
        g["forward.t"],
        g["forward.y"],
    )
    with torch.no_grad():
        fp32 = golden_model(*args)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = golden_model(*args)
    assert bf16.dtype == torch.bfloat16
    rel = (bf16.float() - fp32).norm() / fp32.norm()
    assert rel < 2e-2


def test_validation_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="axes_dim"):
        MusicFluxConfig(hidden_size=64, num_heads=4, axes_dim=(4, 4, 4))
    with pytest.raises(ValueError, match="num_heads"):
        MusicFluxConfig(hidden_size=65, num_heads=4)
    with pytest.raises(ValueError, match="unknown MusicFlux config keys"):
        MusicFluxConfig.from_dict({"hidden": 3})
    with pytest.raises(ValueError, match="patch_size"):
        MusicFluxConfig(in_channels=40, patch_size=4)  # not a whole number of channels per 4 x 4 patch
    with pytest.raises(ValueError, match="patch_size must be positive"):
        MusicFluxConfig(patch_size=0)


@pytest.mark.parametrize("t_lat,f_lat", [(4, 16), (10, 16), (256, 16), (6, 2)])
def test_any_even_latent_size_runs(t_lat: int, f_lat: int) -> None:
    torch.manual_seed(0)
    model = MusicFlux(PRESETS["tiny"]).eval()
    latent = torch.randn(2, 8, t_lat, f_lat)
    x = pack(latent)
    txt = torch.randn(2, 5, PRESETS["tiny"].context_in_dim)
    with torch.no_grad():
        v = model(x, image_ids(2, t_lat, f_lat), txt, text_ids(2, 5), torch.rand(2), torch.randn(2, 24))
    assert v.shape == x.shape and torch.isfinite(v).all()


def test_gradient_checkpointing_matches() -> None:
    torch.manual_seed(0)
    model = MusicFlux(PRESETS["tiny"]).train()
    x = pack(torch.randn(1, 8, 4, 8))
    inputs = (x, image_ids(1, 4, 8), torch.randn(1, 3, 40), text_ids(1, 3), torch.rand(1), torch.randn(1, 24))
    model(*inputs).square().mean().backward()
    plain = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.gradient_checkpointing = True
    model(*inputs).square().mean().backward()
    for a, p in zip(plain, model.parameters()):
        torch.testing.assert_close(p.grad, a)


def test_random_weights_are_seeded_and_scaled() -> None:
    a = MusicFlux.random(PRESETS["tiny"], seed=1)
    b = MusicFlux.random(PRESETS["tiny"], seed=1)
    c = MusicFlux.random(PRESETS["tiny"], seed=2)
    wa, wb, wc = (m.state_dict()["txt_in.weight"] for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert abs(wa.std().item() - 0.02) < 0.005
