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
    rows: list[tuple[int, tuple[str, ...], str, int, int, bool]] = [
        (0, ("grand piano", "piano", "acoustic piano"), "piano", 21, 108, True),
        (1, ("bright piano", "piano"), "piano", 21, 108, True),
        (4, ("electric piano", "Rhodes piano"), "piano", 28, 103, True),
        (6, ("harpsichord",), "piano", 29, 89, True),
        (8, ("celesta",), "chromatic percussion", 60, 108, True),
        (9, ("glockenspiel",), "chromatic percussion", 72, 108, True),
        (10, ("music box",), "chromatic percussion", 60, 96, True),
        (11, ("vibraphone", "vibes"), "chromatic percussion", 53, 89, True),
        (12, ("marimba",), "chromatic percussion", 45, 96, True),
        (13, ("xylophone",), "chromatic percussion", 65, 108, True),
        (14, ("tubular bells", "chimes"), "chromatic percussion", 60, 77, False),
        (16, ("drawbar organ", "organ"), "organ", 36, 96, True),
        (19, ("church organ", "pipe organ", "organ"), "organ", 24, 96, True),
        (20, ("reed organ", "harmonium"), "organ", 36, 96, True),
        (21, ("accordion",), "organ", 41, 89, True),
        (22, ("harmonica",), "organ", 60, 84, False),
        (24, ("nylon-string guitar", "classical guitar", "guitar"), "guitar", 40, 84, True),
        (25, ("steel-string guitar", "acoustic guitar", "guitar"), "guitar", 40, 84, True),
        (26, ("jazz guitar", "guitar"), "guitar", 40, 86, True),
        (27, ("clean electric guitar", "electric guitar", "guitar"), "guitar", 40, 86, True),
        (32, ("acoustic bass", "upright bass", "bass"), "bass", 28, 55, False),
        (33, ("electric bass", "bass guitar", "bass"), "bass", 28, 60, False),
        (35, ("fretless bass", "bass"), "bass", 28, 60, False),
        (40, ("violin", "fiddle"), "strings", 55, 100, False),
        (41, ("viola",), "strings", 48, 88, False),
        (42, ("cello", "violoncello"), "strings", 36, 76, False),
        (43, ("contrabass", "double bass"), "strings", 28, 60, False),
        (45, ("pizzicato strings",), "strings", 28, 96, True),
        (46, ("harp",), "strings", 24, 103, True),
        (48, ("string ensemble", "string section", "string orchestra"), "ensemble", 28, 96, True),
        (49, ("slow strings", "string pads"), "ensemble", 28, 96, True),
        (50, ("synth strings",), "ensemble", 28, 96, True),
        (52, ("choir", "choir aahs", "voices"), "ensemble", 48, 79, True),
        (53, ("voice oohs", "humming voices"), "ensemble", 48, 79, True),
        (56, ("trumpet",), "brass", 54, 86, False),
        (57, ("trombone",), "brass", 40, 72, False),
        (58, ("tuba",), "brass", 28, 58, False),
        (60, ("french horn", "horn"), "brass", 41, 77, False),
        (61, ("brass section", "brass"), "brass", 36, 84, True),
        (64, ("soprano sax", "soprano saxophone"), "reeds", 56, 88, False),
        (65, ("alto sax", "alto saxophone"), "reeds", 49, 81, False),
        (66, ("tenor sax", "tenor saxophone"), "reeds", 44, 76, False),
        (67, ("baritone sax", "baritone saxophone"), "reeds", 36, 69, False),
        (68, ("oboe",), "reeds", 58, 91, False),
        (69, ("english horn", "cor anglais"), "reeds", 52, 81, False),
        (70, ("bassoon",), "reeds", 34, 72, False),
        (71, ("clarinet",), "reeds", 50, 91, False),
        (72, ("piccolo",), "pipes", 74, 108, False),
        (73, ("flute",), "pipes", 60, 96, False),
        (74, ("recorder",), "pipes", 60, 96, False),
        (75, ("pan flute", "panpipes"), "pipes", 60, 96, False),
        (77, ("shakuhachi",), "pipes", 55, 84, False),
        (78, ("tin whistle", "whistle"), "pipes", 72, 96, False),
        (79, ("ocarina",), "pipes", 60, 84, False),
        (80, ("square lead", "square-wave synth lead", "synth lead"), "synth lead", 36, 96, False),
        (81, ("sawtooth lead", "saw synth lead", "synth lead"), "synth lead", 36, 96, False),
        (82, ("calliope lead", "calliope"), "synth lead", 48, 96, False),
        (85, ("voice lead", "synth voice lead"), "synth lead", 48, 90, False),
        (88, ("new age pad", "synth pad"), "synth pad", 36, 96, True),
        (89, ("warm pad", "synth pad"), "synth pad", 36, 96, True),
        (90, ("polysynth pad", "polysynth", "synth pad"), "synth pad", 36, 96, True),
        (91, ("choir pad", "synth choir"), "synth pad", 36, 96, True),
        (94, ("halo pad", "synth pad"), "synth pad", 36, 96, True),
        (104, ("sitar",), "ethnic", 48, 84, False),
        (105, ("banjo",), "ethnic", 48, 84, True),
        (106, ("shamisen",), "ethnic", 50, 84, False),
        (107, ("koto",), "ethnic", 55, 91, True),
        (108, ("kalimba", "thumb piano"), "ethnic", 60, 84, True),
        (109, ("bagpipe", "bagpipes"), "ethnic", 60, 84, False),
        (110, ("fiddle", "folk fiddle"), "ethnic", 55, 100, False),
        (111, ("shanai", "shehnai"), "ethnic", 60, 90, False),
    ]
    return {row[0]: Instrument(*row) for row in rows}


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
