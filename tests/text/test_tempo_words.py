"""Reading the requested tempo from a prompt."""

from __future__ import annotations

import pytest

from fluxmusic.text.tempo import prompt_bpm


@pytest.mark.parametrize(
    "prompt,bpm",
    [
        ("A lively Irish reel on solo fiddle, 132 BPM, D major", 132.0),
        ("piano, at 90bpm", 90.0),
        ("A brisk chorale played on choir, 118 beats per minute, in D major", 118.0),
        ("a waltz at 84 beats a minute", 84.0),
        ("strings, 72.5 bpm", 72.5),
        ("a 5 bpm drone, slow", 66.0),  # out-of-range numbers are not tempi; the word is
        ("a very fast jig", 160.0),  # the longer phrase wins over "fast"
        ("A slow, sad piano piece", 66.0),
        ("brisk march for brass", 122.0),
        ("Allegro for string quartet", 130.0),
        ("a calm piano piece", None),
        ("breakfast music", None),  # words match whole words only
    ],
)
def test_prompt_bpm(prompt: str, bpm: float | None) -> None:
    assert prompt_bpm(prompt) == bpm
