"""Captions for demo clips, in several styles, from structured attributes.

Every caption names the instrument(s) and the genre; the other attributes (BPM, tempo word, mood, key,
metre, dynamics, composer/era, register) are each left out with probability ``drop_prob``. Tempo words
follow the BPM and mood words follow mode and tempo, so captions never contradict the audio's labels.
Templates use ``[...]`` for optional groups, dropped when an attribute inside them is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

CAPTION_STYLES: tuple[str, ...] = ("tags", "shuffled_tags", "sentence", "paraphrase", "short")
"""Caption styles: tag list, tag list in random order, one sentence, varied paraphrases, minimal."""
OPTIONAL_ATTRIBUTES: tuple[str, ...] = (
    "bpm",
    "tempo",
    "mood",
    "key",
    "meter",
    "dynamics",
    "composer",
    "register",
)

TEMPO_CLASSES: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (75, "slow", ("slow", "unhurried", "leisurely")),
    (105, "moderate", ("moderate", "mid-tempo", "moderately paced")),
    (139, "fast", ("fast", "brisk", "quick")),
    (10_000, "very fast", ("very fast", "rapid", "racing")),
)
"""(highest BPM, class, words): BPM <= 75 is slow, <= 105 moderate, <= 139 fast, above very fast."""
MOODS: dict[tuple[str, str], tuple[str, ...]] = {
    ("minor", "slow"): ("sad", "melancholic", "mournful", "sombre"),
    ("minor", "moderate"): ("wistful", "pensive", "plaintive", "dark"),
    ("minor", "fast"): ("dramatic", "urgent", "restless", "driving"),
    ("minor", "very fast"): ("frantic", "fiery", "intense"),
    ("major", "slow"): ("calm", "peaceful", "serene", "tender"),
    ("major", "moderate"): ("warm", "gentle", "graceful", "pleasant"),
    ("major", "fast"): ("lively", "cheerful", "bright", "upbeat"),
    ("major", "very fast"): ("energetic", "exuberant", "joyful", "festive"),
}
"""(mode colour, tempo class) -> mood words."""
DYNAMICS_WORDS: dict[str, tuple[str, ...]] = {
    "pp": ("very soft", "pianissimo", "very quiet"),
    "p": ("soft", "quiet", "gentle dynamics"),
    "mp": ("moderately soft", "mezzo-piano"),
    "mf": ("moderately loud", "mezzo-forte"),
    "f": ("loud", "forte", "strong"),
    "ff": ("very loud", "fortissimo", "powerful"),
}
_MINOR_MODES = ("minor", "dorian", "phrygian", "locrian", "aeolian")
_SENTENCES = (
    "A [{moodtempo} ]{genre} played on {subject}[ {composer}][, {bpm}][, in {key}][, in {meter}]"
    "[, {dynamics}][, {register}].",
)
_PARAPHRASES = (
    "{Subject} {plays} a [{mood} ]{genre}[ in {key}][ at {bpm}][, {dynamics}].",
    "{Genre} arranged for {subject}[ {composer}][; {tempo} tempo][ ({bpm})][, {mood} mood][, {key}]"
    "[, {meter}].",
    "This [{mood} ]piece is a {genre} on {subject}[, {tempo}][ at {bpm}][ in {key}][, {register}].",
    "Instrumental {genre}: {subject}[, {bpm}][, {key}][, {dynamics}][, {meter}].",
    "[{Moodtempo}: ]a {genre} for {subject}[ {composer}][ in {key}][, {bpm}].",
    "{Subject}[, {register},] performing a[ {tempo}] {genre}[ {composer}][ at {bpm}][ in {key}]"
    "[. The mood is {mood}].",
)


@dataclass(frozen=True)
class CaptionAttributes:
    """Structured attributes a caption is written from (the metadata keeps them all)."""

    instruments: tuple[tuple[str, ...], ...]
    section: bool
    ensemble_name: str | None
    arrangement: str
    genre: str
    region: str | None
    composer: str
    era: str | None
    bpm: int
    tonic: str
    mode: str
    time_signature: str
    dynamics: str
    register: str


def tempo_class(bpm: int) -> str:
    """slow / moderate / fast / very fast for a BPM."""
    return next(name for top, name, _ in TEMPO_CLASSES if bpm <= top)


def mood_class(mode: str, bpm: int) -> tuple[str, str]:
    """(mode colour, tempo class) key of ``MOODS``."""
    return ("minor" if mode in _MINOR_MODES else "major", tempo_class(bpm))


def key_words(tonic: str, mode: str) -> str:
    """``"B-flat major"``, ``"F-sharp minor"``, ``"D Dorian"``."""
    name = tonic[0] + {"b": "-flat", "#": "-sharp"}.get(tonic[1:], "")
    return f"{name} {mode if mode in ('major', 'minor') else mode.capitalize()}"


def make_caption(
    attrs: CaptionAttributes, rng: np.random.Generator, style: str, drop_prob: float
) -> tuple[str, tuple[str, ...], str]:
    """Write one caption.

    Returns:
        (caption, attributes actually mentioned, mood word).
    """
    tclass = tempo_class(attrs.bpm)
    mood = str(rng.choice(MOODS[mood_class(attrs.mode, attrs.bpm)]))
    slots: dict[str, str] = {
        "subject": _subject(attrs, rng),
        "genre": _genre(attrs, rng),
        "bpm": str(rng.choice([f"{attrs.bpm} BPM", f"{attrs.bpm} bpm", f"{attrs.bpm} beats per minute"])),
        "tempo": str(rng.choice(next(w for _, n, w in TEMPO_CLASSES if n == tclass))),
        "mood": mood,
        "key": key_words(attrs.tonic, attrs.mode),
        "meter": f"{attrs.time_signature} time",
        "dynamics": str(rng.choice(DYNAMICS_WORDS[attrs.dynamics])),
        "composer": _composer(attrs, rng),
        "register": f"{attrs.register} register" if attrs.register != "middle" else "",
    }
    keep = rng.random(len(OPTIONAL_ATTRIBUTES)) >= drop_prob
    for name, kept in zip(OPTIONAL_ATTRIBUTES, keep, strict=True):
        if not kept:
            slots[name] = ""
    if style == "short":
        extras = [a for a in OPTIONAL_ATTRIBUTES if slots[a]]
        chosen = str(rng.choice(extras)) if extras else None
        slots = {k: v for k, v in slots.items() if k in ("subject", "genre") or k == chosen}
    mentioned = tuple(a for a in OPTIONAL_ATTRIBUTES if slots.get(a))
    slots["moodtempo"] = ", ".join(slots[k] for k in ("mood", "tempo") if slots.get(k))
    slots["plays"] = "plays" if attrs.arrangement in ("melody", "chordal") else "play"
    if style in ("tags", "short", "shuffled_tags"):
        order = ["subject", "genre", *OPTIONAL_ATTRIBUTES]
        tags = [re.sub(r"^an? | time$", "", slots[k]) for k in order if slots.get(k)]
        if style == "shuffled_tags":
            tags = [tags[i] for i in rng.permutation(len(tags))]
        return ", ".join(tags), mentioned, mood
    templates = _SENTENCES if style == "sentence" else _PARAPHRASES
    text = _fill(str(templates[int(rng.integers(len(templates)))]), slots)
    return text, mentioned, mood


def _fill(template: str, slots: dict[str, str]) -> str:
    """Fill ``{name}``/``{Name}`` placeholders; drop ``[...]`` groups whose placeholders are empty."""

    def value(name: str) -> str:
        text = slots.get(name.lower(), "")
        return text[:1].upper() + text[1:] if name[:1].isupper() else text

    def group(m: re.Match[str]) -> str:
        names = re.findall(r"\{(\w+)\}", m.group(1))
        return m.group(1) if all(value(n) for n in names) else ""

    text = re.sub(r"\[([^\[\]]*)\]", group, template)
    text = re.sub(r"\{(\w+)\}", lambda m: value(m.group(1)), text)
    text = re.sub(r"\s+", " ", text).replace(" ,", ",").replace(",,", ",").strip()
    text = re.sub(r"\b([Aa]) (?=[aeioAEIO]|u(?!ni))", r"\1n ", text)
    return text[:1].upper() + text[1:]


def _name(names: tuple[str, ...], rng: np.random.Generator) -> str:
    """Canonical name most of the time, an alias otherwise."""
    return names[0] if len(names) == 1 or rng.random() < 0.6 else str(rng.choice(names[1:]))


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _subject(attrs: CaptionAttributes, rng: np.random.Generator) -> str:
    names = [_name(n, rng) for n in attrs.instruments]
    names = list(dict.fromkeys(names))
    if attrs.arrangement in ("melody", "chordal"):
        if attrs.section:
            return names[0]
        return str(rng.choice([f"solo {names[0]}", names[0], f"a solo {names[0]}"]))
    if attrs.arrangement == "doubled":
        lead = _join(names[:2])
        if len(names) > 2:
            return f"{lead} over a {names[2]} drone"
        return str(rng.choice([f"{lead} in unison", lead]))
    if attrs.ensemble_name:
        return f"{attrs.ensemble_name} ({_join(names)})"
    return str(rng.choice([_join(names), f"an ensemble of {_join(names)}"]))


def _genre(attrs: CaptionAttributes, rng: np.random.Generator) -> str:
    g, region = attrs.genre, attrs.region
    surname = attrs.composer.split()[-1]
    if g == "chorale":
        return str(rng.choice(["Bach chorale", "Baroque chorale", "Lutheran chorale", "chorale"]))
    if g == "mass":
        options = [
            "Renaissance mass movement",
            "Palestrina mass movement",
            "piece of sacred Renaissance polyphony",
        ]
        return str(rng.choice(options))
    if g == "madrigal":
        return str(rng.choice(["Renaissance madrigal", "Italian madrigal", "Monteverdi madrigal"]))
    if g == "string quartet":
        options = [
            "classical chamber piece",
            f"theme from a {surname} string quartet",
            "Viennese classical piece",
            f"{surname} quartet movement",
        ]
        return str(rng.choice(options))
    if region and rng.random() < 0.8:
        return f"{region} {g}"
    return str(rng.choice([f"traditional {g}", g]))


def _composer(attrs: CaptionAttributes, rng: np.random.Generator) -> str:
    if attrs.composer == "traditional":
        return ""
    surname = attrs.composer.split()[-1]
    options = [f"by {attrs.composer}", f"by {surname}"]
    if attrs.era:
        options.append(f"in {attrs.era} style")
    return str(rng.choice(options))
