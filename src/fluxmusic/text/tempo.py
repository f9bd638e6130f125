"""The tempo a prompt asks for: a number ("132 BPM", "90 beats per minute") or, failing that, a tempo word.

Models with a tempo input (``fluxmusic.model.tempo``) take the BPM as a number; the pipeline reads it
from the prompt with :func:`prompt_bpm` unless one is given explicitly.
"""

from __future__ import annotations

import re

from fluxmusic.sampling import MAX_BPM, MIN_BPM  # the tempi read from prompts and accepted as ``bpm``

__all__ = ["MAX_BPM", "MIN_BPM", "TEMPO_WORDS", "prompt_bpm"]

TEMPO_WORDS: dict[str, float] = {
    "very fast": 160.0,
    "rapid": 160.0,
    "racing": 160.0,
    "presto": 170.0,
    "allegro": 130.0,
    "fast": 122.0,
    "brisk": 122.0,
    "quick": 122.0,
    "moderately paced": 90.0,
    "mid-tempo": 90.0,
    "moderate": 90.0,
    "moderato": 100.0,
    "andante": 84.0,
    "slow": 66.0,
    "unhurried": 66.0,
    "leisurely": 66.0,
    "adagio": 66.0,
    "largo": 50.0,
}
"""Tempo words and the BPM they stand for, matched longest first. The English words are the demo
dataset's tempo classes (slow <= 75, moderate <= 105, fast <= 139, very fast above) at their centres."""

_NUMBER = re.compile(
    r"(?<![\d.])(\d{2,3}(?:\.\d+)?)\s*-?\s*(?:bpm|beats\s+(?:per|a|/)\s*min(?:ute)?)\b", re.IGNORECASE
)
_WORDS = re.compile(
    r"\b(" + "|".join(re.escape(w) for w in sorted(TEMPO_WORDS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


def prompt_bpm(prompt: str) -> float | None:
    """The BPM a prompt names ("a reel, 132 BPM", "at 90 beats per minute"), else its first tempo word's,
    else None.

    Numbers outside [MIN_BPM, MAX_BPM] are not read as tempi.
    """
    for match in _NUMBER.finditer(prompt):
        value = float(match.group(1))
        if MIN_BPM <= value <= MAX_BPM:
            return value
    word = _WORDS.search(prompt)
    return TEMPO_WORDS[word.group(1).lower()] if word else None
