"""General MIDI instruments used by the demo dataset, grouped by family.

Programs are 0-based General MIDI numbers as written into MIDI files (FluidR3_GM follows GM). Each
instrument has a comfortable pitch range (MIDI note numbers) used to pick octave transpositions, and a
flag saying whether it can play several voices at once (a "chordal" reduction of a polyphonic score).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Instrument:
    """One General MIDI instrument.

    Attributes:
        program: 0-based GM program number.
        names: caption names; the first is canonical and used in metadata.
        family: family name (a key of ``FAMILIES``).
        low: lowest comfortable MIDI note.
        high: highest comfortable MIDI note.
        chordal: True when the instrument can play a chordal reduction of several parts.
    """

    program: int
    names: tuple[str, ...]
    family: str
    low: int
    high: int
    chordal: bool = False

    @property
    def name(self) -> str:
        """Canonical caption name."""
        return self.names[0]

    @property
    def section(self) -> bool:
        """True for instruments that sound like a group (never called "solo")."""
        return self.family in ("ensemble", "synth pad") or self.program in (45, 61)


def _table() -> dict[int, Instrument]:
    by_family: dict[str, tuple[tuple[int, tuple[str, ...], int, int, bool], ...]] = {
        "piano": (
            (0, ("grand piano", "piano", "acoustic piano"), 21, 108, True),
            (1, ("bright piano", "piano"), 21, 108, True),
            (4, ("electric piano", "Rhodes piano"), 28, 103, True),
            (6, ("harpsichord",), 29, 89, True),
        ),
        "chromatic percussion": (
            (8, ("celesta",), 60, 108, True),
            (9, ("glockenspiel",), 72, 108, True),
            (10, ("music box",), 60, 96, True),
            (11, ("vibraphone", "vibes"), 53, 89, True),
            (12, ("marimba",), 45, 96, True),
            (13, ("xylophone",), 65, 108, True),
            (14, ("tubular bells", "chimes"), 60, 77, False),
        ),
        "organ": (
            (16, ("drawbar organ", "organ"), 36, 96, True),
            (19, ("church organ", "pipe organ", "organ"), 24, 96, True),
            (20, ("reed organ", "harmonium"), 36, 96, True),
            (21, ("accordion",), 41, 89, True),
            (22, ("harmonica",), 60, 84, False),
        ),
        "guitar": (
            (24, ("nylon-string guitar", "classical guitar", "guitar"), 40, 84, True),
            (25, ("steel-string guitar", "acoustic guitar", "guitar"), 40, 84, True),
            (26, ("jazz guitar", "guitar"), 40, 86, True),
            (27, ("clean electric guitar", "electric guitar", "guitar"), 40, 86, True),
        ),
        "bass": (
            (32, ("acoustic bass", "upright bass", "bass"), 28, 55, False),
            (33, ("electric bass", "bass guitar", "bass"), 28, 60, False),
            (35, ("fretless bass", "bass"), 28, 60, False),
        ),
        "strings": (
            (40, ("violin", "fiddle"), 55, 100, False),
            (41, ("viola",), 48, 88, False),
            (42, ("cello", "violoncello"), 36, 76, False),
            (43, ("contrabass", "double bass"), 28, 60, False),
            (45, ("pizzicato strings",), 28, 96, True),
            (46, ("harp",), 24, 103, True),
        ),
        "ensemble": (
            (48, ("string ensemble", "string section", "string orchestra"), 28, 96, True),
            (49, ("slow strings", "string pads"), 28, 96, True),
            (50, ("synth strings",), 28, 96, True),
            (52, ("choir", "choir aahs", "voices"), 48, 79, True),
            (53, ("voice oohs", "humming voices"), 48, 79, True),
        ),
        "brass": (
            (56, ("trumpet",), 54, 86, False),
            (57, ("trombone",), 40, 72, False),
            (58, ("tuba",), 28, 58, False),
            (60, ("french horn", "horn"), 41, 77, False),
            (61, ("brass section", "brass"), 36, 84, True),
        ),
        "reeds": (
            (64, ("soprano sax", "soprano saxophone"), 56, 88, False),
            (65, ("alto sax", "alto saxophone"), 49, 81, False),
            (66, ("tenor sax", "tenor saxophone"), 44, 76, False),
            (67, ("baritone sax", "baritone saxophone"), 36, 69, False),
            (68, ("oboe",), 58, 91, False),
            (69, ("english horn", "cor anglais"), 52, 81, False),
            (70, ("bassoon",), 34, 72, False),
            (71, ("clarinet",), 50, 91, False),
        ),
        "pipes": (
            (72, ("piccolo",), 74, 108, False),
            (73, ("flute",), 60, 96, False),
            (74, ("recorder",), 60, 96, False),
            (75, ("pan flute", "panpipes"), 60, 96, False),
            (77, ("shakuhachi",), 55, 84, False),
            (78, ("tin whistle", "whistle"), 72, 96, False),
            (79, ("ocarina",), 60, 84, False),
        ),
        "synth lead": (
            (80, ("square lead", "square-wave synth lead", "synth lead"), 36, 96, False),
            (81, ("sawtooth lead", "saw synth lead", "synth lead"), 36, 96, False),
            (82, ("calliope lead", "calliope"), 48, 96, False),
            (85, ("voice lead", "synth voice lead"), 48, 90, False),
        ),
        "synth pad": (
            (88, ("new age pad", "synth pad"), 36, 96, True),
            (89, ("warm pad", "synth pad"), 36, 96, True),
            (90, ("polysynth pad", "polysynth", "synth pad"), 36, 96, True),
            (91, ("choir pad", "synth choir"), 36, 96, True),
            (94, ("halo pad", "synth pad"), 36, 96, True),
        ),
        "ethnic": (
            (104, ("sitar",), 48, 84, False),
            (105, ("banjo",), 48, 84, True),
            (106, ("shamisen",), 50, 84, False),
            (107, ("koto",), 55, 91, True),
            (108, ("kalimba", "thumb piano"), 60, 84, True),
            (109, ("bagpipe", "bagpipes"), 60, 84, False),
            (110, ("fiddle", "folk fiddle"), 55, 100, False),
            (111, ("shanai", "shehnai"), 60, 90, False),
        ),
    }
    return {
        program: Instrument(program, names, family, low, high, chordal)
        for family, rows in by_family.items()
        for program, names, low, high, chordal in rows
    }


INSTRUMENTS: dict[int, Instrument] = _table()
"""GM program -> instrument, for every program the builder may choose."""

FAMILY_WORDS: dict[str, tuple[str, ...]] = {
    "piano": ("piano", "keyboard"),
    "chromatic percussion": ("mallets", "mallet percussion", "tuned percussion"),
    "organ": ("organ", "keyboard"),
    "guitar": ("guitar", "guitars"),
    "bass": ("bass",),
    "strings": ("strings", "bowed strings"),
    "ensemble": ("ensemble", "strings and voices"),
    "brass": ("brass",),
    "reeds": ("reeds", "woodwinds"),
    "pipes": ("pipes", "flutes"),
    "synth lead": ("synth lead", "synthesizer"),
    "synth pad": ("synth pad", "synthesizer pads"),
    "ethnic": ("ethnic instruments", "world instruments", "plucked folk instruments"),
    "mixed": ("mixed ensemble", "mixed instruments"),
}
"""Family -> caption words; ``mixed`` is the family of ensembles drawn from several families."""

FAMILIES: tuple[str, ...] = tuple(f for f in FAMILY_WORDS if f != "mixed")
"""Families a clip can be drawn from (``mixed`` is produced by mixed ensembles, not requested)."""


def programs_of(family: str) -> tuple[int, ...]:
    """GM programs of one family, ascending."""
    return tuple(p for p, ins in INSTRUMENTS.items() if ins.family == family)


# Family ensembles: instruments for the parts of a polyphonic score, highest part first.
FAMILY_ENSEMBLES: dict[str, tuple[tuple[str, tuple[int, ...]], ...]] = {
    "strings": (("string quartet", (40, 40, 41, 42, 43)), ("string trio", (40, 41, 42, 42, 43))),
    "brass": (("brass quartet", (56, 56, 60, 57, 58)), ("brass choir", (56, 60, 60, 57, 58))),
    "reeds": (("woodwind quartet", (68, 71, 69, 70, 70)), ("saxophone quartet", (64, 65, 66, 67, 67))),
    "pipes": (("flute choir", (72, 73, 73, 74, 74)), ("recorder consort", (74, 74, 73, 73, 73))),
    "ensemble": (("choir", (52, 52, 53, 52, 52)), ("strings and choir", (52, 48, 48, 48, 49))),
    "guitar": (("guitar ensemble", (27, 25, 24, 24, 24)),),
    "chromatic percussion": (("mallet ensemble", (9, 11, 12, 12, 12)),),
    "piano": (("keyboard ensemble", (0, 6, 0, 0, 0)),),
    "organ": (("organ consort", (21, 19, 19, 19, 19)),),
    "synth lead": (("synth ensemble", (80, 81, 81, 80, 80)),),
    "synth pad": (("pad ensemble", (89, 88, 90, 90, 90)),),
    "ethnic": (("folk plucked ensemble", (110, 105, 107, 107, 107)),),
    "bass": (("bass ensemble", (33, 32, 35, 32, 32)),),
}

MIXED_LEADS: tuple[int, ...] = (40, 73, 68, 71, 56, 0, 24, 80, 110, 11, 74, 21)
"""Programs for the top part of a mixed ensemble."""
MIXED_INNER: tuple[int, ...] = (41, 71, 60, 0, 24, 48, 46, 69, 12, 20)
"""Programs for inner parts of a mixed ensemble."""
MIXED_BASS: tuple[int, ...] = (42, 70, 58, 32, 43, 57, 33)
"""Programs for the lowest part of a mixed ensemble."""
DRONE_PROGRAMS: tuple[int, ...] = (19, 42, 70, 48, 20, 89)
"""Programs that sustain a tonic drone under a monophonic tune."""
