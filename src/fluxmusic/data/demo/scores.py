"""Parse corpus pieces with music21 into plain note arrays plus the metadata captions need.

The builder never touches music21 objects after this module: a ``PieceData`` holds, per part, an
``(N, 3)`` array of (onset, duration, MIDI pitch) in quarter notes, the measure start offsets, the key
(tonic + mode), time signature, original tempo and descriptive labels.
"""

from __future__ import annotations

import contextlib
import functools
import re
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fluxmusic.data.demo.catalogue import PieceRef, abc_tune_text, collection_labels, corpus_root

# Krumhansl-Kessler key profiles (major, minor), tonic first.
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# Semitones of a mode's tonic above the major tonic of the same key signature.
_MODE_OFFSETS = {
    0: "major",
    2: "dorian",
    4: "phrygian",
    5: "lydian",
    7: "mixolydian",
    9: "minor",
    11: "locrian",
}
_SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")


@dataclass(frozen=True)
class PieceData:
    """A parsed piece.

    Attributes:
        ref: catalogue entry.
        title: cleaned title.
        composer: composer, or ``"traditional"``.
        genre: genre/tune type (chorale, reel, jig, folk song, string quartet, ...).
        region: adjective of origin (Irish, German, Chinese, ...) or None.
        era: Baroque, Classical, Renaissance, or None.
        parts: per part, float64 array (N, 3) of onset (quarters), duration (quarters), MIDI pitch;
            sorted by onset, parts without notes removed, highest mean pitch first.
        measure_starts: ascending quarter offsets of measure starts.
        total_quarters: length of the piece in quarter notes.
        time_signature: e.g. ``"6/8"``.
        tonic: tonic name with ``b``/``#`` accidentals, e.g. ``"Bb"``.
        mode: major, minor, dorian, mixolydian, ...
        key_source: ``"signature"`` (explicit key with mode), ``"final"`` (signature + final note) or
            ``"analysis"`` (Krumhansl-Kessler correlation).
        original_bpm: quarter-note tempo marked in the score, if any.
    """

    ref: PieceRef
    title: str
    composer: str
    genre: str
    region: str | None
    era: str | None
    parts: tuple[np.ndarray, ...]
    measure_starts: np.ndarray
    total_quarters: float
    time_signature: str
    tonic: str
    mode: str
    key_source: str
    original_bpm: float | None

    @property
    def key(self) -> str:
        """Key as ``"<tonic> <mode>"``."""
        return f"{self.tonic} {self.mode}"


