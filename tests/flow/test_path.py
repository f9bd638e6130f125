from __future__ import annotations

import pytest
import torch

from fluxmusic.flow import flow_matching_loss, interpolate, sample_timesteps, shift_time, velocity_target


def test_path_endpoints_and_velocity() -> None:
    x0, eps = torch.randn(4, 3, 2), torch.randn(4, 3, 2)
    torch.testing.assert_close(interpolate(x0, eps, torch.zeros(4)), x0)
    torch.testing.assert_close(interpolate(x0, eps, torch.ones(4)), eps)
    t = torch.rand(4)
    dt = 1e-3
    numeric = (interpolate(x0, eps, t + dt) - interpolate(x0, eps, t)) / dt
    torch.testing.assert_close(numeric, velocity_target(x0, eps), atol=1e-2, rtol=1e-2)


def test_logit_normal_statistics_and_determinism() -> None:
    t = sample_timesteps(200_000, torch.Generator().manual_seed(0))
    assert 0 < t.min() and t.max() < 1
    logits = torch.log(t / (1 - t))
    assert abs(logits.mean().item()) < 0.01 and abs(logits.std().item() - 1) < 0.01
    a = sample_timesteps(8, torch.Generator().manual_seed(5))
    b = sample_timesteps(8, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_shift_moves_mass_toward_noise() -> None:
    g = torch.Generator().manual_seed(0)
    plain = sample_timesteps(10_000, g)
    shifted = shift_time(plain, 3.0)
    assert shifted.mean() > plain.mean() + 0.1
    assert torch.equal(shift_time(plain, 1.0), plain)
    with pytest.raises(ValueError):
        shift_time(plain, 0.0)


def test_loss_is_per_sample_mean_then_batch_mean() -> None:
    pred = torch.zeros(2, 4)
    target = torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 0.0, 0.0, 0.0]])
    per = flow_matching_loss(pred, target, reduce=False)
    torch.testing.assert_close(per, torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(flow_matching_loss(pred, target), torch.tensor(1.0))
