"""Long form and continuation on tiny random components: lengths, windows, kept samples, seeds, tempo."""

from __future__ import annotations

import math

import pytest
import torch

from fluxmusic import FluxMusicPipeline
from fluxmusic.pipeline.edit_inputs import CROSSFADE_SECONDS, LONG_FORM_MAX_SECONDS
from fluxmusic.pipeline.long_form import plan_windows

RATE = 16000
FADE = round(CROSSFADE_SECONDS * RATE)
WINDOW = 1.28  # the tiny model's trained window


def tone(seconds: float, seed: int = 0) -> torch.Tensor:
    t = torch.arange(round(seconds * RATE)) / RATE
    noise = torch.randn(t.shape[0], generator=torch.Generator().manual_seed(seed))
    return 0.3 * torch.sin(2 * torch.pi * 330 * t) + 0.02 * noise


def kw(**extra: object) -> dict:
    return {"steps": 2, "seed": 3, "progress": False, **extra}


def count_denoise(pipe: FluxMusicPipeline, monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor | None]:
    """Patch ``pipe.denoise`` to record each call's tempo rows (one call per window)."""
    calls: list[torch.Tensor | None] = []
    denoise = pipe.denoise

    def spy(noise: torch.Tensor, emb: object, tempo: torch.Tensor | None, *args: object, **kwargs: object):  # noqa: ANN202
        calls.append(tempo)
        return denoise(noise, emb, tempo, *args, **kwargs)

    monkeypatch.setattr(pipe, "denoise", spy)
    return calls


@pytest.mark.parametrize("duration", [1.0, 2.5, 4.0, 6.17])
def test_long_form_has_the_exact_length(tiny_pipeline: FluxMusicPipeline, duration: float) -> None:
    out = tiny_pipeline.long_form("a slow organ chorale", duration, **kw())
    assert out.waveforms.shape == (1, round(duration * RATE)) and torch.isfinite(out.waveforms).all()
    assert out.mels.shape == (1, tiny_pipeline.latent_frames(duration), 64)


def test_within_the_window_long_form_is_text_to_music(tiny_pipeline: FluxMusicPipeline) -> None:
    a = tiny_pipeline.long_form("a jig", WINDOW, **kw())
    b = tiny_pipeline("a jig", duration=WINDOW, **kw())
    assert torch.equal(a.waveforms, b.waveforms) and a.edit is None


def test_a_long_piece_starts_with_the_text_to_music_clip(tiny_pipeline: FluxMusicPipeline) -> None:
    long = tiny_pipeline.long_form("a jig", 3.0, **kw())
    first = tiny_pipeline("a jig", duration=WINDOW, **kw())
    keep = round((WINDOW - 0.64) * RATE)  # up to the context of the next window, whose middle fades
    assert torch.equal(long.waveforms[:, :keep], first.waveforms[:, :keep])
    again = tiny_pipeline.long_form("a jig", 3.0, **kw())
    other = tiny_pipeline.long_form("a jig", 3.0, **kw(seed=4))
    assert torch.equal(long.waveforms, again.waveforms) and not torch.equal(long.waveforms, other.waveforms)
    assert long.edit.operation == "long-form" and long.edit.overlap == pytest.approx(0.64)


def test_window_count_grows_linearly_with_duration() -> None:
    frame, window, overlap, patch = 640, 128, 64, 4  # the bundled model: 40 ms frames, 5.12 s windows
    totals = (round(61.44 * RATE), round(122.88 * RATE))
    counts = [len(plan_windows(81920, total, window, overlap, frame, patch)) + 1 for total in totals]
    hop = (window - overlap) * frame / RATE
    assert counts[0] == 1 + math.ceil((61.44 - 5.12) / hop) == 23
    assert counts[1] == 1 + math.ceil((122.88 - 5.12) / hop)
    plan = plan_windows(81920, round(61.44 * RATE), window, overlap, frame, patch)
    assert all(w.frames <= window and w.frames % patch == 0 for w in plan)
    assert sum(w.frames - w.context for w in plan) * frame >= round((61.44 - 5.12) * RATE)


