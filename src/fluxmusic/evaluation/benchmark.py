"""Model scoring on held-out demo prompts: instrument family, tempo, Fréchet distance.

For N held-out captions of the demo dataset (test split, balanced over instrument families, captions that
state a BPM; :func:`held_out_prompts`), a model makes one clip each (:func:`generate`) and a
:class:`Scorer` measures:

(a) instrument-family accuracy of the audio, judged by the family classifier trained on the real training
    renders (:mod:`fluxmusic.evaluation.judge`);
(b) agreement between the requested BPM and the tempo estimated from the audio
    (:mod:`fluxmusic.evaluation.tempo`: log-tempo correlation, octave-invariant correlation, accuracies),
    the correlation of the log requested BPM with the log note-onset rate (does the note density follow
    the request, steady beat or not) and the mean pulse clarity (is there a steady beat at all);
(c) Fréchet distance, in the classifier's embedding, to held-out real clips (test clips not used as
    prompts); ``fd_joint`` appends the requested family (one-hot, scaled to the embedding's mean norm),
    so it also sees whether the right family was made.

Reference clips for the same prompts: their real renders, those renders through a VAE and vocoder
(:func:`reconstruct`, the floor), and generations from broken prompts (:func:`scramble`, the ceiling).
``benchmarks/bench_bundled.py`` runs a grid of samplers, steps and dtypes with these pieces.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from fluxmusic.audio import AudioVAE, GriffinLimVocoder, HifiGanVocoder, fit_frames, log_mel, normalize_peak
from fluxmusic.errors import InputError
from fluxmusic.evaluation.demo_records import load_waveforms, read_records, stratified_pick
from fluxmusic.evaluation.family_classifier import FamilyClassifier, accuracy_report
from fluxmusic.evaluation.frechet import frechet_distance
from fluxmusic.evaluation.tempo import (
    DEFAULT_BPM_RANGE,
    density_correlation,
    estimate_onset_rates,
    estimate_tempi,
    pulse_clarity,
    tempo_agreement,
)
from fluxmusic.sampling import FALLBACKS

if TYPE_CHECKING:
    from fluxmusic.pipeline import FluxMusicPipeline

__all__ = [
    "CEILING_MODES",
    "GenerationSettings",
    "HeldOutPrompts",
    "Scorer",
    "dataset_bpm_range",
    "family_onehot",
    "floor_chain",
    "generate",
    "held_out_prompts",
    "reconstruct",
    "scramble",
]

CEILING_MODES = ("chars", "pairs", "none")
"""How ceiling prompts are broken: characters shuffled, prompts handed to other clips, or no ceiling."""


def scramble(prompts: list[str], mode: str, seed: int) -> list[str]:
    """Ceiling prompts: ``chars`` shuffles each prompt's characters; ``pairs`` hands prompt i to clip j."""
    if mode not in ("chars", "pairs"):
        raise InputError(f"unknown ceiling mode {mode!r}; use chars or pairs")
    rng = np.random.default_rng(seed)
    if mode == "chars":
        return ["".join(rng.permutation(list(p))) for p in prompts]
    shift = int(rng.integers(1, len(prompts))) if len(prompts) > 1 else 0
    return prompts[shift:] + prompts[:shift]  # a derangement: no prompt stays with its clip


def family_onehot(families: Sequence[str], order: Sequence[str]) -> np.ndarray:
    """One row per clip, a 1 in its family's column. Shapes: -> (len(families), len(order))."""
    out = np.zeros((len(families), len(order)))
    for i, name in enumerate(families):
        out[i, list(order).index(name)] = 1.0
    return out


@dataclass(frozen=True)
class HeldOutPrompts:
    """The prompt clips (records whose captions are the prompts) and the reference clips they are scored
    against (the other test clips, or all of them when too few are left)."""

    prompts: list[dict[str, Any]]
    reference: list[dict[str, Any]]

    @property
    def captions(self) -> list[str]:
        """The prompts' captions, in prompt order."""
        return [r["caption"] for r in self.prompts]


