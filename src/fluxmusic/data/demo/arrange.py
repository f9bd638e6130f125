"""Turn a parsed piece into one clip plan: window, instruments, tempo, register and dynamics.

All choices come from a ``numpy.random.Generator`` seeded by (seed, clip index, attempt), so a clip does
not depend on which worker renders it or in which order. A ``ClipRequest`` can pin any attribute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fluxmusic.data.demo.config import ClipRequest, DemoDatasetConfig
from fluxmusic.data.demo.instruments import (
    DRONE_PROGRAMS,
    FAMILY_ENSEMBLES,
    INSTRUMENTS,
    MIXED_BASS,
    MIXED_INNER,
    MIXED_LEADS,
    programs_of,
)
from fluxmusic.data.demo.scores import PieceData, tonic_pc

DYNAMICS: tuple[tuple[str, int], ...] = (
    ("pp", 36),
    ("p", 50),
    ("mp", 64),
    ("mf", 80),
    ("f", 96),
    ("ff", 112),
)
"""Dynamic marking -> base MIDI velocity."""
# Template slots used by n parts (highest first) of a 5-slot family ensemble template.
_SLOTS = {1: (0,), 2: (0, 3), 3: (0, 2, 3), 4: (0, 1, 2, 3), 5: (0, 1, 2, 3, 4)}


@dataclass(frozen=True)
class Voice:
    """One instrument line of a clip (one MIDI channel).

    Attributes:
        program: GM program.
        notes: float64 (N, 4): onset and duration in quarters from the window start, MIDI pitch, velocity.
        role: melody, part, chordal, doubling or drone.
    """

    program: int
    notes: np.ndarray
    role: str


@dataclass(frozen=True)
class ClipPlan:
    """Everything needed to render and caption one clip (attributes are what metadata.jsonl stores)."""

    family: str
    texture: str
    arrangement: str
    programs: tuple[int, ...]
    ensemble_name: str | None
    bpm: int
    velocity: int
    dynamics: str
    octave: int
    register: str
    start_measure: int
    start_quarter: float
    window_quarters: float
    looped: bool
    voices: tuple[Voice, ...]

    @property
    def instruments(self) -> tuple[str, ...]:
        """Canonical instrument names, one per distinct program, in voice order."""
        return tuple(dict.fromkeys(INSTRUMENTS[v.program].name for v in self.voices))


def dynamics_of(velocity: int) -> str:
    """Nearest dynamic marking of a MIDI velocity."""
    return min(DYNAMICS, key=lambda d: abs(d[1] - velocity))[0]


def plan_clip(
    piece: PieceData,
    config: DemoDatasetConfig,
    rng: np.random.Generator,
    request: ClipRequest | None = None,
    slot: int = 0,
    n_slots: int = 1,
) -> ClipPlan:
    """Choose every attribute of one clip and cut its notes.

    Args:
        piece: parsed piece.
        config: build configuration (tempo range, families, probabilities, clip length).
        rng: generator for this clip (and attempt).
        request: pinned attributes, if any.
        slot: which of ``n_slots`` equal stretches of the piece the window starts in.
        n_slots: number of clips cut from this piece.
    """
    req = request or ClipRequest(piece.ref.piece_id)
    polyphonic = len(piece.parts) > 1 or _has_chords(piece.parts[0])
    if req.programs is not None:
        programs = req.programs
        families = {INSTRUMENTS[p].family for p in programs}
        family = families.pop() if len(families) == 1 else "mixed"
        texture = "solo" if len(programs) == 1 else "ensemble"
    else:
        programs = None
        family = req.family or str(rng.choice(config.families))
        texture = req.texture or ("ensemble" if rng.random() < config.ensemble_prob else "solo")
    bpm = int(req.bpm if req.bpm is not None else rng.integers(config.bpm_range[0], config.bpm_range[1] + 1))
    velocity = int(
        req.velocity if req.velocity is not None else DYNAMICS[int(rng.integers(len(DYNAMICS)))][1]
    )
    window = config.clip_seconds * bpm / 60.0

    mixed_prob = 0.0 if req.family is not None else config.mixed_prob
    parts, measures, looped = _material(piece, window)
    if texture == "solo":
        program = programs[0] if programs else int(rng.choice(programs_of(family)))
        chordal = polyphonic and INSTRUMENTS[program].chordal and rng.random() < 0.6
        arrangement = "chordal" if chordal else "melody"
        notes = _sorted(np.concatenate(parts)) if chordal else parts[0]
        lines = [(program, notes, arrangement)]
        name = None
    elif polyphonic:
        arrangement = "parts"
        progs, family, name = _ensemble_programs(family, len(parts), rng, programs, mixed_prob)
        lines = [(p, notes, "melody" if i == 0 else "part") for i, (p, notes) in enumerate(zip(progs, parts))]
    else:
        arrangement = "doubled"
        progs, family = _doubling_programs(family, rng, programs, mixed_prob)
        lines = [(progs[0], parts[0], "melody")] + [(p, parts[0], "doubling") for p in progs[1:2]]
        if len(progs) > 2:
            lines.append((progs[2], _drone(piece, parts[0], measures), "drone"))
        name = None

    start_idx, start = _choose_start(measures, lines[0][1], window, rng, slot, n_slots, req.start_measure)
    cut = [(p, _cut(notes, start, window), role) for p, notes, role in lines]
    octave = req.octave if req.octave is not None else _choose_octave(cut, rng, texture == "solo")
    voices = tuple(
        Voice(p, _velocities(_place(notes, p, octave, role), velocity, role, rng, start), role)
        for p, notes, role in cut
    )
    melody = voices[0].notes
    mean_pitch = float(melody[:, 2].mean()) if len(melody) else 60.0
    register = "low" if mean_pitch < 52 else "high" if mean_pitch > 76 else "middle"
    return ClipPlan(
        family=family,
        texture=texture,
        arrangement=arrangement,
        programs=tuple(v.program for v in voices),
        ensemble_name=name,
        bpm=bpm,
        velocity=velocity,
        dynamics=dynamics_of(velocity),
        octave=int(octave),
        register=register,
        start_measure=start_idx,
        start_quarter=round(float(start), 4),
        window_quarters=round(window, 4),
        looped=looped,
        voices=voices,
    )


def _sorted(notes: np.ndarray) -> np.ndarray:
    return notes[np.lexsort((notes[:, 2], notes[:, 0]))]


def _has_chords(notes: np.ndarray) -> bool:
    return bool(len(notes) > 1 and np.any(np.diff(notes[:, 0]) == 0))


def _material(piece: PieceData, window: float) -> tuple[list[np.ndarray], np.ndarray, bool]:
    """Parts and measure starts, the piece repeated when it is shorter than the window."""
    span = piece.total_quarters
    reps = 1 if span - piece.measure_starts[0] >= window else int(np.ceil(window / max(span, 1e-3))) + 1
    if reps == 1:
        return list(piece.parts), piece.measure_starts, False
    parts = [np.concatenate([p + [k * span, 0.0, 0.0] for k in range(reps)]) for p in piece.parts]
    measures = np.concatenate([piece.measure_starts + k * span for k in range(reps)])
    return parts, measures, True


def _choose_start(
    measures: np.ndarray,
    lead: np.ndarray,
    window: float,
    rng: np.random.Generator,
    slot: int,
    n_slots: int,
    pinned: int | None,
) -> tuple[int, float]:
    """(measure index, start offset) of the window; it starts on the first lead note of that measure.

    Windows with at least max(3, window / 4) lead onsets and no rest longer than a quarter of the window are
    preferred; the k-th of ``n_slots`` clips draws from the k-th stretch of those.
    """
    end = float((lead[:, 0] + lead[:, 1]).max()) if len(lead) else float(measures[-1])
    valid = np.flatnonzero(measures + window <= end + 1e-6)
    if len(valid) == 0:
        valid = np.array([0])
    if pinned is not None:
        idx = int(min(pinned, valid[-1]))
    else:
        onsets = lead[:, 0]
        counts = np.array(
            [np.count_nonzero((onsets >= measures[i]) & (onsets < measures[i] + window)) for i in valid]
        )
        rests = np.array([_longest_rest(lead, measures[i], measures[i] + window) for i in valid])
        dense = valid[(counts >= max(3.0, window / 4.0)) & (rests <= window / 4.0)]
        pool = dense if len(dense) else valid
        lo = min(slot * len(pool) // n_slots, len(pool) - 1)
        hi = min(max((slot + 1) * len(pool) // n_slots, lo + 1), len(pool))
        idx = int(pool[int(rng.integers(lo, hi))])
    start = float(measures[idx])
    later = lead[(lead[:, 0] >= start) & (lead[:, 0] < start + 4.0)]
    return idx, float(later[0, 0]) if len(later) else start


def _longest_rest(notes: np.ndarray, a: float, b: float) -> float:
    """Longest stretch of [a, b) (quarters) that no note of ``notes`` sounds in."""
    inside = notes[(notes[:, 0] < b) & (notes[:, 0] + notes[:, 1] > a)]
    longest, covered = 0.0, a
    for onset, dur in inside[:, :2]:
        longest = max(longest, onset - covered)
        covered = max(covered, onset + dur)
    return max(longest, b - covered)


def _cut(notes: np.ndarray, start: float, window: float) -> np.ndarray:
    """Notes with onsets inside the window, times relative to its start, durations clipped just past it."""
    keep = notes[(notes[:, 0] >= start - 1e-6) & (notes[:, 0] < start + window)].copy()
    keep[:, 0] -= start
    keep[:, 1] = np.minimum(keep[:, 1], window + 0.5 - keep[:, 0])
    return keep


def _fits(notes: np.ndarray, program: int, octave: int) -> int:
    """Number of notes outside the instrument's range after an octave shift."""
    ins = INSTRUMENTS[program]
    pitch = notes[:, 2] + 12 * octave
    return int(np.count_nonzero((pitch < ins.low) | (pitch > ins.high)))


