"""Variation and inpainting on tiny random components: lengths, kept samples, seeds, strength 1."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
import torch

from fluxmusic import FluxMusicPipeline
from fluxmusic.audio import SilentAudioError, read_audio
from fluxmusic.files import sha256_file
from fluxmusic.pipeline.edit_inputs import CROSSFADE_SECONDS
from fluxmusic.pipeline.editing import encode_latent, inpaint_windows, load_input, pinned_denoise
from fluxmusic.pipeline.joins import region_weights
from fluxmusic.pipeline.prepare import prepare

RATE = 16000
FADE = round(CROSSFADE_SECONDS * RATE)


def tone(seconds: float, seed: int = 0, rate: int = RATE) -> torch.Tensor:
    """A test input with sound everywhere: two partials and a little noise."""
    t = torch.arange(round(seconds * rate)) / rate
    noise = torch.randn(t.shape[0], generator=torch.Generator().manual_seed(seed))
    return 0.3 * torch.sin(2 * torch.pi * 220 * t) + 0.1 * torch.sin(2 * torch.pi * 550 * t) + 0.02 * noise


def kw(**extra: object) -> dict:
    return {"steps": 2, "seed": 4, "progress": False, **extra}


def test_variation_at_strength_one_is_text_to_music_bit_for_bit(tiny_pipeline: FluxMusicPipeline) -> None:
    audio = tone(0.8)
    varied = tiny_pipeline.variation(audio, "a jig", strength=1.0, **kw())
    plain = tiny_pipeline("a jig", duration=0.8, **kw())
    assert torch.equal(varied.waveforms, plain.waveforms) and torch.equal(varied.mels, plain.mels)
    assert varied.edit.operation == "variation" and varied.edit.strength == 1.0


def test_variation_starts_at_the_strength_from_the_noised_input(
    tiny_pipeline: FluxMusicPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    audio, seen = tone(0.64), {}
    denoise = tiny_pipeline.denoise

    def spy(state: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        seen.update(state=state, t_start=kwargs["t_start"])
        return denoise(state, *args, **kwargs)

    monkeypatch.setattr(tiny_pipeline, "denoise", spy)
    out = tiny_pipeline.variation(audio, "a jig", strength=0.3, **kw())
    frames = tiny_pipeline.latent_frames(0.64)
    x0 = encode_latent(tiny_pipeline, audio[None], frames)
    eps = tiny_pipeline.initial_noise(1, frames, [4], None)
    assert seen["t_start"] == 0.3
    torch.testing.assert_close(seen["state"], 0.7 * x0 + 0.3 * eps)
    assert out.waveforms.shape == (1, audio.shape[0]) and torch.isfinite(out.waveforms).all()


def test_variation_keeps_the_input_length_and_reproduces_from_its_seed(
    tiny_pipeline: FluxMusicPipeline,
) -> None:
    audio = tone(0.7)
    a = tiny_pipeline.variation(audio, ["a jig", "a reel"], strength=0.5, **kw())
    b = tiny_pipeline.variation(audio, ["a jig", "a reel"], strength=0.5, **kw())
    c = tiny_pipeline.variation(audio, ["a jig", "a reel"], strength=0.5, **kw(seed=5))
    assert a.waveforms.shape == (2, audio.shape[0]) and a.seeds == [4, 5]
    assert torch.equal(a.waveforms, b.waveforms) and not torch.equal(a.waveforms, c.waveforms)
    assert a.settings.duration == pytest.approx(0.7)


def test_inpaint_keeps_the_input_samples_outside_the_regions(tiny_pipeline: FluxMusicPipeline) -> None:
    audio = tone(1.2)
    out = tiny_pipeline.inpaint(audio, "a jig", [(0.2, 0.4), "0.8:1.0"], num_per_prompt=2, **kw())
    assert out.waveforms.shape == (2, audio.shape[0])
    keep = region_weights(audio.shape[0], [(3200, 6400), (12800, 16000)], FADE) == 0
    assert keep.sum() == audio.shape[0] - 2 * (3200 + 2 * FADE)
    assert torch.equal(out.waveforms[:, keep], audio[keep].expand(2, -1))  # bit for bit
    assert not torch.equal(out.waveforms[0, 3200:6400], audio[3200:6400])
    assert not torch.equal(out.waveforms[0], out.waveforms[1])  # each row its own seed
    assert out.edit.regions == ((0.2, 0.4), (0.8, 1.0)) and out.edit.windows == 1
    assert out.mels.shape == (2, tiny_pipeline.latent_frames(1.2), 64)


def test_inpaint_reproduces_from_its_seed(tiny_pipeline: FluxMusicPipeline) -> None:
    audio = tone(0.8)
    a, b = (tiny_pipeline.inpaint(audio, "a reel", [(0.3, 0.5)], **kw()) for _ in range(2))
    c = tiny_pipeline.inpaint(audio, "a reel", [(0.3, 0.5)], **kw(seed=9))
    assert torch.equal(a.waveforms, b.waveforms) and not torch.equal(a.waveforms, c.waveforms)


def test_pinned_frames_end_exactly_at_the_known_latent(tiny_pipeline: FluxMusicPipeline) -> None:
    settings = tiny_pipeline.settings(steps=3, seed=0, duration=0.64)
    req = prepare(tiny_pipeline, "a jig", settings)
    frames = tiny_pipeline.latent_frames(0.64)
    x0 = encode_latent(tiny_pipeline, tone(0.64)[None], frames)
    keep = torch.zeros(x0.shape[2])
    keep[:8] = 1.0
    noise = req.noise(tiny_pipeline, frames)
    latent = pinned_denoise(tiny_pipeline, req, x0, keep, noise, None, progress=False)
    assert torch.equal(latent[:, :, :8], x0[:, :, :8])
    assert not torch.allclose(latent[:, :, 8:], x0[:, :, 8:])


def test_long_inputs_are_inpainted_in_windows_around_the_regions(tiny_pipeline: FluxMusicPipeline) -> None:
    audio = tone(4.0)  # the tiny model's window is 1.28 s
    regions = [(0.5, 0.7), (0.8, 0.9), (3.0, 3.3)]
    out = tiny_pipeline.inpaint(audio, "a jig", regions, **kw())
    spans = [(round(a * RATE), round(b * RATE)) for a, b in regions]
    assert out.edit.windows == 2  # the first two share a window
    keep = region_weights(audio.shape[0], spans, FADE) == 0
    assert torch.equal(out.waveforms[0, keep], audio[keep])
    windows = inpaint_windows(tiny_pipeline, audio.shape[0], spans)
    assert all(end - start == round(1.28 * RATE) for start, end, _ in windows)


def test_a_file_is_resampled_mixed_to_mono_and_identified(
    tmp_path: Path, tiny_pipeline: FluxMusicPipeline
) -> None:
    stereo = torch.stack((tone(1.0, rate=22050), tone(1.0, seed=1, rate=22050))).T.numpy()
    path = tmp_path / "take.flac"
    sf.write(path, stereo, 22050)
    source = load_input(path, RATE)
    assert source.source.file == "take.flac" and source.source.sha256 == sha256_file(path)
    assert source.source.channels == 2 and source.source.sample_rate == 22050
    assert torch.equal(source.waveform, read_audio(path, RATE, channel=None))
    out = tiny_pipeline.inpaint(path, "a jig", [(0.4, 0.6)], **kw())
    assert out.waveforms.shape == (1, source.waveform.shape[0])
    record = out.edit.to_dict()
    assert record["operation"] == "inpaint" and record["input"]["sha256"] == sha256_file(path)
    assert record["edit"]["regions"] == [[0.4, 0.6]]


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda p, a: p.variation(a, "x", strength=0.0, **kw()), "strength must be in"),
        (lambda p, a: p.variation(a, "x", strength=1.5, **kw()), "strength must be in"),
        (lambda p, a: p.variation(a, "x", strength=0.5, duration=2.0, **kw()), "input's length"),
        (lambda p, a: p.variation(tone(30.0), "x", strength=0.5, **kw()), "trim the input"),
        (lambda p, a: p.inpaint(a, "x", [(0.5, 0.5)], **kw()), "empty"),
        (lambda p, a: p.inpaint(a, "x", [(0.5, 3.0)], **kw()), "outside the audio"),
        (lambda p, a: p.inpaint(a, "x", [(0.1, 0.5), (0.4, 0.6)], **kw()), "overlap"),
        (lambda p, a: p.inpaint(a, "x", [], **kw()), "at least one"),
        (lambda p, a: p.inpaint(a, "x", ["1-2"], **kw()), "START:END"),
        (lambda p, a: p.inpaint(torch.zeros(16000), "x", [(0.1, 0.2)], **kw()), "silent"),
        (lambda p, a: p.inpaint(a[:800], "x", [(0.01, 0.02)], **kw()), "at least 0.1 s"),
    ],
)
def test_bad_edit_requests_name_the_problem(tiny_pipeline: FluxMusicPipeline, call, match: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=match):
        call(tiny_pipeline, tone(1.0))


def test_silence_is_a_silent_audio_error(tiny_pipeline: FluxMusicPipeline) -> None:
    with pytest.raises(SilentAudioError):
        tiny_pipeline.variation(torch.full((16000,), 0.25), "x", **kw())  # a constant is silent too