def test_each_window_costs_one_denoise_and_continues_the_beat(
    tiny_pipeline_tempo: FluxMusicPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_denoise(tiny_pipeline_tempo, monkeypatch)
    out = tiny_pipeline_tempo.long_form("a reel at 120 BPM", 3.2, overlap=0.64, **kw())
    assert len(calls) == out.edit.windows == 1 + math.ceil((3.2 - WINDOW) / (WINDOW - 0.64))
    assert calls[0][0].tolist() == [120.0, 0.0]
    starts = [WINDOW - 0.64 + k * (WINDOW - 0.64) for k in range(len(calls) - 1)]
    for tempo, start in zip(calls[1:], starts):
        assert tempo[0, 0] == 120.0 and tempo[0, 1].item() == pytest.approx(start * 2.0, abs=1e-4)


def test_continuation_keeps_the_input_and_reaches_the_duration(tiny_pipeline: FluxMusicPipeline) -> None:
    audio = tone(0.9)
    short = tiny_pipeline.continuation(audio, "a jig", 1.2, **kw())  # fits one window: the whole input known
    long = tiny_pipeline.continuation(audio, ["a jig", "a reel"], 3.3, **kw())
    keep = audio.shape[0] - FADE
    assert short.waveforms.shape == (1, round(1.2 * RATE)) and short.edit.windows == 1
    assert long.waveforms.shape == (2, round(3.3 * RATE)) and long.edit.windows > 1
    assert torch.equal(short.waveforms[0, :keep], audio[:keep])
    assert torch.equal(long.waveforms[:, :keep], audio[:keep].expand(2, -1))
    assert not torch.equal(long.waveforms[0, audio.shape[0] :], long.waveforms[1, audio.shape[0] :])
    again = tiny_pipeline.continuation(audio, ["a jig", "a reel"], 3.3, **kw())
    assert torch.equal(long.waveforms, again.waveforms)
    assert long.edit.operation == "continuation" and long.edit.source.seconds == pytest.approx(0.9)


def test_continuing_an_input_longer_than_the_window_uses_its_last_part(
    tiny_pipeline: FluxMusicPipeline,
) -> None:
    audio = tone(3.0)
    out = tiny_pipeline.continuation(audio, "a jig", 3.5, overlap=0.4, **kw())
    assert out.waveforms.shape == (1, round(3.5 * RATE)) and out.edit.windows == 1
    assert torch.equal(out.waveforms[0, : audio.shape[0] - FADE], audio[: audio.shape[0] - FADE])


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda p: p.long_form("x", LONG_FORM_MAX_SECONDS + 1, **kw()), "600"),
        (lambda p: p.long_form("x", 3.0, overlap=WINDOW, **kw()), "overlap must be in"),
        (lambda p: p.long_form("x", 3.0, overlap=-1.0, **kw()), "overlap must be in"),
        (lambda p: p.continuation(tone(1.0), "x", 1.0, **kw()), "longer than the input"),
        (lambda p: p.continuation(tone(1.0), "x", 0.5, **kw()), "longer than the input"),
        (lambda p: p.continuation(tone(1.0), "x", 700.0, **kw()), "600"),
        (lambda p: p.long_form("x", 3.0, seed=1, generator=torch.Generator(), progress=False), "not both"),
    ],
)
def test_bad_long_requests_name_the_problem(tiny_pipeline: FluxMusicPipeline, call, match: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=match):
        call(tiny_pipeline)


def test_text_to_music_keeps_one_window(tiny_pipeline: FluxMusicPipeline) -> None:
    # pipe(...) stays one window, as before; a long piece is asked for with long_form
    with pytest.raises(ValueError, match="duration"):
        tiny_pipeline("x", duration=30.0, steps=1, progress=False)