def _choose_octave(cut: list[tuple[int, np.ndarray, str]], rng: np.random.Generator, free: bool) -> int:
    """Octave shift keeping lines in range: any fitting one for a solo (register variety), else nearest 0."""
    lines = [(p, n) for p, n, role in cut if role not in ("drone", "doubling")]
    misses = {o: sum(_fits(n, p, o) for p, n in lines) for o in range(-3, 4)}
    fitting = [o for o, m in misses.items() if m == 0]
    if fitting:
        return int(rng.choice(fitting)) if free else min(fitting, key=abs)
    return min(misses, key=lambda o: (misses[o], abs(o)))


def _place(notes: np.ndarray, program: int, octave: int, role: str) -> np.ndarray:
    """Transpose a line by octaves into its instrument's range (doublings/drones get their own octave)."""
    ins = INSTRUMENTS[program]
    out = notes.copy()
    if role in ("doubling", "drone") and len(out):
        shifts = [o for o in range(-4, 5) if _fits(out, program, o) == 0]
        best = min(shifts, key=lambda o: (abs(o - octave), o)) if shifts else octave
        out[:, 2] += 12 * best
    else:
        out[:, 2] += 12 * octave
    while np.any(low := out[:, 2] < ins.low):
        out[low, 2] += 12
    while np.any(high := out[:, 2] > ins.high):
        out[high, 2] -= 12
    return out


