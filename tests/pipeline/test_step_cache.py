"""Step caching through the pipeline: off by default, threshold 0 bit-identical, intervals and editing."""

from __future__ import annotations

import torch

from fluxmusic import FluxMusicPipeline
from fluxmusic.flow.cache import StepCache
from fluxmusic.pipeline.prepare import prepare


def _gen(pipe: FluxMusicPipeline, **kwargs):  # noqa: ANN202
    args = {"prompt": ["a calm piano piece", "a fast reel"], "duration": 0.64, "steps": 6, "progress": False}
    return pipe(**{**args, "seed": 0, **kwargs})


def test_caching_is_off_by_default_and_threshold_zero_is_identical(tiny_pipeline: FluxMusicPipeline) -> None:
    plain = _gen(tiny_pipeline)
    assert plain.settings.cache_threshold == 0.0
    assert torch.equal(_gen(tiny_pipeline, cache_threshold=0.0).waveforms, plain.waveforms)


def _denoise(pipe: FluxMusicPipeline, threshold: float, **given: object) -> tuple[torch.Tensor, tuple]:
    settings = pipe.settings(duration=0.64, seed=0, cache_threshold=threshold, **given)
    req = prepare(pipe, ["a calm piano piece", "a fast reel"], settings, 1, None)
    noise = req.noise(pipe, pipe.latent_frames(settings.duration))
    caches = (StepCache(threshold), StepCache(threshold))
    return pipe.denoise(noise, req.emb, req.tempo, req.settings, progress=False, caches=caches), caches


def test_caches_serve_the_guided_batch_and_the_interval_rows(tiny_pipeline: FluxMusicPipeline) -> None:
    kwargs = {"steps": 8, "guidance": 3.0, "guidance_interval": (0.0, 0.5), "sampler": "heun"}
    reference, off = _denoise(tiny_pipeline, 0.0, **kwargs)
    assert off[0].rows_reused == off[1].rows_reused == 0
    assert off[0].rows_run == 4 * 9 and off[1].rows_run == 2 * 7  # guided rows 2B, interval rows B
    latent, (guided, cond) = _denoise(tiny_pipeline, 0.3, **kwargs)
    assert guided.rows_reused > 0 or cond.rows_reused > 0
    assert guided.rows_run + guided.rows_reused == 4 * 9 and cond.rows_run + cond.rows_reused == 2 * 7
    assert torch.isfinite(latent).all()
    assert (latent - reference).norm() < 0.5 * reference.norm()


def test_a_clip_regenerated_alone_matches_its_batch_with_caching(tiny_pipeline: FluxMusicPipeline) -> None:
    both = _gen(tiny_pipeline, cache_threshold=0.2, sampler="ab2")
    alone = _gen(tiny_pipeline, prompt="a fast reel", seed=1, cache_threshold=0.2, sampler="ab2")
    tol = 1e-4 * both.waveforms.abs().max()
    torch.testing.assert_close(alone.waveforms[0], both.waveforms[1], atol=tol, rtol=0)


def test_variation_runs_with_caching(tiny_pipeline: FluxMusicPipeline) -> None:
    clip = 0.3 * torch.randn(round(0.64 * 16000), generator=torch.Generator().manual_seed(0))
    out = tiny_pipeline.variation(clip, "a jig", 0.5, steps=4, seed=0, progress=False, cache_threshold=0.2)
    assert out.settings.cache_threshold == 0.2 and torch.isfinite(out.waveforms).all()
