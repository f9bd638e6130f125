"""Metrics of a set of generated clips against a reference set, behind one shape: ``Metric(name, compute)``.

``compute(context) -> (numbers, details)``: ``numbers`` go into the result's ``metrics`` table (floats,
keyed ``fad``, ``fad-inf``, ``fad-inf-err``, ...), ``details`` record how each was made (backend,
checkpoint, sample rate, set sizes, fit, per-clip values). The :class:`EvaluationContext` computes what
several metrics share (embeddings, label distributions) once, on first use.

======================= ==============================================================================
``fad``                 Fréchet distance of Gaussian fits, in the chosen embedding
``fad-inf``             FAD extrapolated to an infinite set (``fad-inf``, ``fad-inf-err``)
``fad-clips``           each generated clip's leave-one-out FAD contribution (``per_clip``)
``kl``                  mean KL(reference || generated) of the family judge's label distributions, pairs
``clap``                mean prompt-audio cosine with a named CLAP checkpoint
``family``              family accuracy of the generated clips (the judge against their requested family)
``tempo``               tempo agreement of the generated clips with their requested BPM
======================= ==============================================================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fluxmusic.errors import InputError
from fluxmusic.evaluation.audio_sets import LoadedSet
from fluxmusic.evaluation.embedders import Embedder, FamilyEmbedder

__all__ = ["METRICS", "EvaluationContext", "Metric", "pair_indices"]

logger = logging.getLogger(__name__)

Numbers = dict[str, float]
Progress = Callable[[Iterable[Any]], Iterable[Any]]


@dataclass
class EvaluationContext:
    """What the metrics read: the two loaded sets and the backends, with shared results computed once.

    Attributes:
        generated, reference: The loaded sets.
        embedder_factory: Builds the ``--embedding`` backend (on first use: metrics that need no embedding
            never load its weights).
        judge: The family-classifier backend (``kl``, ``family``); None when not given.
        clap: A CLAP backend for ``clap`` (built on first use by ``clap_factory``).
        cache: ``embedder -> EmbeddingCache`` (None: no disk cache).
        progress: Optional wrapper for progress bars.
    """

    generated: LoadedSet
    reference: LoadedSet
    embedder_factory: Callable[[], Embedder]
    judge: FamilyEmbedder | None = None
    clap_factory: Callable[[], Any] | None = None
    cache: Callable[[Embedder], Any] | None = None
    progress: Callable[[str], Progress] | None = None
    _memo: dict[str, Any] = field(default_factory=dict)

    @property
    def embedder(self) -> Embedder:
        """The ``--embedding`` backend (built on first use)."""
        if "embedder" not in self._memo:
            self._memo["embedder"] = self.embedder_factory()
        return self._memo["embedder"]

    @property
    def embedder_built(self) -> Embedder | None:
        """The backend if some metric used it, else None."""
        return self._memo.get("embedder")

    def embeddings(self, which: str, embedder: Embedder | None = None) -> Tensor:
        """Embeddings of ``generated`` or ``reference`` with ``embedder`` (default: the chosen one), cached.

        Shapes:
            -> (N, D)
        """
        embedder = embedder or self.embedder
        memo = f"emb:{embedder.name}:{which}"
        if memo not in self._memo:
            loaded = self.generated if which == "generated" else self.reference
            store = self.cache(embedder) if self.cache else None
            rows: list[Tensor] = []
            bar = self.progress(f"{embedder.name} {which}") if self.progress else None
            items = list(zip(loaded.clips, loaded.waveforms, loaded.sample_rates))
            for clip, wave, rate in bar(items) if bar else items:
                key = store.key(clip.path, clip.offset, clip.duration) if store else None
                hit = store.get(key) if store else None
                if hit is not None and hit.shape == (embedder.dim,):
                    rows.append(torch.from_numpy(hit))
                    continue
                row = embedder.embed([wave], rate)[0]
                if store:
                    store.put(key, row.numpy())
                rows.append(row)
            self._memo[memo] = torch.stack(rows).float()
        return self._memo[memo]

    def need_judge(self, metric: str) -> FamilyEmbedder:
        """The family judge, or one line saying how to give it."""
        if self.judge is None:
            raise InputError(
                f"{metric} needs the family classifier: pass --classifier DIR (train one with "
                "`fluxmusic evaluate judge --data DEMO --out DIR`)"
            )
        return self.judge

    def probabilities(self, which: str) -> Tensor:
        """The judge's family probabilities per clip. Shapes: -> (N, n_families)."""
        memo = f"probs:{which}"
        if memo not in self._memo:
            loaded = self.generated if which == "generated" else self.reference
            judge = self.need_judge("this metric")
            self._memo[memo] = torch.cat(
                [judge.probabilities([w], sr) for w, sr in zip(loaded.waveforms, loaded.sample_rates)]
            )
        return self._memo[memo]

    def embedding_record(self, embedder: Embedder | None = None) -> dict[str, Any]:
        """Backend, checkpoint, rate, window, width and both sets' sizes."""
        return {
            **(embedder or self.embedder).info.to_dict(),
            "generated_clips": len(self.generated.clips),
            "reference_clips": len(self.reference.clips),
        }


