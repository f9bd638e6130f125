from __future__ import annotations

import pytest
import torch

from fluxmusic.flow import EVALS_PER_STEP, SAMPLERS, classifier_free_guidance, sample, time_grid
from fluxmusic.model import pack, unpack


def test_euler_exact_on_constant_field() -> None:
    x1 = torch.randn(3, 5, dtype=torch.float64)
    v = torch.randn(3, 5, dtype=torch.float64)
    out = sample(lambda x, t: v.expand_as(x), x1, steps=7, method="euler")
    torch.testing.assert_close(out, x1 - v, atol=1e-12, rtol=0)


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_heun_exact_on_field_linear_in_t(shift: float) -> None:
    # dx/dt = a + b t  =>  x(0) = x(1) - a - b / 2
    a, b = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    x1 = torch.randn(4, 6, dtype=torch.float64)

    def field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return a + b * t.to(torch.float64)[:, None]

    out = sample(field, x1, steps=5, method="heun", shift=shift)
    torch.testing.assert_close(out, x1 - a - b / 2, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method,order", [("euler", 1), ("heun", 2), ("midpoint", 2)])
def test_convergence_order(method: str, order: int, convergence) -> None:
    errors, rates = convergence(method)
    for rate in rates:
        assert abs(rate - order) < 0.25, (method, errors, rates)


def test_time_grid_uniform_and_shifted() -> None:
    grid = time_grid(4)
    assert grid.tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]
    shifted = time_grid(4, shift=3.0)
    assert shifted[0] == 1.0 and shifted[-1] == 0.0
    assert (shifted[1:-1] > grid[1:-1]).all()
    assert (shifted[:-1] > shifted[1:]).all()


def test_evaluations_per_step() -> None:
    calls = {m: 0 for m in SAMPLERS}
    for method in SAMPLERS:

        def field(x: torch.Tensor, t: torch.Tensor, m: str = method) -> torch.Tensor:
            calls[m] += 1
            return x

        sample(field, torch.ones(1, 2), steps=3, method=method)
        assert calls[method] == 3 * EVALS_PER_STEP[method]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown sampler"):
        sample(lambda x, t: x, torch.ones(1, 1), method="rk45")
    with pytest.raises(ValueError, match="steps"):
        sample(lambda x, t: x, torch.ones(1, 1), steps=0)
    with pytest.raises(ValueError, match="finite"):
        classifier_free_guidance(lambda x, t: x, float("nan"))