def held_out_prompts(
    data_dir: str | Path, families: Sequence[str], count: int, seed: int = 0
) -> HeldOutPrompts:
    """Up to ``count`` test-split captions that state a BPM, balanced over ``families`` (seeded).

    Raises:
        fluxmusic.errors.MissingFilesError: Not a demo dataset folder.
        fluxmusic.errors.InputError: No test clip of those families states a BPM.
    """
    test = [r for r in read_records(data_dir, "test") if r["family"] in families]
    with_bpm = [r for r in test if "bpm" in r.get("caption_attributes", [])]
    prompts = stratified_pick(with_bpm, count, seed)
    if not prompts:
        raise InputError(f"{data_dir}: no test clip of the judge's families has a caption that states a BPM")
    picked = {r["id"] for r in prompts}
    reference = [r for r in test if r["id"] not in picked]
    if len(reference) < len(prompts):
        reference = test  # too few clips left: the reference overlaps the prompts' clips
    return HeldOutPrompts(prompts, reference)


def dataset_bpm_range(data_dir: str | Path) -> tuple[float, float]:
    """The range the dataset drew its BPMs from (its ``config.json``), the tempo search range."""
    config = Path(data_dir) / "config.json"
    if config.is_file():
        return tuple(json.loads(config.read_text()).get("bpm_range", DEFAULT_BPM_RANGE))  # type: ignore[return-value]
    return DEFAULT_BPM_RANGE


class Scorer:
    """Scores a set of clips made for the prompt records against the held-out reference.

    Args:
        judge: The family classifier (its embedding is the Fréchet distance's).
        prompts: The prompt records (``family``, ``bpm``), in clip order.
        reference_audio: The reference clips. Shapes: (N, S) at 16 kHz.
        ref: Their records (``family``).
        bpm_range: The tempo search range.
    """

    def __init__(
        self,
        judge: FamilyClassifier,
        prompts: list[dict],
        reference_audio: Tensor,
        ref: list[dict],
        bpm_range: tuple[float, float] = DEFAULT_BPM_RANGE,
    ) -> None:
        self.judge = judge
        self.bpm_range = bpm_range
        self.families = [r["family"] for r in prompts]
        self.bpm = np.array([r["bpm"] for r in prompts], dtype=np.float64)
        _, self.ref_emb = judge.analyse(reference_audio)
        self.scale = float(self.ref_emb.norm(dim=1).mean())
        self.ref_joint = np.hstack(
            [self.ref_emb.numpy(), self.scale * family_onehot([r["family"] for r in ref], judge.families)]
        )

    @classmethod
    def for_dataset(cls, judge: FamilyClassifier, data_dir: str | Path, held: HeldOutPrompts) -> Scorer:
        """A scorer for ``held``'s prompts against its reference clips, read from ``data_dir``."""
        reference = load_waveforms(data_dir, held.reference)
        return cls(judge, held.prompts, reference, held.reference, dataset_bpm_range(data_dir))

    def sampling_noise(self, size: int, draws: int = 5, seed: int = 0) -> dict[str, float] | None:
        """FD between ``size`` random reference clips and the other reference clips, over a few draws.

        How far two sets of real clips of this size land apart: differences between rows smaller than
        this are noise. None when the reference has fewer than ``size + 2`` clips.
        """
        n = len(self.ref_emb)
        if n < size + 2 or size < 2:
            return None
        rng = np.random.default_rng(seed)
        values = []
        for _ in range(draws):
            order = torch.from_numpy(rng.permutation(n))
            values.append(frechet_distance(self.ref_emb[order[:size]], self.ref_emb[order[size:]]))
        return {"mean": float(np.mean(values)), "sd": float(np.std(values)), "size": size, "draws": draws}

    def __call__(self, audio: Tensor) -> dict[str, Any]:
        """The metrics row of one clip per prompt. Shapes: audio (N, S) at 16 kHz, in prompt order."""
        probs, emb = self.judge.analyse(audio)
        predicted = [self.judge.families[i] for i in probs.argmax(-1).tolist()]
        acc = accuracy_report(self.families, predicted, self.judge.families)
        tempo = tempo_agreement(self.bpm, estimate_tempi(audio, bpm_range=self.bpm_range))
        rates = estimate_onset_rates(audio)
        pulse = np.array([pulse_clarity(w, bpm_range=self.bpm_range) for w in audio])
        joint = np.hstack([emb.numpy(), self.scale * family_onehot(self.families, self.judge.families)])
        return {
            "family_accuracy": acc["accuracy"],
            "families": len(acc["per_family"]),
            "per_family": acc["per_family"],
            "top_confusion": {k: v["family"] for k, v in acc["top_confusion"].items()},
            "predicted": predicted,
            "tempo": tempo.to_dict(),
            "onsets": {
                "log_corr": density_correlation(self.bpm, rates),
                "per_second": float(np.nanmean(rates)) if np.isfinite(rates).any() else math.nan,
                "pulse_clarity": float(np.nanmean(pulse)) if np.isfinite(pulse).any() else math.nan,
            },
            "fd": frechet_distance(emb, self.ref_emb),
            "fd_joint": frechet_distance(joint, self.ref_joint),
        }


