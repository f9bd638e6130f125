"""What a demo dataset build produced: its report, size and label statistics, and their text summary."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BPM_BIN = 20
_COUNTED = (
    "family", "collection", "genre", "region", "texture", "arrangement", "tempo_class", "key", "mode",
    "dynamics", "register", "caption_style", "mood_class",
)  # fmt: skip


@dataclass(frozen=True)
class DemoDatasetReport:
    """What a build produced.

    Attributes:
        out_dir: dataset folder.
        n_planned: clips planned.
        n_clips: clips built (train + test).
        n_train: training clips.
        n_test: test clips.
        hours: total audio duration in hours.
        bytes: total size of the wav files.
        n_rejected: planned clips that were not built (silent renders, unparsable pieces).
        elapsed_s: wall time of this call.
        stats: the statistics written to ``stats.json``.
    """

    out_dir: Path
    n_planned: int
    n_clips: int
    n_train: int
    n_test: int
    hours: float
    bytes: int
    n_rejected: int
    elapsed_s: float
    stats: dict[str, Any]


def _sorted_counts(values: list[Any]) -> dict[str, int]:
    counts = Counter("none" if v is None else str(v) for v in values)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def compute_stats(
    accepted: list[dict[str, Any]], rejected: list[dict[str, Any]], n_bytes: int
) -> dict[str, Any]:
    """Counts per label, BPM histogram, split sizes and rejection reasons.

    Args:
        accepted: records of built clips.
        rejected: records of clips that were not built.
        n_bytes: total wav size in bytes.
    """
    seconds = sum(r["seconds"] for r in accepted)
    pieces = {s: {r["piece_id"] for r in accepted if r["split"] == s} for s in ("train", "test")}
    bpm_bins = Counter((r["bpm"] // BPM_BIN) * BPM_BIN for r in accepted)
    mentions = Counter(a for r in accepted for a in r["caption_attributes"])
    stats: dict[str, Any] = {
        "n_clips": len(accepted),
        "hours": round(seconds / 3600.0, 4),
        "bytes": n_bytes,
        "splits": _sorted_counts([r["split"] for r in accepted]),
        "pieces": {s: len(p) for s, p in pieces.items()},
        "pieces_in_both_splits": len(pieces["train"] & pieces["test"]),
        "bpm_histogram": {f"{b}-{b + BPM_BIN - 1}": bpm_bins[b] for b in sorted(bpm_bins)},
        "instruments": _sorted_counts([i for r in accepted for i in r["instruments"]]),
        "caption_mentions": {a: mentions[a] for a in sorted(mentions)},
        "caption_words_mean": round(
            sum(len(r["caption"].split()) for r in accepted) / max(len(accepted), 1), 2
        ),
        "rejected": _sorted_counts([re.sub(r" \(.*", "", str(r["rejected"])) for r in rejected]),
        "unparsable_pieces": sorted(
            {e for r in accepted + rejected for e in r.get("errors", []) + r.get("skipped_pieces", [])}
        ),
    }
    for name in _COUNTED:
        stats[name] = _sorted_counts([r.get(name) for r in accepted])
    return stats


def format_report(report: DemoDatasetReport, top: int = 12) -> str:
    """Human-readable summary of a build (printed by the CLI)."""
    s = report.stats
    lines = [
        f"demo dataset: {report.out_dir}",
        f"  clips: {report.n_clips} built of {report.n_planned} planned "
        f"(train {report.n_train}, test {report.n_test}; {report.n_rejected} rejected)",
        f"  audio: {report.hours:.3f} h, {report.bytes / 1e6:.1f} MB; "
        f"{s.get('build', {}).get('n_processed_now', '?')} clips processed in {report.elapsed_s:.0f} s",
        f"  pieces: train {s['pieces']['train']}, test {s['pieces']['test']}, "
        f"in both splits {s['pieces_in_both_splits']}",
    ]
    for name in ("family", "collection", "genre", "texture", "arrangement", "tempo_class", "mode", "key",
                 "dynamics", "caption_style", "bpm_histogram", "rejected"):  # fmt: skip
        counts = s.get(name, {})
        items = list(counts.items())
        shown = ", ".join(f"{k}: {v}" for k, v in items[:top]) + (" ..." if len(items) > top else "")
        lines.append(f"  {name}: {shown or '-'}")
    if s.get("unparsable_pieces"):
        lines.append(f"  unparsable pieces: {len(s['unparsable_pieces'])} (see stats.json)")
    return "\n".join(lines)
