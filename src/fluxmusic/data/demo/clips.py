"""Build the clips of one piece (the unit of work a worker process runs).

A ``PieceTask`` names a piece (plus backup pieces tried in order when it does not parse) and the clip
slots to cut from it. Each finished clip leaves ``audio/<split>/<id>.wav`` and ``records/<id>.json``;
a clip that cannot be made leaves a record with a ``rejected`` reason. Records make builds resumable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fluxmusic.data.demo.arrange import ClipPlan, plan_clip
from fluxmusic.data.demo.captions import CaptionAttributes, make_caption, mood_class, tempo_class
from fluxmusic.data.demo.catalogue import PieceRef
from fluxmusic.data.demo.config import ClipRequest, DemoDatasetConfig
from fluxmusic.data.demo.instruments import INSTRUMENTS
from fluxmusic.data.demo.render import RenderError, RenderResult, render_plan
from fluxmusic.data.demo.scores import PieceData, parse_piece

logger = logging.getLogger(__name__)

_STREAM_PLAN, _STREAM_CAPTION = 2, 3


@dataclass(frozen=True)
class ClipSlot:
    """One clip to cut: global index, id, pinned attributes, and its window stretch within the piece."""

    index: int
    clip_id: str
    request: ClipRequest | None
    slot: int
    n_slots: int


@dataclass(frozen=True)
class PieceTask:
    """Pieces to try in order (the first that parses is used) and the clips to cut from it."""

    pieces: tuple[PieceRef, ...]
    slots: tuple[ClipSlot, ...]


def piece_split(seed: int, split_key: str, test_fraction: float) -> str:
    """Seeded split of a piece from a hash of its split key (same key, same split, on every machine)."""
    digest = hashlib.sha256(f"{seed}|{split_key}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2.0**64 < test_fraction else "train"


def record_path(out_dir: Path, clip_id: str) -> Path:
    """Where a clip's record lives."""
    return out_dir / "records" / f"{clip_id}.json"


def load_done(out_dir: Path, clip_id: str) -> dict[str, Any] | None:
    """A clip's record if the clip is finished (accepted with its wav on disk, or rejected), else None."""
    path = record_path(out_dir, clip_id)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if record.get("rejected") or (out_dir / record.get("wav", "")).is_file():
        return record
    return None


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".wav.tmp")
    sf.write(str(tmp), audio, sample_rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, path)


def run_task(task: PieceTask, config: DemoDatasetConfig) -> list[dict[str, Any]]:
    """Build (or load, when already done) every clip of one task; returns their records."""
    done = {s.clip_id: load_done(config.out_dir, s.clip_id) for s in task.slots}
    if all(done.values()):
        return [r for r in done.values() if r is not None]
    piece, errors = None, []
    for ref in task.pieces:
        try:
            piece = parse_piece(ref, config.parse_timeout_s)
            break
        except Exception as exc:  # music21 raises many kinds of errors on odd files
            logger.warning("skipping unparsable piece %s: %s: %s", ref.piece_id, type(exc).__name__, exc)
            errors.append(f"{ref.piece_id}: {type(exc).__name__}: {exc}")
    records = []
    for slot in task.slots:
        record = done[slot.clip_id]
        if record is None:
            if piece is None:
                record = {"id": slot.clip_id, "index": slot.index, "rejected": "unparsable", "errors": errors}
            else:
                try:
                    record = _build_clip(piece, slot, config)
                except Exception as exc:  # one odd window must not stop a long build
                    logger.exception("clip %s (%s) failed", slot.clip_id, piece.ref.piece_id)
                    record = {"id": slot.clip_id, "index": slot.index, "rejected": f"error: {exc!r}"}
            if piece is not None and errors:
                record["skipped_pieces"] = errors
            _write_json(record_path(config.out_dir, slot.clip_id), record)
        records.append(record)
    return records