@torch.no_grad()
def reconstruct(audio: Tensor, vae: AudioVAE, vocoder: Any, batch_size: int) -> Tensor:
    """Real clips -> peak 0.5 (the training-clip rule) -> log-mel -> VAE (posterior mean) -> vocoder.

    Shapes:
        audio: (N, S) -> (N, S)
    """
    frames = (audio.shape[1] // 160) // (2 * vae.downsample) * (2 * vae.downsample)
    out = []
    for chunk in audio.split(batch_size):
        chunk = torch.stack([normalize_peak(w) if w.abs().max() > 1e-4 else w for w in chunk])
        mel = fit_frames(log_mel(chunk), frames)[:, None].to(vae.device)
        recon = vae.decode(vae.encode(mel).mode())
        out.append(vocoder(recon.float(), num_samples=audio.shape[1]).float().cpu().clamp(-1, 1))
    return torch.cat(out)


def floor_chain(
    pipe: FluxMusicPipeline, vae: str | Path | None = None, vocoder: str | Path | None = None
) -> tuple[AudioVAE, Any]:
    """The decoder chain of the floor: the model's VAE and vocoder, or a VAE folder, a HiFi-GAN folder or
    ``"griffin-lim"`` in their place."""
    floor_vae = AudioVAE.from_pretrained(vae, None, device=pipe.device) if vae else pipe.vae
    if vocoder == "griffin-lim":
        return floor_vae, GriffinLimVocoder()
    if vocoder:
        return floor_vae, HifiGanVocoder.from_pretrained(vocoder, None, device=pipe.device)
    return floor_vae, pipe.vocoder


@dataclass(frozen=True)
class GenerationSettings:
    """How each clip of a benchmark is made; None is the model's default (:meth:`with_model_defaults`)."""

    duration: float | None = None
    seed: int = 0
    guidance: float | None = None
    guidance_interval: tuple[float, float] | None = None
    guidance_eta: float | None = None
    shift: float | None = None
    batch_size: int = 8

    def with_model_defaults(self, defaults: Mapping[str, Any]) -> GenerationSettings:
        """Unset guidance, interval, eta and shift from the model's defaults, else the sampling fallbacks
        (:data:`fluxmusic.sampling.FALLBACKS`)."""
        names = ("guidance", "guidance_interval", "guidance_eta", "shift")
        unset = [name for name in names if getattr(self, name) is None]
        return replace(self, **{name: defaults.get(name, FALLBACKS[name]) for name in unset})


def generate(
    pipe: FluxMusicPipeline, prompts: list[str], settings: GenerationSettings, **kw: Any
) -> tuple[Tensor, float]:
    """One clip per prompt, row i from seed ``settings.seed + i``; ``kw`` (sampler, steps) go to the pipeline.

    Returns:
        The clips and the seconds it took. Shapes: (N, S).
    """
    start, rows = time.perf_counter(), []
    for i in range(0, len(prompts), settings.batch_size):
        out = pipe(
            prompts[i : i + settings.batch_size],
            duration=settings.duration,
            seed=settings.seed + i,
            guidance=settings.guidance,
            guidance_interval=settings.guidance_interval,
            guidance_eta=settings.guidance_eta,
            shift=settings.shift,
            progress=False,
            **kw,
        )
        rows.append(out.waveforms)
    return torch.cat(rows), time.perf_counter() - start
