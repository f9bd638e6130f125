"""The optional tempo input: the beat grid's values, zero start, the no-tempo rows, bad input."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from fluxmusic.config import PRESETS, MusicFluxConfig
from fluxmusic.model import MusicFlux, image_ids, text_ids
from fluxmusic.model.tempo import HARMONICS, beat_grid

TEMPO_TINY = dataclasses.replace(PRESETS["tiny"], tempo_frame_seconds=0.04)


def _inputs(batch: int = 2):  # noqa: ANN202 - latent (8, 16, 8) in 2 x 2 patches: 32 tokens
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(batch, 32, 32, generator=g),
        image_ids(batch, 16, 8),
        torch.randn(batch, 5, 40, generator=g),
        text_ids(batch, 5),
        torch.rand(batch, generator=g),
        torch.randn(batch, 24, generator=g),
    )


def test_beat_grid_counts_beats_from_the_phase() -> None:
    ids = image_ids(1, 16, 8, patch=2)  # token row r holds latent frames 2r and 2r + 1
    grid = beat_grid(torch.tensor([[150.0, 0.25]]), ids, patch=2, frame_seconds=0.04)
    k = len(HARMONICS)
    assert grid.shape == (1, 32, 2 * 2 * k)
    token = 4 * 3 + 1  # time row 3 (4 mel columns per row), any column
    frame = 3 * 2 + 1  # its second latent frame: 0.28 s = 0.7 beats at 150 BPM, + 0.25
    beats = 0.25 + frame * 0.04 * 150 / 60
    expected = [math.cos(2 * math.pi * h * beats) for h in HARMONICS]
    expected += [math.sin(2 * math.pi * h * beats) for h in HARMONICS]
    torch.testing.assert_close(grid[0, token, 2 * k :], torch.tensor(expected), atol=1e-5, rtol=0)
    assert torch.equal(grid[0, token], grid[0, 4 * 3])  # every mel column of a row has the same grid


def test_rows_without_a_tempo_get_zero_features() -> None:
    ids = image_ids(2, 16, 8)
    grid = beat_grid(torch.tensor([[0.0, 0.5], [90.0, 0.0]]), ids, patch=2, frame_seconds=0.04)
    assert grid[0].abs().sum() == 0 and grid[1].abs().sum() > 0


def test_new_tempo_input_changes_nothing_until_trained() -> None:
    torch.manual_seed(0)
    model = MusicFlux(TEMPO_TINY).eval()
    x, ids, txt, tids, t, y = _inputs()
    plain = model(x, ids, txt, tids, t, y)
    with_tempo = model(x, ids, txt, tids, t, y, tempo=torch.tensor([[120.0, 0.0], [60.0, 0.5]]))
    torch.testing.assert_close(with_tempo, plain, atol=0, rtol=0)


def test_trained_tempo_input_moves_only_rows_with_a_tempo() -> None:
    torch.manual_seed(0)
    model = MusicFlux(TEMPO_TINY).eval()
    assert model.tempo_in is not None
    with torch.no_grad():
        for p in model.tempo_in.parameters():
            p.normal_(0, 0.1)
    x, ids, txt, tids, t, y = _inputs()
    plain = model(x, ids, txt, tids, t, y)
    out = model(x, ids, txt, tids, t, y, tempo=torch.tensor([[0.0, 0.0], [100.0, 0.0]]))
    torch.testing.assert_close(out[0], plain[0], atol=1e-6, rtol=0)  # bpm 0: no tempo
    assert (out[1] - plain[1]).abs().max() > 1e-3
    faster = model(x, ids, txt, tids, t, y, tempo=torch.tensor([[0.0, 0.0], [140.0, 0.0]]))
    assert (faster[1] - out[1]).abs().max() > 1e-3


def test_reference_configs_build_no_tempo_input() -> None:
    assert MusicFlux.random(PRESETS["tiny"]).tempo_in is None
    model = MusicFlux(PRESETS["tiny"])
    assert not any(k.startswith("tempo_in") for k in model.state_dict())
    x, ids, txt, tids, t, y = _inputs()
    with pytest.raises(ValueError, match="no tempo input"):
        model(x, ids, txt, tids, t, y, tempo=torch.zeros(2, 2))


@pytest.mark.parametrize(
    "tempo,match", [(torch.zeros(2, 3), r"\(2, 2\)"), (torch.tensor([[float("nan"), 0.0]] * 2), "NaN")]
)
def test_bad_tempo_tensors_are_named(tempo: torch.Tensor, match: str) -> None:
    x, ids, txt, tids, t, y = _inputs()
    with pytest.raises(ValueError, match=match):
        MusicFlux(TEMPO_TINY)(x, ids, txt, tids, t, y, tempo=tempo)


@pytest.mark.parametrize("value", [-0.04, float("nan"), 12.0])
def test_bad_tempo_frame_seconds(value: float) -> None:
    with pytest.raises(ValueError, match="tempo_frame_seconds"):
        MusicFluxConfig(tempo_frame_seconds=value)