def _defined(ctx: EvaluationContext, which: str) -> tuple[Tensor, list[int]]:
    """The set's embeddings without undefined (NaN) rows, and the kept clips' indices (basic-pitch gives
    NaN for a clip without notes). Shapes: -> (N', D)."""
    rows = ctx.embeddings(which)
    keep = torch.isfinite(rows).all(dim=1)
    return rows[keep], keep.nonzero().flatten().tolist()


def _left_out(ctx: EvaluationContext) -> dict[str, Any]:
    counts = {w: len(getattr(ctx, w).clips) - len(_defined(ctx, w)[1]) for w in ("generated", "reference")}
    return {"undefined_rows": counts} if any(counts.values()) else {}


def _need(count: int, least: int, metric: str, which: str) -> None:
    if count < least:
        raise InputError(f"{metric} needs at least {least} clips in the {which} set, got {count}")


def _fad(ctx: EvaluationContext) -> tuple[Numbers, dict[str, Any]]:
    from fluxmusic.evaluation.frechet import frechet_distance

    (gen, _), (ref, _) = _defined(ctx, "generated"), _defined(ctx, "reference")
    _need(len(gen), 2, "fad", "generated")
    _need(len(ref), 2, "fad", "reference")
    return {"fad": frechet_distance(gen, ref)}, {**ctx.embedding_record(), **_left_out(ctx)}


def _fad_inf(ctx: EvaluationContext) -> tuple[Numbers, dict[str, Any]]:
    from fluxmusic.evaluation.scores import FAD_INF_MIN_CLIPS, fad_inf

    (gen, _), (ref, _) = _defined(ctx, "generated"), _defined(ctx, "reference")
    _need(len(gen), FAD_INF_MIN_CLIPS, "fad-inf", "generated")
    _need(len(ref), 2, "fad-inf", "reference")
    fit = fad_inf(gen, ref)
    details = {
        **ctx.embedding_record(),
        **_left_out(ctx),
        "slope": fit.slope,
        "r2": fit.r2,
        "sizes": fit.sizes,
        "fads": fit.fads,
    }
    return {"fad-inf": fit.value, "fad-inf-err": fit.error}, details


def _fad_clips(ctx: EvaluationContext) -> tuple[Numbers, dict[str, Any]]:
    from fluxmusic.evaluation.scores import fad_contributions

    (gen, kept), (ref, _) = _defined(ctx, "generated"), _defined(ctx, "reference")
    _need(len(gen), 3, "fad-clips", "generated")
    _need(len(ref), 2, "fad-clips", "reference")
    values = fad_contributions(gen, ref)
    per_clip = {ctx.generated.clips[i].key: float(v) for i, v in zip(kept, values)}
    worst = max(per_clip, key=per_clip.__getitem__)
    return {"fad-clips-max": float(values.max())}, {
        **ctx.embedding_record(),
        "per_clip": per_clip,
        "worst": worst,
    }


def pair_indices(generated: LoadedSet, reference: LoadedSet) -> list[tuple[int, int]]:
    """Pairs (generated i, reference j): by file name when both sets hold the same names, else by position
    when both are manifests of equal length.

    Raises:
        fluxmusic.errors.InputError: the sets cannot be paired.
    """
    gen = {Path(c.key).name: i for i, c in enumerate(generated.clips)}
    ref = {Path(c.key).name: j for j, c in enumerate(reference.clips)}
    if len(gen) == len(generated.clips) and set(gen) == set(ref):
        return [(gen[name], ref[name]) for name in sorted(gen)]
    both_manifests = generated.audio_set.kind == reference.audio_set.kind == "manifest"
    if both_manifests and len(generated.clips) == len(reference.clips):
        return [(i, i) for i in range(len(generated.clips))]
    only = sorted(set(gen) ^ set(ref))
    example = f" (e.g. {only[0]!r} is in one set only)" if only else ""
    raise InputError(
        f"kl needs paired sets: {len(generated.clips)} generated vs {len(reference.clips)} reference clips "
        f"whose names differ{example}; give both sets the same file names, or two manifests in the same order"
    )


def _kl(ctx: EvaluationContext) -> tuple[Numbers, dict[str, Any]]:
    from fluxmusic.evaluation.scores import kl_divergence

    judge = ctx.need_judge("kl")
    pairs = pair_indices(ctx.generated, ctx.reference)
    gen, ref = ctx.probabilities("generated"), ctx.probabilities("reference")
    values = kl_divergence(ref[[j for _, j in pairs]], gen[[i for i, _ in pairs]])
    per_pair = {ctx.generated.clips[i].key: float(v) for (i, _), v in zip(pairs, values)}
    details = {
        "classifier": "family judge (the demo domain's 13 instrument families)",
        **judge.info.to_dict(),
        "labels": list(judge.classifier.families),
        "pairs": len(pairs),
        "per_pair": per_pair,
    }
    return {"kl": float(values.mean())}, details