def _build_clip(piece: PieceData, slot: ClipSlot, config: DemoDatasetConfig) -> dict[str, Any]:
    """Plan, render and caption one clip, retrying other windows when a render is near-silent."""
    req = slot.request
    split = (req.split if req and req.split else None) or piece_split(
        config.seed, piece.ref.split_key, config.test_fraction
    )
    wav_rel = f"audio/{split}/{slot.clip_id}.wav"
    last = "no attempt"
    for attempt in range(config.max_attempts):
        rng = np.random.default_rng([config.seed, _STREAM_PLAN, slot.index, attempt])
        plan = plan_clip(piece, config, rng, req, slot.slot, slot.n_slots)
        n_notes = sum(len(v.notes) for v in plan.voices)
        if n_notes == 0:
            last = "no notes in window"
            continue
        keep_midi = config.out_dir / "midi" / split / f"{slot.clip_id}.mid" if config.keep_midi else None
        try:
            result = render_plan(
                plan, config.out_dir / "tmp", slot.clip_id,
                time_signature=piece.time_signature, soundfont=config.soundfont,
                render_rate=config.render_rate, sample_rate=config.sample_rate, n_samples=config.n_samples,
                gain=config.gain, peak=config.peak, silence_db=config.silence_db,
                fluidsynth=config.fluidsynth, keep_midi=keep_midi,
            )  # fmt: skip
        except RenderError as exc:
            last = f"render error: {exc}"
            logger.warning("clip %s (%s): %s", slot.clip_id, piece.ref.piece_id, last)
            continue
        if result.rms_db < config.silence_db or result.active < config.min_active:
            last = f"near-silent render ({result.rms_db:.1f} dBFS, {result.active:.0%} active)"
            logger.info("clip %s (%s) attempt %d: %s", slot.clip_id, piece.ref.piece_id, attempt, last)
            continue
        _write_wav(config.out_dir / wav_rel, result.audio, config.sample_rate)
        return _record(piece, slot, config, plan, split, wav_rel, n_notes, result, attempt)
    logger.warning("rejecting clip %s (%s): %s", slot.clip_id, piece.ref.piece_id, last)
    return {"id": slot.clip_id, "index": slot.index, "piece_id": piece.ref.piece_id, "rejected": last}


def _record(
    piece: PieceData,
    slot: ClipSlot,
    config: DemoDatasetConfig,
    plan: ClipPlan,
    split: str,
    wav_rel: str,
    n_notes: int,
    result: RenderResult,
    attempt: int,
) -> dict[str, Any]:
    attrs = CaptionAttributes(
        instruments=tuple(INSTRUMENTS[p].names for p in dict.fromkeys(plan.programs)),
        section=INSTRUMENTS[plan.programs[0]].section,
        ensemble_name=plan.ensemble_name,
        arrangement=plan.arrangement,
        genre=piece.genre,
        region=piece.region,
        composer=piece.composer,
        era=piece.era,
        bpm=plan.bpm,
        tonic=piece.tonic,
        mode=piece.mode,
        time_signature=piece.time_signature,
        dynamics=plan.dynamics,
        register=plan.register,
    )
    rng = np.random.default_rng([config.seed, _STREAM_CAPTION, slot.index])
    style = (slot.request.caption_style if slot.request else None) or str(rng.choice(config.caption_styles))
    caption, mentioned, mood = make_caption(attrs, rng, style, config.caption_drop_prob)
    return {
        "id": slot.clip_id,
        "index": slot.index,
        "split": split,
        "wav": wav_rel,
        "caption": caption,
        "caption_style": style,
        "caption_attributes": list(mentioned),
        "piece_id": piece.ref.piece_id,
        "collection": piece.ref.collection,
        "title": piece.title,
        "composer": piece.composer,
        "genre": piece.genre,
        "region": piece.region,
        "era": piece.era,
        "family": plan.family,
        "texture": plan.texture,
        "arrangement": plan.arrangement,
        "ensemble_name": plan.ensemble_name,
        "programs": list(plan.programs),
        "instruments": list(plan.instruments),
        "bpm": plan.bpm,
        "tempo_class": tempo_class(plan.bpm),
        "original_bpm": piece.original_bpm,
        "key": piece.key,
        "tonic": piece.tonic,
        "mode": piece.mode,
        "key_source": piece.key_source,
        "mood": mood,
        "mood_class": "/".join(mood_class(piece.mode, plan.bpm)),
        "time_signature": piece.time_signature,
        "octave": plan.octave,
        "transposition": 12 * plan.octave,
        "register": plan.register,
        "velocity": plan.velocity,
        "dynamics": plan.dynamics,
        "start_measure": plan.start_measure,
        "start_quarter": plan.start_quarter,
        "window_quarters": plan.window_quarters,
        "looped": plan.looped,
        "n_notes": n_notes,
        "sample_rate": config.sample_rate,
        "num_samples": config.n_samples,
        "seconds": config.n_samples / config.sample_rate,
        "rms_db": result.rms_db,
        "active_fraction": result.active,
        "peak": result.peak,
        "attempt": attempt,
    }