class ParseTimeout(Exception):
    """A piece took longer than its time budget to parse."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``ParseTimeout`` in the block after ``seconds`` (only enforced in a process's main thread)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise ParseTimeout(f"parsing took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def parse_piece(ref: PieceRef, timeout_s: float = 60.0) -> PieceData:
    """Parse one corpus piece.

    Raises:
        ParseTimeout: parsing exceeded ``timeout_s``.
        ValueError: the piece has no pitched notes.
        Exception: whatever music21 raises on malformed input (callers skip and log the piece).
    """
    from music21 import converter, stream

    with time_limit(timeout_s):
        if ref.is_abc:
            score = converter.parseData(abc_tune_text(ref), format="abc")
        else:
            score = converter.parse(corpus_root() / ref.path, forceSource=True, storePickle=False)
        if isinstance(score, stream.Opus):
            score = score.scores[0]
        raw_parts = list(score.parts) if score.parts else [score]
        parts = [_part_notes(p) for p in raw_parts]
        measures = _measure_starts(raw_parts[0])
        labels = collection_labels(ref)
        time_signature, original_bpm, key_obj = _score_marks(score)
    parts = [p for p in parts if len(p)]
    if not parts:
        raise ValueError(f"{ref.piece_id}: no pitched notes")
    parts.sort(key=lambda a: -float(a[:, 2].mean()))
    total = max(float((p[:, 0] + p[:, 1]).max()) for p in parts)
    if len(measures) == 0:
        num, den = (int(x) for x in time_signature.split("/"))
        measures = np.arange(0.0, total, 4.0 * num / den)
    tonic, mode, source = _key_of(key_obj, parts)
    return PieceData(
        ref=ref,
        title=_title(ref, score),
        composer=labels["composer"] or "traditional",
        genre=labels["genre"] or "tune",
        region=labels["region"],
        era=labels["era"],
        parts=tuple(parts),
        measure_starts=measures,
        total_quarters=total,
        time_signature=time_signature,
        tonic=tonic,
        mode=mode,
        key_source=source,
        original_bpm=original_bpm,
    )


def _part_notes(part: object) -> np.ndarray:
    """(N, 3) onset/duration/pitch array of one part; tied notes merged, grace notes and symbols skipped."""
    from music21 import harmony

    rows: list[list[float]] = []
    open_ties: dict[int, int] = {}
    for el in part.flatten().notes:  # type: ignore[attr-defined]
        if isinstance(el, harmony.Harmony) or el.duration.isGrace or el.quarterLength <= 0:
            continue
        onset, dur = float(el.offset), float(el.quarterLength)
        tie = el.tie.type if el.tie is not None else None
        for p in getattr(el, "pitches", ()):
            midi = int(round(p.ps))
            if tie in ("stop", "continue") and midi in open_ties:
                row = rows[open_ties[midi]]
                row[1] = onset + dur - row[0]
                if tie == "stop":
                    del open_ties[midi]
                continue
            rows.append([onset, dur, float(midi)])
            if tie == "start":
                open_ties[midi] = len(rows) - 1
    arr = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return arr[np.lexsort((arr[:, 2], arr[:, 0]))]


def _measure_starts(part: object) -> np.ndarray:
    from music21 import stream

    offsets = sorted({float(m.offset) for m in part.getElementsByClass(stream.Measure)})  # type: ignore[attr-defined]
    return np.array(offsets, dtype=np.float64)


def _score_marks(score: object) -> tuple[str, float | None, object | None]:
    """First time signature, quarter-note tempo mark and key (signature) of a score."""
    from music21 import key, meter, tempo

    flat = score.recurse()  # type: ignore[attr-defined]
    ts = flat.getElementsByClass(meter.TimeSignature).first()
    mm = flat.getElementsByClass(tempo.MetronomeMark).first()
    ks = flat.getElementsByClass(key.KeySignature).first()
    bpm = None
    if mm is not None:
        with contextlib.suppress(Exception):
            value = mm.getQuarterBPM()
            bpm = round(float(value), 1) if value else None
    return (ts.ratioString if ts is not None else "4/4"), bpm, ks


def tonic_pc(tonic: str) -> int:
    """Pitch class of a tonic name such as ``"F#"`` or ``"Bb"`` (0 = C)."""
    return _SHARP_NAMES.index(tonic) if tonic in _SHARP_NAMES else _FLAT_NAMES.index(tonic)


def _pc_histogram(parts: list[np.ndarray]) -> np.ndarray:
    notes = np.concatenate(parts)
    return np.bincount(notes[:, 2].astype(int) % 12, weights=notes[:, 1], minlength=12)


def _kk_score(hist: np.ndarray, tonic: int, minor: bool) -> float:
    profile = np.roll(_KK_MINOR if minor else _KK_MAJOR, tonic)
    return float(np.corrcoef(hist, profile)[0, 1]) if hist.std() > 0 else 0.0


def _spell(pc: int, sharps: int) -> str:
    return (_FLAT_NAMES if sharps < 0 else _SHARP_NAMES)[pc % 12]


def _key_of(ks: object | None, parts: list[np.ndarray]) -> tuple[str, str, str]:
    """(tonic, mode, source): explicit key, else signature + final bass note, else KK analysis."""
    from music21 import key

    hist = _pc_histogram(parts)
    if isinstance(ks, key.Key) and ks.mode:
        return ks.tonic.name.replace("-", "b"), str(ks.mode).lower(), "signature"
    if isinstance(ks, key.KeySignature):
        sharps = int(ks.sharps)
        major_pc = (7 * sharps) % 12
        last_onset = max(float(p[-1, 0]) for p in parts)
        finals = np.concatenate([p[p[:, 0] >= last_onset - 1e-6] for p in parts])
        final_pc = int(finals[np.argmin(finals[:, 2]), 2]) % 12
        mode = _MODE_OFFSETS.get((final_pc - major_pc) % 12)
        if mode in ("major", "minor", "dorian", "mixolydian"):
            return _spell(final_pc, sharps), mode, "final"
        minor_pc = (major_pc + 9) % 12
        if _kk_score(hist, minor_pc, True) > _kk_score(hist, major_pc, False):
            return _spell(minor_pc, sharps), "minor", "analysis"
        return _spell(major_pc, sharps), "major", "analysis"
    scores = [(_kk_score(hist, t, m), t, m) for t in range(12) for m in (False, True)]
    _, tonic, minor = max(scores)
    return _SHARP_NAMES[tonic], "minor" if minor else "major", "analysis"


@functools.cache
def _chorale_titles() -> dict[str, dict[str, object]]:
    from music21.corpus import chorales

    return chorales.ChoraleListRKBWV().byBWV


def _title(ref: PieceRef, score: object) -> str:
    """Human title: ABC T:, Bach chorale list, score metadata, or the file name."""
    if ref.is_abc and ref.headers.get("T"):
        title = re.sub(r"\s*--.*$", "", ref.headers["T"]).strip(" .")
        title = re.sub(r"^(.*), (The|A|An)$", r"\2 \1", title)
        if title.isupper():
            title = " ".join(w.capitalize() for w in title.split())
        return title or ref.piece_id
    stem = Path(ref.path).stem
    if ref.collection == "bach":
        bwv = stem.removeprefix("bwv")
        entry = _chorale_titles().get(bwv)
        return entry["title"] if entry else f"Chorale BWV {bwv}"
    meta = getattr(score, "metadata", None)
    title = getattr(meta, "title", None) if meta is not None else None
    if ref.collection == "quartets":
        work = ref.path.split("/")[1].removesuffix(".mxl")
        work = re.sub(r"opus(\d+)no(\d+)", r"Op. \1 No. \2", work)
        work = re.sub(r"^opus(\d+)$", r"Op. \1", work)
        work = re.sub(r"^k(\d+)$", r"K. \1", work)
        movement = re.search(r"movement(\d+)", ref.path)
        return f"String Quartet {work}" + (f", movement {movement.group(1)}" if movement else "")
    if ref.collection == "monteverdi":
        return re.sub(r"madrigal\.(\d+)\.(\d+)", r"Madrigal, Book \1 No. \2", stem)
    return str(title) if title else stem.replace("_", " ")