def test_guidance_is_one_batched_call() -> None:
    seen = []

    def batched(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(x.shape[0])
        cond = torch.full_like(x[: len(x) // 2], 2.0)
        uncond = torch.full_like(x[: len(x) // 2], 1.0)
        return torch.cat((cond, uncond))

    v = classifier_free_guidance(batched, 4.0)(torch.zeros(3, 2), torch.zeros(3))
    assert seen == [6]
    torch.testing.assert_close(v, torch.full((3, 2), 1.0 + 4.0 * (2.0 - 1.0)))


def _constant_halves(seen: list[int]):  # noqa: ANN202
    """A batched field: 2.0 on the conditional half, 1.0 on the unconditional half."""

    def batched(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(x.shape[0])
        half = len(x) // 2
        return torch.cat((torch.full_like(x[:half], 2.0), torch.full_like(x[half:], 1.0)))

    return batched


def test_guidance_interval_guides_only_inside() -> None:
    seen: list[int] = []
    cond_calls: list[int] = []

    def conditional(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        cond_calls.append(x.shape[0])
        return torch.full_like(x, 2.0)

    fn = classifier_free_guidance(
        _constant_halves(seen), 4.0, interval=(0.3, 0.7), conditional_fn=conditional
    )
    x = torch.zeros(3, 2)
    torch.testing.assert_close(fn(x, torch.full((3,), 0.5)), torch.full((3, 2), 5.0))  # inside: guided
    torch.testing.assert_close(fn(x, torch.full((3,), 0.9)), torch.full((3, 2), 2.0))  # outside: conditional
    torch.testing.assert_close(fn(x, torch.full((3,), 0.1)), torch.full((3, 2), 2.0))
    assert seen == [6] and cond_calls == [3, 3]  # outside costs one half-size call
    mixed = fn(x, torch.tensor([0.5, 0.9, 0.3]))  # rows at different times: guided only where inside
    torch.testing.assert_close(mixed[:, 0], torch.tensor([5.0, 2.0, 5.0]))


def test_guidance_interval_without_conditional_fn_keeps_the_conditional_half() -> None:
    seen: list[int] = []
    fn = classifier_free_guidance(_constant_halves(seen), 4.0, interval=(0.0, 0.5))
    torch.testing.assert_close(fn(torch.zeros(2, 1), torch.ones(2)), torch.full((2, 1), 2.0))
    assert seen == [4]


@pytest.mark.parametrize("interval", [(0.5, 0.5), (0.7, 0.2), (-0.1, 0.5), (0.0, 1.5), ("a", 1), (0.5,)])
def test_bad_guidance_interval_is_named(interval: tuple) -> None:
    with pytest.raises(ValueError, match="guidance interval"):
        classifier_free_guidance(lambda x, t: x, 3.0, interval=interval)


def _linear_halves(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A batched field whose conditional and unconditional halves differ in level and in content."""
    half = len(x) // 2
    w = torch.linspace(-1.0, 1.0, x.shape[-1])
    return torch.cat((1.5 * x[:half] + w, 0.5 * x[half:] - w.flip(0)))


@pytest.mark.parametrize("eta", [0.0, 0.4])
def test_projected_guidance_weights_the_part_along_the_denoised_estimate(eta: float) -> None:
    x, t, scale = torch.randn(3, 4, 6, generator=torch.Generator().manual_seed(0)), torch.rand(3), 4.0
    v_cond, v_uncond = _linear_halves(torch.cat((x, x)), torch.cat((t, t))).chunk(2)
    plain = classifier_free_guidance(_linear_halves, scale)(x, t)
    projected = classifier_free_guidance(_linear_halves, scale, eta=eta)(x, t)
    tt = t.view(-1, 1, 1)
    x0_cond, x0_plain, x0_proj = (x - tt * v for v in (v_cond, plain, projected))
    unit = x0_cond / x0_cond.flatten(1).norm(dim=1).view(-1, 1, 1)

    def along(d: torch.Tensor) -> torch.Tensor:
        return (d * unit).flatten(1).sum(1)

    # plain guidance moves x0 by (scale - 1) * (x0_c - x0_u) from x0_c; projected keeps eta of that along x0_c
    torch.testing.assert_close(along(x0_proj - x0_cond), eta * along(x0_plain - x0_cond))
    ortho = lambda d: d - along(d).view(-1, 1, 1) * unit  # noqa: E731
    torch.testing.assert_close(ortho(x0_proj - x0_cond), ortho(x0_plain - x0_cond))
    assert along(x0_plain - x0_cond).abs().min() > 1e-3  # the test field has a parallel part to drop


def test_eta_one_is_plain_guidance_exactly() -> None:
    x, t = torch.randn(2, 3, 5), torch.rand(2)
    plain = classifier_free_guidance(_linear_halves, 3.0)(x, t)
    assert torch.equal(classifier_free_guidance(_linear_halves, 3.0, eta=1.0)(x, t), plain)


@pytest.mark.parametrize("eta", [-0.5, float("nan"), float("inf"), "a"])
def test_bad_guidance_eta_is_named(eta: object) -> None:
    with pytest.raises(ValueError, match="guidance eta"):
        classifier_free_guidance(lambda x, t: x, 3.0, eta=eta)  # type: ignore[arg-type]


def _golden_cfg_velocity(model, g: dict):  # noqa: ANN001, ANN202
    """The golden model bound to [conditional; null] text, the reference's CFG batch."""
    ids, tids = g["prepare.img_ids"], g["prepare.txt_ids"]
    return model.bind(
        torch.cat((ids, ids)),
        torch.cat((g["forward.txt"], g["sample.null_txt"])),
        torch.cat((tids, tids)),
        torch.cat((g["forward.y"], g["sample.null_y"])),
    )


def test_full_interval_equals_plain_guidance(golden_model, golden_tiny: dict) -> None:
    fn = _golden_cfg_velocity(golden_model, golden_tiny)
    z = pack(golden_tiny["sample.z0_latent"])
    with torch.no_grad():
        plain = sample(classifier_free_guidance(fn, 3.0), z, steps=4)
        full = sample(classifier_free_guidance(fn, 3.0, interval=(0.0, 1.0)), z, steps=4)
        late = sample(classifier_free_guidance(fn, 3.0, interval=(0.0, 0.5)), z, steps=4)
    torch.testing.assert_close(full, plain, atol=0, rtol=0)
    assert (late - plain).abs().max() > 1e-4


def test_golden_cfg_euler_sampling(golden_model, golden_tiny: dict) -> None:
    g = golden_tiny
    fn = _golden_cfg_velocity(golden_model, g)
    z = g["sample.z0_latent"]
    with torch.no_grad():
        out = sample(classifier_free_guidance(fn, 3.0), pack(z), steps=4, method="euler")
    torch.testing.assert_close(out, g["sample.final_tokens"], atol=1e-5, rtol=0)
    assert unpack(out, z.shape[2], z.shape[3]).shape == z.shape


def test_sampling_is_deterministic_for_a_generator(golden_model, golden_tiny: dict) -> None:
    g = golden_tiny
    fn = golden_model.bind(g["prepare.img_ids"], g["forward.txt"], g["prepare.txt_ids"], g["forward.y"])

    def run(seed: int) -> torch.Tensor:
        noise = torch.randn(g["prepare.img"].shape, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            return sample(fn, noise, steps=3, method="midpoint")

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))
