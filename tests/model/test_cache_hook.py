"""Step caching in MusicFlux: off is bit-identical, threshold 0 never reuses, reuse is exact, rows alone."""

from __future__ import annotations

import pytest
import torch

from fluxmusic.flow import classifier_free_guidance, sample
from fluxmusic.flow.cache import StepCache
from fluxmusic.model import MusicFlux, pack
from fluxmusic.model.cache import cache_probe
from fluxmusic.model.layers import timestep_embedding


def _inputs(g: dict, rows: int = 2) -> tuple[torch.Tensor, ...]:
    """The golden conditioning repeated to ``rows`` rows, each row with its own noise."""
    rep = lambda x: x.repeat(rows, *([1] * (x.ndim - 1))) if x.shape[0] == 1 else x[:rows]  # noqa: E731
    noise = torch.randn(rows, *g["prepare.img"].shape[1:], generator=torch.Generator().manual_seed(0))
    return (
        noise,
        rep(g["prepare.img_ids"]),
        rep(g["forward.txt"]),
        rep(g["prepare.txt_ids"]),
        rep(g["forward.y"]),
    )


def _by_hand(model: MusicFlux, x: torch.Tensor, t: torch.Tensor, fn_args: tuple, residual: torch.Tensor):  # noqa: ANN202
    """The velocity a reused residual gives: final layer on img_in(x) + residual, with the current t."""
    _, _, _, y = fn_args
    img = model.img_in(x)
    vec = model.time_in(timestep_embedding(t, 256).to(img.dtype)) + model.vector_in(y)
    return model.final_layer(img + residual, vec)


def _residual(model: MusicFlux, x: torch.Tensor, t: torch.Tensor, ids, txt, tids, y) -> torch.Tensor:  # noqa: ANN001
    img = model.img_in(x)
    vec = model.time_in(timestep_embedding(t, 256).to(img.dtype)) + model.vector_in(y)
    return model.blocks(img, model.txt_in(txt), vec, model.rope(tids, ids)) - img


def test_no_cache_and_threshold_zero_are_bit_identical(golden_model: MusicFlux, golden_tiny: dict) -> None:
    x, ids, txt, tids, y = _inputs(golden_tiny)
    plain = golden_model.bind(ids, txt, tids, y)
    cache = StepCache(0.0)
    cached = golden_model.bind(ids, txt, tids, y, cache=cache)
    with torch.no_grad():
        for method in ("euler", "heun", "ab2"):
            assert torch.equal(
                sample(cached, x, steps=5, method=method), sample(plain, x, steps=5, method=method)
            )
    assert cache.rows_reused == 0 and cache.rows_run == 2 * (5 + 10 + 5)


def test_forward_without_cache_matches_golden(golden_model: MusicFlux, golden_tiny: dict) -> None:
    g = golden_tiny
    args = (g["prepare.img"], g["prepare.img_ids"], g["forward.txt"], g["prepare.txt_ids"], g["forward.t"])
    with torch.no_grad():
        out = golden_model(*args, g["forward.y"], cache=None)
        fresh = golden_model(*args, g["forward.y"], cache=StepCache(1e9))  # a first call always runs
    torch.testing.assert_close(out, g["forward.out"], atol=1e-5, rtol=0)
    assert torch.equal(out, fresh)


def test_a_reused_step_adds_the_stored_residual(golden_model: MusicFlux, golden_tiny: dict) -> None:
    x, ids, txt, tids, y = _inputs(golden_tiny)
    cache = StepCache(1e9)  # reuse after the first call
    fn = golden_model.bind(ids, txt, tids, y, cache=cache)
    t1, t2 = torch.full((2,), 0.9), torch.full((2,), 0.7)
    with torch.no_grad():
        fn(x, t1)
        reused = fn(x * 0.8, t2)
        expected = _by_hand(
            golden_model, x * 0.8, t2, (ids, txt, tids, y), _residual(golden_model, x, t1, ids, txt, tids, y)
        )
    assert (cache.rows_run, cache.rows_reused) == (2, 2)
    torch.testing.assert_close(reused, expected, atol=1e-6, rtol=0)


