"""Catalogue of the music21 corpus pieces the demo dataset draws from.

A piece id is the corpus-relative path of its file, plus ``#k`` (1-based position) for the k-th tune of a
multi-tune ABC file: ``"bach/bwv66.6.mxl"``, ``"ryansMammoth/AcaciaReel.abc"``,
``"essenFolksong/han1.abc#3"``. Enumeration only reads file names and ABC headers (no music parsing), so it
is fast and deterministic. music21 is imported lazily.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from fluxmusic.errors import InputError


@dataclass(frozen=True)
class CollectionSpec:
    """One source collection: which corpus files, how much of the dataset, and default labels."""

    patterns: tuple[str, ...]
    weight: float
    genre: str
    region: str | None = None
    composer: str = "traditional"
    era: str | None = None
    exclude: str | None = None


COLLECTIONS: dict[str, CollectionSpec] = {
    "bach": CollectionSpec(
        ("bach/bwv*.mxl",), 0.16, "chorale", "German", "Johann Sebastian Bach", "Baroque", r"-"
    ),
    "palestrina": CollectionSpec(
        ("palestrina/*.krn",),
        0.08,
        "mass",
        "Italian",
        "Giovanni Pierluigi da Palestrina",
        "Renaissance",
        r"_[a-z]\.krn$",
    ),
    "monteverdi": CollectionSpec(
        ("monteverdi/madrigal.*.mxl",),
        0.04,
        "madrigal",
        "Italian",
        "Claudio Monteverdi",
        "Renaissance",
        "_old",
    ),
    "ryans": CollectionSpec(("ryansMammoth/*.abc",), 0.18, "fiddle tune", None),
    "oneills": CollectionSpec(
        ("oneills1850/*.abc",),
        0.14,
        "fiddle tune",
        "Irish",
        exclude=r"0626-0635|_mh|_ml|1556-1576|1577|1710-",
    ),
    "essen": CollectionSpec(("essenFolksong/*.abc",), 0.16, "folk song", "German", exclude=r"/test"),
    "airds": CollectionSpec(("airdsAirs/*.abc",), 0.06, "air", "Scottish"),
    "folk_misc": CollectionSpec(("nottingham-dataset/*.abc", "miscFolk/*.abc"), 0.03, "folk tune", "English"),
    "quartets": CollectionSpec(
        (
            "beethoven/*.mxl",
            "beethoven/*/*.mxl",
            "mozart/k80/*.mxl",
            "mozart/k155/*.mxl",
            "mozart/k156/*.mxl",
            "mozart/k458/*.mxl",
            "haydn/*/*.mxl",
        ),
        0.15,
        "string quartet",
        "Viennese",
        era="Classical",
    ),
}
"""Collection name -> spec. Weights are the default share of clips (renormalised over those chosen)."""

_COMPOSERS = {
    "beethoven": "Ludwig van Beethoven",
    "mozart": "Wolfgang Amadeus Mozart",
    "haydn": "Joseph Haydn",
}
_RHYTHMS = {
    "double jig": "jig",
    "single jig": "jig",
    "slipjig": "slip jig",
    "fling": "highland fling",
    "quick step": "quickstep",
    "quickstep": "quickstep",
    "walkaround": "walkaround",
    "set dance": "set dance",
}
_RHYTHM_WORDS = (
    "slip jig", "highland fling", "hornpipe", "strathspey", "reel", "jig", "clog", "waltz", "polka", "march",
    "air", "slide", "schottische", "minuet", "mazurka", "gavotte", "quickstep", "walkaround", "set dance",
    "country dance", "song", "lament",
)  # fmt: skip
_ESSEN_REGIONS = (
    ("China", "Chinese"), ("Luxemburg", "Luxembourgish"), ("Lothringen", "Lorraine"), ("Irland", "Irish"),
    ("Jugoslawien", "Balkan"), ("Niederlande", "Dutch"), ("Ungarn", "Hungarian"), ("UdSSR", "Russian"),
    ("Tschechoslowakei", "Czech"), ("Polen", "Polish"), ("Schweiz", "Swiss"), ("Oesterreich", "Austrian"),
    ("Island", "Icelandic"), ("Daenemark", "Danish"), ("Schweden", "Swedish"), ("Frankreich", "French"),
    ("Rumaenien", "Romanian"), ("USA", "American"), ("Amerika", "American"), ("Deutschland", "German"),
    ("Mitteleuropa", "German"),
)  # fmt: skip


@dataclass(frozen=True)
class PieceRef:
    """A corpus piece before parsing.

    Attributes:
        piece_id: unique id (see module docstring).
        collection: key of ``COLLECTIONS``.
        path: corpus-relative file path.
        tune_index: 1-based tune position in a multi-tune ABC file, else None.
        headers: ABC header fields of the tune (first value per field letter), empty for other formats.
        split_key: pieces sharing it land in the same split (ABC tunes: normalised title).
    """

    piece_id: str
    collection: str
    path: str
    tune_index: int | None = None
    headers: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    split_key: str = ""

    @property
    def is_abc(self) -> bool:
        """True for ABC tunes."""
        return self.path.endswith(".abc")


@functools.cache
def corpus_root() -> Path:
    """Folder of the music21 core corpus."""
    from music21 import common

    return Path(common.getCorpusFilePath())


def split_abc(text: str) -> list[str]:
    """Split an ABC file into tunes (each starting at its ``X:`` line)."""
    starts = [m.start() for m in re.finditer(r"^X:", text, flags=re.MULTILINE)]
    return [text[a:b].strip() + "\n" for a, b in zip(starts, starts[1:] + [len(text)], strict=True)]


def abc_headers(tune: str) -> dict[str, str]:
    """First value of each header field of one ABC tune (up to and including ``K:``)."""
    out: dict[str, str] = {}
    for line in tune.splitlines():
        m = re.match(r"^([A-Za-z]):\s*(.*?)\s*$", line)
        if m is None:
            continue
        out.setdefault(m.group(1), m.group(2))
        if m.group(1) == "K":
            break
    return out


def abc_tune_text(ref: PieceRef) -> str:
    """ABC text of one tune."""
    text = (corpus_root() / ref.path).read_text(encoding="utf-8", errors="replace")
    tunes = split_abc(text)
    return tunes[(ref.tune_index or 1) - 1]


def _norm_title(title: str) -> str:
    title = re.sub(r"--.*$", "", title.lower())
    title = re.sub(r"\b(the|a|an)\b", " ", title)
    return re.sub(r"[^a-z0-9]+", " ", title).strip()


@functools.cache
def list_pieces(collection: str) -> tuple[PieceRef, ...]:
    """All pieces of one collection, sorted by piece id, duplicates (same title and rhythm) dropped.

    Raises:
        ValueError: unknown collection.
    """
    if collection not in COLLECTIONS:
        raise InputError(f"unknown collection {collection!r}; choose from {tuple(COLLECTIONS)}")
    spec = COLLECTIONS[collection]
    root = corpus_root()
    files = sorted({p.relative_to(root).as_posix() for pat in spec.patterns for p in root.glob(pat)})
    if spec.exclude:
        files = [f for f in files if re.search(spec.exclude, f) is None]
    if collection == "bach":
        files = [f for f in files if re.fullmatch(r"bach/bwv[0-9.]+\.mxl", f)]
    refs: list[PieceRef] = []
    seen: set[str] = set()
    for rel in files:
        if not rel.endswith(".abc"):
            refs.append(PieceRef(rel, collection, rel, None, {}, rel))
            continue
        tunes = split_abc((root / rel).read_text(encoding="utf-8", errors="replace"))
        for k, tune in enumerate(tunes, start=1):
            headers = abc_headers(tune)
            if "K" not in headers:
                continue
            key = _norm_title(headers.get("T", "")) or f"{rel}#{k}"
            dedupe = f"{key}|{headers.get('R', '').lower()}"
            if dedupe in seen:
                continue
            seen.add(dedupe)
            piece_id = rel if len(tunes) == 1 else f"{rel}#{k}"
            refs.append(PieceRef(piece_id, collection, rel, None if len(tunes) == 1 else k, headers, key))
    return tuple(sorted(refs, key=lambda r: r.piece_id))


def resolve_piece(piece_id: str) -> PieceRef:
    """PieceRef of a piece id from any collection (also accepts ids without the ``.abc#1`` for one tune).

    Raises:
        ValueError: the id names no known piece.
    """
    for name in COLLECTIONS:
        for ref in list_pieces(name):
            if ref.piece_id == piece_id:
                return ref
    raise InputError(f"unknown piece id {piece_id!r}; see fluxmusic.data.demo.list_pieces(collection)")


def normalise_rhythm(rhythm: str, title: str) -> str | None:
    """Dance/tune type from an ABC ``R:`` field or, failing that, the title (None when unknown)."""
    for text in (rhythm.lower(), title.lower()):
        text = re.sub(r"[^a-z ]+", " ", text).strip()
        if text in _RHYTHMS:
            return _RHYTHMS[text]
        for alias, name in _RHYTHMS.items():
            if re.search(rf"\b{alias}\b", text):
                return name
        for word in _RHYTHM_WORDS:
            if re.search(rf"\b{word}s?\b", text):
                return word
    return None


def collection_labels(ref: PieceRef) -> dict[str, str | None]:
    """Default genre, region, composer and era of a piece from its collection, path and ABC headers."""
    spec = COLLECTIONS[ref.collection]
    labels: dict[str, str | None] = {
        "genre": spec.genre,
        "region": spec.region,
        "composer": spec.composer,
        "era": spec.era,
    }
    top = ref.path.split("/")[0]
    if top in _COMPOSERS:
        labels["composer"] = _COMPOSERS[top]
    if ref.is_abc:
        rhythm = normalise_rhythm(ref.headers.get("R", ""), ref.headers.get("T", ""))
        if rhythm is None and ref.collection in ("ryans", "oneills"):
            rhythm = _guess_rhythm(ref.headers)
        if ref.collection != "essen" and rhythm is not None:
            labels["genre"] = rhythm
        if ref.collection == "essen":
            origin = ref.headers.get("O", "")
            labels["region"] = next((adj for word, adj in _ESSEN_REGIONS if word in origin), "European")
        if ref.path.startswith("miscFolk/american"):
            labels["region"] = "American"
            labels["genre"] = rhythm or "fife tune"
    return labels


def _guess_rhythm(headers: dict[str, str]) -> str | None:
    """Tune type of an unlabelled fiddle-collection tune from its tempo note and metre."""
    note = headers.get("N", "").lower()
    if re.search(r"slow|moderate|expression|plaintive|tender|feeling", note):
        return "air"
    return {"6/8": "jig", "9/8": "slip jig"}.get(headers.get("M", "").strip())
