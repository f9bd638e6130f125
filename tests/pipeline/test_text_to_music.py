from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fluxmusic import FluxMusicPipeline
from fluxmusic.hub import WeightsNotFoundError


def _differs(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool((a - b).norm() > 1e-3 * a.norm())


def _gen(pipe: FluxMusicPipeline, **kwargs):  # noqa: ANN202
    args = {"prompt": "a calm piano piece", "duration": 0.64, "steps": 2, "progress": False, "seed": 0}
    return pipe(**{**args, **kwargs})


def test_same_seed_same_waveform_different_seed_differs(tiny_pipeline: FluxMusicPipeline) -> None:
    a, b, c = _gen(tiny_pipeline, seed=3), _gen(tiny_pipeline, seed=3), _gen(tiny_pipeline, seed=4)
    assert torch.equal(a.waveforms, b.waveforms)
    assert _differs(a.waveforms, c.waveforms)
    assert a.seeds == [3] and a.sample_rate == 16000


def test_batches_and_num_per_prompt(tiny_pipeline: FluxMusicPipeline) -> None:
    out = _gen(tiny_pipeline, prompt=["a reel on fiddle", "a slow organ chorale"], num_per_prompt=2, seed=10)
    assert out.waveforms.shape == (4, round(0.64 * 16000))
    assert out.prompts == ["a reel on fiddle"] * 2 + ["a slow organ chorale"] * 2
    assert out.seeds == [10, 11, 12, 13]
    # every row is reproducible alone from its reported seed
    third = _gen(tiny_pipeline, prompt="a slow organ chorale", seed=12)
    torch.testing.assert_close(
        third.waveforms[0], out.waveforms[2], atol=1e-4 * out.waveforms.abs().max(), rtol=0
    )
    assert _differs(out.waveforms[0], out.waveforms[1])


@pytest.mark.parametrize("duration", [5.12, 20.48])
def test_durations_give_exact_lengths(tiny_pipeline: FluxMusicPipeline, duration: float) -> None:
    out = _gen(tiny_pipeline, duration=duration, steps=1)
    assert out.waveforms.shape == (1, round(duration * 16000))
    assert out.mels.shape == (1, tiny_pipeline.latent_frames(duration), 64)
    assert torch.isfinite(out.waveforms).all()


def test_odd_duration_is_trimmed(tiny_pipeline: FluxMusicPipeline) -> None:
    out = _gen(tiny_pipeline, duration=0.333)
    assert out.waveforms.shape == (1, round(0.333 * 16000))


def test_negative_prompt_changes_result(tiny_pipeline: FluxMusicPipeline) -> None:
    plain = _gen(tiny_pipeline, guidance=4.0)
    negative = _gen(tiny_pipeline, guidance=4.0, negative_prompt="low quality, gentle")
    assert _differs(plain.waveforms, negative.waveforms)


def test_guidance_one_equals_conditional_only(tiny_pipeline: FluxMusicPipeline) -> None:
    a = _gen(tiny_pipeline, guidance=1.0, negative_prompt="anything")
    b = _gen(tiny_pipeline, guidance=1.0, negative_prompt="something else")
    torch.testing.assert_close(a.waveforms, b.waveforms, atol=1e-5, rtol=0)


def test_guidance_interval_changes_the_result_and_full_interval_does_not(
    tiny_pipeline: FluxMusicPipeline,
) -> None:
    plain = _gen(tiny_pipeline, guidance=4.0, steps=4)
    full = _gen(tiny_pipeline, guidance=4.0, steps=4, guidance_interval=(0.0, 1.0))
    early = _gen(tiny_pipeline, guidance=4.0, steps=4, guidance_interval=(0.5, 1.0))
    conditional = _gen(tiny_pipeline, guidance=1.0, steps=4)
    torch.testing.assert_close(full.waveforms, plain.waveforms, atol=1e-6, rtol=0)
    assert _differs(early.waveforms, plain.waveforms)
    assert _differs(early.waveforms, conditional.waveforms)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"guidance_interval": (0.8, 0.2)}, "guidance interval"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"duration": 0.0}, "duration"),
        ({"duration": 100.0}, "duration"),
        ({"duration": float("nan")}, "duration"),
        ({"steps": 0}, "steps"),
        ({"guidance": float("inf")}, "guidance"),
        ({"sampler": "ddim"}, "sampler"),
        ({"num_per_prompt": 0}, "num_per_prompt"),
        ({"prompt": ["a", "b"], "negative_prompt": ["x", "y", "z"]}, "negative"),
        ({"bpm": 120.0}, "no tempo input"),
    ],
)
def test_bad_requests(tiny_pipeline: FluxMusicPipeline, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _gen(tiny_pipeline, **kwargs)


def test_bf16_close_to_fp32(tiny_pipeline: FluxMusicPipeline) -> None:
    fp32 = _gen(tiny_pipeline, steps=4)
    tiny_pipeline.dtype = torch.bfloat16
    try:
        bf16 = _gen(tiny_pipeline, steps=4)
    finally:
        tiny_pipeline.dtype = torch.float32
    rel = (bf16.mels - fp32.mels).norm() / fp32.mels.norm()
    assert rel < 2e-2


def test_save_and_load_model_folder(tiny_pipeline: FluxMusicPipeline, tmp_path: Path) -> None:
    folder = tiny_pipeline.save_pretrained(tmp_path / "model")
    index = json.loads((folder / "fluxmusic.json").read_text())
    assert index["transformer"] == "transformer" and index["vocoder"]["type"] == "hifigan"
    loaded = FluxMusicPipeline.from_pretrained(folder, device="cpu", dtype="float32")
    torch.testing.assert_close(_gen(loaded).waveforms, _gen(tiny_pipeline).waveforms, atol=1e-5, rtol=0)


def test_patch_four_pipeline_generates_and_round_trips(
    tiny_pipeline_patch4: FluxMusicPipeline, tmp_path: Path
) -> None:
    pipe = tiny_pipeline_patch4
    assert pipe.latent_frames(1.0) % 16 == 0  # patch 4 x VAE downsample 4
    out = _gen(pipe, duration=1.0, steps=2)
    assert out.waveforms.shape == (1, 16000) and torch.isfinite(out.waveforms).all()
    assert out.mels.shape == (1, pipe.latent_frames(1.0), 64)
    folder = pipe.save_pretrained(tmp_path / "model")
    loaded = FluxMusicPipeline.from_pretrained(folder, device="cpu", dtype="float32")
    assert loaded.transformer.config.patch_size == 4
    again, first = _gen(loaded, steps=2).waveforms, _gen(pipe, steps=2).waveforms
    torch.testing.assert_close(again, first, atol=1e-5, rtol=0)


def test_released_name_offline_names_every_missing_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(WeightsNotFoundError) as err:
        FluxMusicPipeline.from_pretrained("small", device="cpu")
    message = str(err.value)
    assert "\n" not in message
    for piece in ("musicflow_s.pt", "cvssp/audioldm2", "vocoder", "stable-diffusion-3", "clap"):
        assert piece in message, piece


def test_unknown_model_and_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model"):
        FluxMusicPipeline.from_pretrained("enormous", device="cpu")
    with pytest.raises(WeightsNotFoundError, match="fluxmusic.json"):
        FluxMusicPipeline.from_pretrained(tmp_path, device="cpu")


def test_tempo_is_read_from_the_prompt_or_given(tiny_pipeline_tempo: FluxMusicPipeline) -> None:
    prompts = ["a reel, 132 BPM", "a slow air", "a calm piano piece"]
    read = _gen(tiny_pipeline_tempo, prompt=prompts)
    assert read.bpm == [132.0, 66.0, None]
    given = _gen(tiny_pipeline_tempo, prompt=prompts, bpm=[None, 100.0, None])
    assert given.bpm == [132.0, 100.0, None]
    assert not _differs(given.waveforms[0], read.waveforms[0])  # same tempo, same clip
    assert _differs(given.waveforms[1], read.waveforms[1])  # the tempo input steers the clip
    assert _gen(tiny_pipeline_tempo, prompt=prompts, bpm=90.0, num_per_prompt=2).bpm == [90.0] * 6


@pytest.mark.parametrize(
    "kwargs,match",
    [({"bpm": 5.0}, "bpm must be between"), ({"bpm": [90.0, 100.0]}, "2 bpm values for 1 prompts")],
)
def test_bad_tempo_requests(tiny_pipeline_tempo: FluxMusicPipeline, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _gen(tiny_pipeline_tempo, **kwargs)


def test_output_carries_the_resolved_settings(tiny_pipeline: FluxMusicPipeline) -> None:
    from fluxmusic.sampling import FALLBACKS, SampleSettings

    out = tiny_pipeline("a calm piano piece", steps=2, progress=False)  # no seed: one is drawn and recorded
    s = out.settings
    assert isinstance(s, SampleSettings) and s.steps == 2 and isinstance(s.seed, int)
    assert s.duration == tiny_pipeline.spec.default_duration and s.sampler == FALLBACKS["sampler"]
    assert out.seeds == [s.seed]
    again = tiny_pipeline.generate("a calm piano piece", s, progress=False)
    assert torch.equal(again.waveforms, out.waveforms)


def test_a_clip_regenerates_alone_from_its_own_settings(tiny_pipeline: FluxMusicPipeline) -> None:
    from fluxmusic.sampling import SampleSettings

    out = _gen(
        tiny_pipeline, prompt=["a reel", "an air"], negative_prompt=["noise", "hiss"], num_per_prompt=2
    )
    clip = out.clip_settings(3)
    assert clip["prompt"] == "an air" and clip["negative_prompt"] == "hiss" and clip["seed"] == 3
    alone = tiny_pipeline.generate(clip["prompt"], SampleSettings.from_dict(clip), progress=False)
    torch.testing.assert_close(alone.waveforms[0], out.waveforms[3], rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs,error,needle",
    [
        ({"prompt": None}, TypeError, "prompt must be a string"),
        ({"prompt": 123}, TypeError, "prompt must be a string"),
        ({"num_per_prompt": 1.5}, TypeError, "num_per_prompt must be an integer"),
        ({"seed": "7"}, TypeError, "seed must be an integer"),
        ({"steps": 2.7}, TypeError, "steps must be an integer"),
        ({"generator": torch.Generator()}, ValueError, "seed or generator, not both"),
    ],
)
def test_python_api_errors_name_the_argument(
    tiny_pipeline: FluxMusicPipeline, kwargs: dict, error: type, needle: str
) -> None:
    with pytest.raises(error, match=needle):
        _gen(tiny_pipeline, **kwargs)
