"""``fluxmusic evaluate GENERATED --reference REF``: read both sets, run the metrics, one result record.

:func:`evaluate_sets` is the library form of the command: it reads the sets
(:mod:`fluxmusic.evaluation.audio_sets`), builds the embedding backend
(:mod:`fluxmusic.evaluation.embedders`), runs each metric of :data:`~fluxmusic.evaluation.set_metrics.METRICS`
and returns an :class:`EvaluationResult` whose :meth:`~EvaluationResult.to_dict` is the JSON written by
``--json``: ``{"metrics": {"fad": ..., ...}, "embedding": {...}, "generated": {...}, "reference": {...},
"details": {metric: {...}}, ...}``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fluxmusic.errors import InputError
from fluxmusic.evaluation.audio_sets import apply_prompts, load_set, read_set
from fluxmusic.evaluation.backends import EMBEDDINGS, build_embedder
from fluxmusic.evaluation.embedders import Embedder, FamilyEmbedder
from fluxmusic.evaluation.set_metrics import METRICS, EvaluationContext

__all__ = ["DEFAULT_CLAP_CHECKPOINT", "EvaluationResult", "evaluate_sets", "format_result", "parse_metrics"]

DEFAULT_CLAP_CHECKPOINT = "laion/larger_clap_music"
"""The checkpoint of the ``clap`` score unless another is named."""


@dataclass
class EvaluationResult:
    """Everything one evaluation measured and how (see the module docstring for the JSON)."""

    metrics: dict[str, float]
    embedding: dict[str, Any]
    generated: dict[str, Any]
    reference: dict[str, Any]
    details: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        from fluxmusic.version import __version__

        return {
            "metrics": dict(self.metrics),
            "embedding": self.embedding,
            "generated": self.generated,
            "reference": self.reference,
            "details": self.details,
            "fluxmusic_version": __version__,
        }


def parse_metrics(text: str | Sequence[str]) -> list[str]:
    """``"fad,fad-inf"`` -> ``["fad", "fad-inf"]``, checked against :data:`METRICS`.

    Raises:
        fluxmusic.errors.InputError: an unknown or empty name.
    """
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        given = ", ".join(map(repr, unknown)) or "(none)"
        raise InputError(f"unknown metric {given}; use one or more of {','.join(METRICS)}")
    return list(dict.fromkeys(names))


def evaluate_sets(
    generated: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    metrics: str | Sequence[str] = ("fad",),
    embedding: str = "clap-music",
    *,
    prompts: str | os.PathLike[str] | None = None,
    classifier: str | os.PathLike[str] | None = None,
    checkpoint: str | None = None,
    clap_checkpoint: str = DEFAULT_CLAP_CHECKPOINT,
    cache_dir: str | os.PathLike[str] | None = None,
    skip_unreadable: bool = False,
    device: str | None = None,
    progress: Callable[[str], Callable[[Iterable[Any]], Iterable[Any]]] | None = None,
) -> EvaluationResult:
    """Metrics of the clips in ``generated`` against those in ``reference``.

    Args:
        generated: A folder of audio files or a manifest.
        reference: The same, for the reference clips.
        metrics: Names from :data:`METRICS` (a list or ``"fad,fad-inf"``).
        embedding: The backend of the embedding metrics (:data:`EMBEDDINGS`).
        prompts: A prompts file for the generated clips (default: their sidecars or manifest labels).
        classifier: The family-classifier folder (``family`` embedding, ``kl``, ``family``).
        checkpoint: Another checkpoint (hub id or folder) for the embedding backend.
        clap_checkpoint: The CLAP checkpoint of the ``clap`` score.
        cache_dir: Embedding cache folder; None: no disk cache.
        skip_unreadable: Leave out (and count) clips that cannot be decoded instead of failing.
        device: Where the hub models run (default CPU).
        progress: ``label -> wrapper`` for progress bars.

    Raises:
        fluxmusic.errors.FluxmusicError: bad input (one-line message): missing or empty sets, unreadable
            files, unknown names, sets too small for a metric, missing weights.
    """
    names = parse_metrics(metrics)
    if embedding not in EMBEDDINGS:
        raise InputError(f"unknown embedding {embedding!r}; use one of {', '.join(EMBEDDINGS)}")
    gen_set = read_set(generated, "generated set")
    ref_set = read_set(reference, "reference set")
    if prompts is not None:
        gen_set = apply_prompts(gen_set, prompts)
    gen = load_set(gen_set, skip_unreadable, "generated set")
    ref = load_set(ref_set, skip_unreadable, "reference set")
    judge = FamilyEmbedder.from_folder(classifier) if classifier else None

    def embedder_factory() -> Embedder:
        if embedding == "family" and judge is not None and checkpoint is None:
            return judge
        return build_embedder(embedding, checkpoint=checkpoint, classifier=classifier, device=device)

    def clap_factory() -> Any:
        from fluxmusic.evaluation.clap import CLAP_CHECKPOINTS

        same = (
            embedding in CLAP_CHECKPOINTS and (checkpoint or CLAP_CHECKPOINTS[embedding]) == clap_checkpoint
        )
        return (
            ctx.embedder if same else build_embedder("clap-music", checkpoint=clap_checkpoint, device=device)
        )

    cache = None
    if cache_dir is not None:
        from fluxmusic.evaluation.embedding_cache import EmbeddingCache

        stores: dict[str, EmbeddingCache] = {}

        def cache(backend: Embedder) -> EmbeddingCache:
            if backend.name not in stores:
                stores[backend.name] = EmbeddingCache(cache_dir, backend)
            return stores[backend.name]

    ctx = EvaluationContext(gen, ref, embedder_factory, judge, clap_factory, cache, progress)
    numbers: dict[str, float] = {}
    details: dict[str, dict[str, Any]] = {}
    for name in names:
        values, record = METRICS[name].compute(ctx)
        numbers.update(values)
        details[name] = record
    built = ctx.embedder_built
    record = built.info.to_dict() if built is not None else {"backend": embedding, "used": False}
    return EvaluationResult(numbers, record, gen.describe(), ref.describe(), details)


def format_result(result: EvaluationResult) -> str:
    """The console table: one row per number, then the sets and the embedding."""
    emb = result.embedding
    lines = [f"{'metric':<20}{'value':>12}"]
    for name, value in result.metrics.items():
        lines.append(f"{name:<20}{value:>12.4f}")
    for role, record in (("generated", result.generated), ("reference", result.reference)):
        bad = len(record["unreadable"])
        note = f", {bad} unreadable left out" if bad else ""
        lines.append(
            f"{role}: {record['clips']} clips, {record['seconds_mean']:.2f} s mean ({record['source']}{note})"
        )
    if "checkpoint" in emb:
        lines.append(
            f"embedding: {emb['backend']} ({emb['checkpoint']}, {emb['sample_rate']} Hz, {emb['dim']}-d)"
        )
    return "\n".join(lines)