def test_rows_decide_alone(golden_model: MusicFlux, golden_tiny: dict) -> None:
    x, ids, txt, tids, y = _inputs(golden_tiny)
    t = torch.full((2,), 0.8)
    with torch.no_grad():
        img = golden_model.img_in(x)
        vec = golden_model.time_in(timestep_embedding(t, 256)) + golden_model.vector_in(y)
        probe = cache_probe(golden_model, img, vec)
        step = (probe.float() - cache_probe(golden_model, golden_model.img_in(x + 1e-3), vec).float()).abs()
        threshold = float((step.mean((1, 2)) / probe.abs().mean((1, 2))).max()) * 4  # row 0's small move
        cache = StepCache(threshold)
        fn = golden_model.bind(ids, txt, tids, y, cache=cache)
        plain = golden_model.bind(ids, txt, tids, y)
        fn(x, t)
        moved = torch.stack((x[0] + 1e-3, x[1] + 1.0))  # row 0 barely moves, row 1 moves a lot
        out = fn(moved, t)
        reference = plain(moved, t)
        residual = _residual(golden_model, x[:1], t[:1], ids[:1], txt[:1], tids[:1], y[:1])
        row0 = _by_hand(golden_model, moved[:1], t[:1], (ids[:1], txt[:1], tids[:1], y[:1]), residual)
    assert (cache.rows_run, cache.rows_reused) == (3, 1)
    torch.testing.assert_close(out[1], reference[1], atol=1e-5, rtol=0)  # row 1 ran its blocks
    torch.testing.assert_close(out[0], row0[0], atol=1e-5, rtol=0)  # row 0 reused its own residual
    assert (out[0] - reference[0]).abs().max() > 0


def test_a_new_batch_size_starts_afresh(golden_model: MusicFlux, golden_tiny: dict) -> None:
    x, ids, txt, tids, y = _inputs(golden_tiny, rows=2)
    cache = StepCache(1e9)
    with torch.no_grad():
        golden_model(x, ids, txt, tids, torch.full((2,), 0.9), y, cache=cache)
        half = golden_model(x[:1], ids[:1], txt[:1], tids[:1], torch.full((1,), 0.5), y[:1], cache=cache)
        plain = golden_model(x[:1], ids[:1], txt[:1], tids[:1], torch.full((1,), 0.5), y[:1])
    assert torch.equal(half, plain)
    assert (cache.rows_run, cache.rows_reused) == (3, 0)


@pytest.mark.parametrize("method", ["euler", "heun", "midpoint", "ab2"])
def test_guidance_interval_with_one_cache_per_stream(
    golden_model: MusicFlux, golden_tiny: dict, method: str
) -> None:
    g = golden_tiny
    x = pack(g["sample.z0_latent"])
    ids2, tids2 = torch.cat((g["prepare.img_ids"],) * 2), torch.cat((g["prepare.txt_ids"],) * 2)
    txt2, y2 = (
        torch.cat((g["forward.txt"], g["sample.null_txt"])),
        torch.cat((g["forward.y"], g["sample.null_y"])),
    )

    def run(threshold: float | None) -> tuple[torch.Tensor, list[StepCache]]:
        caches = [] if threshold is None else [StepCache(threshold), StepCache(threshold)]
        a, b = (None, None) if threshold is None else caches
        batched = golden_model.bind(ids2, txt2, tids2, y2, cache=a)
        cond = golden_model.bind(ids2[:1], txt2[:1], tids2[:1], y2[:1], cache=b)
        guided = classifier_free_guidance(batched, 3.0, interval=(0.0, 0.5), conditional_fn=cond)
        with torch.no_grad():
            return sample(guided, x, steps=6, method=method), caches

    plain, _ = run(None)
    off, _ = run(0.0)
    assert torch.equal(off, plain)
    cached, (guided_cache, cond_cache) = run(0.5)
    assert guided_cache.rows_run >= 2 and cond_cache.rows_run >= 1  # each stream's first call runs
    assert guided_cache.rows_reused + cond_cache.rows_reused > 0
    assert torch.isfinite(cached).all()
    assert (cached - plain).abs().max() < 0.5 * plain.abs().max()


def test_bad_threshold_is_refused() -> None:
    for bad in (-0.1, float("nan"), float("inf"), "a"):
        with pytest.raises(ValueError, match="cache threshold"):
            StepCache(bad)  # type: ignore[arg-type]