def _velocities(
    notes: np.ndarray, velocity: int, role: str, rng: np.random.Generator, start: float
) -> np.ndarray:
    """Append a velocity column: base velocity, role offset, on-beat accents and a little jitter."""
    offset = {"melody": 4, "drone": -12, "doubling": -6}.get(role, 0)
    phase = (notes[:, 0] + start) % 1.0
    accent = np.where(np.isclose(phase, 0.0) | np.isclose(phase, 1.0), 4.0, 0.0)
    jitter = rng.normal(0.0, 3.0, size=len(notes))
    vel = np.clip(np.round(velocity + offset + accent + jitter), 1, 127)
    return np.column_stack([notes, vel]) if len(notes) else np.zeros((0, 4))


def _ensemble_programs(
    family: str, n: int, rng: np.random.Generator, pinned: tuple[int, ...] | None, mixed_prob: float
) -> tuple[list[int], str, str | None]:
    """Programs for n parts (highest first), the resulting family and an ensemble name."""
    if pinned is not None:
        return [pinned[min(i, len(pinned) - 1)] for i in range(n)], _family_of(pinned), None
    if rng.random() < mixed_prob:
        inner = list(rng.permutation(MIXED_INNER))
        progs = [int(rng.choice(MIXED_LEADS))] + [int(inner[i % len(inner)]) for i in range(n - 2)]
        progs += [int(rng.choice(MIXED_BASS))] if n > 1 else []
        return progs, _family_of(progs), None
    name, template = FAMILY_ENSEMBLES[family][int(rng.integers(len(FAMILY_ENSEMBLES[family])))]
    slots = _SLOTS.get(n, (0,) + (1,) * (n - 4) + (2, 3, 4))
    return [template[s] for s in slots], family, name


def _doubling_programs(
    family: str, rng: np.random.Generator, pinned: tuple[int, ...] | None, mixed_prob: float
) -> tuple[list[int], str]:
    """Lead, doubling and optional drone programs for a monophonic tune."""
    if pinned is not None:
        return list(pinned[:3]), _family_of(pinned[:3])
    own = list(programs_of(family))
    lead = int(rng.choice(own))
    mixed = rng.random() < mixed_prob or len(own) < 2
    others = [p for p in (MIXED_LEADS if mixed else own) if p != lead]
    progs = [lead, int(rng.choice(others))]
    if rng.random() < 0.6:
        drones = list(DRONE_PROGRAMS) if mixed else [p for p in own if INSTRUMENTS[p].low <= 45]
        if drones:
            progs.append(int(rng.choice(drones)))
    return progs, _family_of(progs)


def _family_of(programs: list[int] | tuple[int, ...]) -> str:
    families = {INSTRUMENTS[p].family for p in programs}
    return families.pop() if len(families) == 1 else "mixed"


def _drone(piece: PieceData, lead: np.ndarray, measures: np.ndarray) -> np.ndarray:
    """Tonic + fifth sustained for every measure under a tune (pitches near C3)."""
    tonic = 48 + tonic_pc(piece.tonic)
    end = float((lead[:, 0] + lead[:, 1]).max()) if len(lead) else float(measures[-1])
    bounds = np.append(measures, end)
    rows = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b - a > 1e-6:
            rows += [[a, b - a, tonic], [a, b - a, tonic + 7]]
    return np.array(rows, dtype=np.float64).reshape(-1, 3)