def _prompts(ctx: EvaluationContext, metric: str) -> list[str]:
    missing = [c.key for c in ctx.generated.clips if not c.prompt]
    if missing:
        raise InputError(
            f"{metric} needs a prompt per generated clip; {len(missing)} have none (e.g. {missing[0]}): "
            "write sidecars with `fluxmusic generate` or pass --prompts FILE"
        )
    return [str(c.prompt) for c in ctx.generated.clips]


def _clap(ctx: EvaluationContext) -> tuple[Numbers, dict[str, Any]]:
    from fluxmusic.evaluation.scores import clap_score

    prompts = _prompts(ctx, "clap")
    if ctx.clap_factory is None:
        raise InputError("clap needs a CLAP checkpoint; pass --clap-checkpoint")
    if "clap" not in ctx._memo:
        ctx._memo["clap"] = ctx.clap_factory()
    model = ctx._memo["clap"]
    values = clap_score(ctx.embeddings("generated", model), model.embed_text(prompts))
    details = {
        **ctx.embedding_record(model),
        "per_clip": dict(zip((c.key for c in ctx.generated.clips), values.tolist())),
    }
    return {"clap": float(values.mean())}, details


def _family(ctx: EvaluationContext) -> tuple[Numbers, dict[str, Any]]:
    from fluxmusic.evaluation.family_classifier import accuracy_report

    judge = ctx.need_judge("family")
    missing = [c.key for c in ctx.generated.clips if not c.family]
    if missing:
        raise InputError(
            f"family needs the requested family of every generated clip; {len(missing)} have none (e.g. "
            f"{missing[0]}): pass --prompts FILE with 'family' fields, or a manifest with them"
        )
    families = judge.classifier.families
    unknown = sorted({c.family for c in ctx.generated.clips} - set(families))
    if unknown:
        raise InputError(f"family: requested families {unknown} are not the judge's ({', '.join(families)})")
    probs = ctx.probabilities("generated")
    predicted = [families[i] for i in probs.argmax(-1).tolist()]
    report = accuracy_report([str(c.family) for c in ctx.generated.clips], predicted, families)
    details = {**judge.info.to_dict(), "per_family": report["per_family"], "count": report["count"]}
    return {"family": report["accuracy"]}, details


def _tempo(ctx: EvaluationContext) -> tuple[Numbers, dict[str, Any]]:
    from fluxmusic.audio import resample
    from fluxmusic.evaluation.tempo import DEFAULT_BPM_RANGE, estimate_tempo, tempo_agreement
    from fluxmusic.text.tempo import prompt_bpm

    requested = []
    for clip in ctx.generated.clips:
        bpm = clip.bpm if clip.bpm is not None else (prompt_bpm(clip.prompt) if clip.prompt else None)
        if bpm is None:
            raise InputError(
                f"tempo needs the requested BPM of every generated clip; {clip.key} has none (sidecar 'bpm', "
                "a manifest's 'bpm', or a prompt naming one)"
            )
        requested.append(bpm)
    estimated = np.array(
        [
            estimate_tempo(resample(w, sr, 16000), 16000)
            for w, sr in zip(ctx.generated.waveforms, ctx.generated.sample_rates)
        ]
    )
    agreement = tempo_agreement(np.array(requested, dtype=np.float64), estimated).to_dict()
    fields = {
        "tempo": "acc2",
        "tempo-acc1": "acc1",
        "tempo-log-corr": "log_corr",
        "tempo-octave-corr": "octave_corr",
    }
    # correlations are undefined (None) when every clip asked for the same tempo: left out of the table
    numbers = {name: float(agreement[key]) for name, key in fields.items() if agreement.get(key) is not None}
    return numbers, {"estimator": "librosa, uniform prior", "bpm_range": list(DEFAULT_BPM_RANGE), **agreement}


@dataclass(frozen=True)
class Metric:
    """One set metric: its ``--metrics`` name, a one-line description and ``compute(context)``."""

    name: str
    help: str
    compute: Callable[[EvaluationContext], tuple[Numbers, dict[str, Any]]]


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("fad", "Fréchet distance of Gaussian fits in the chosen embedding", _fad),
        Metric("fad-inf", "FAD extrapolated to an infinite set (fadtk), with its error", _fad_inf),
        Metric("fad-clips", "each generated clip's leave-one-out FAD contribution", _fad_clips),
        Metric("kl", "KL(reference || generated) of the family judge's label distributions, paired", _kl),
        Metric("clap", "prompt-audio cosine with a CLAP checkpoint", _clap),
        Metric("family", "family accuracy against the requested families (demo domain)", _family),
        Metric("tempo", "tempo agreement with the requested BPM (demo domain)", _tempo),
    )
}
