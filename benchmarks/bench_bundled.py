"""Quality of a text-to-music model on held-out demo prompts: family accuracy, tempo, Fréchet distance.

For N held-out captions of the demo dataset (test split, balanced over instrument families, captions that
state a BPM), generate one clip each and measure:

(a) instrument-family accuracy of the generated audio, judged by the family classifier trained on the real
    training renders (``fluxmusic.evaluation.judge``; trained and cached when missing);
(b) agreement between the requested BPM and the tempo estimated from the audio
    (``fluxmusic.evaluation.tempo``: log-tempo correlation, octave-invariant correlation, accuracies),
    and beside it the correlation of the log requested BPM with the log note-onset rate (``dens``: does
    the note density follow the request, steady beat or not) and the mean pulse clarity (``pulse``: is
    there a steady beat at all; about 0.4 for real renders);
(c) Fréchet distance, in the classifier's embedding, to held-out real clips (test clips not used as
    prompts); ``fd_joint`` appends the requested family (one-hot, scaled to the embedding's mean norm),
    so it also sees whether the right family was made;
(d) for every sampler x steps x dtype asked for.

Reference rows: ``real`` (the prompts' own renders), ``floor`` (those renders through the model's VAE and
vocoder), ``ceiling`` (generations from prompts with their characters shuffled, or with ``--ceiling
pairs`` the prompts handed to the wrong clips). Compare Fréchet distances only at equal N. The JSON report
(``--out``) is rewritten after every grid row with ``"complete": false`` until the run ends, so a long grid
that is stopped keeps the rows it finished.

    python benchmarks/bench_bundled.py --model MODEL_DIR --data /work/data/demo
    python benchmarks/bench_bundled.py --model MODEL_DIR --quick        # 16 prompts, euler, 8 steps, fp32
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fluxmusic.audio import AudioVAE, GriffinLimVocoder, HifiGanVocoder, fit_frames, log_mel, normalize_peak
from fluxmusic.components import bundled_model_dir
from fluxmusic.evaluation.demo_records import load_waveforms, read_records, stratified_pick
from fluxmusic.evaluation.family_classifier import FamilyClassifier, accuracy_report
from fluxmusic.evaluation.frechet import frechet_distance
from fluxmusic.evaluation.judge import format_report, load_or_train_classifier
from fluxmusic.evaluation.tempo import (
    DEFAULT_BPM_RANGE,
    density_correlation,
    estimate_onset_rates,
    estimate_tempi,
    pulse_clarity,
    tempo_agreement,
)
from fluxmusic.pipeline import DTYPES, FluxMusicPipeline
from fluxmusic.text.tempo import prompt_bpm

RESULTS = Path(__file__).parent / "results"


def scramble(prompts: list[str], mode: str, seed: int) -> list[str]:
    """Ceiling prompts: ``chars`` shuffles each prompt's characters; ``pairs`` hands prompt i to clip j."""
    rng = np.random.default_rng(seed)
    if mode == "chars":
        return ["".join(rng.permutation(list(p))) for p in prompts]
    shift = int(rng.integers(1, len(prompts))) if len(prompts) > 1 else 0
    return prompts[shift:] + prompts[:shift]  # a derangement: no prompt stays with its clip


def family_onehot(families: list[str], order: tuple[str, ...]) -> np.ndarray:
    out = np.zeros((len(families), len(order)))
    for i, name in enumerate(families):
        out[i, order.index(name)] = 1.0
    return out


class Scorer:
    """Scores a set of clips made for the prompt records against the held-out reference."""

    def __init__(
        self,
        judge: FamilyClassifier,
        prompts: list[dict],
        reference_audio: torch.Tensor,
        ref: list[dict],
        bpm_range: tuple[float, float] = DEFAULT_BPM_RANGE,
    ):
        self.judge = judge
        self.bpm_range = bpm_range
        self.families = [r["family"] for r in prompts]
        self.bpm = np.array([r["bpm"] for r in prompts], dtype=np.float64)
        _, self.ref_emb = judge.analyse(reference_audio)
        self.scale = float(self.ref_emb.norm(dim=1).mean())
        self.ref_joint = np.hstack(
            [self.ref_emb.numpy(), self.scale * family_onehot([r["family"] for r in ref], judge.families)]
        )

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

    def __call__(self, audio: torch.Tensor) -> dict[str, Any]:
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
def reconstruct(audio: torch.Tensor, vae: AudioVAE, vocoder: Any, batch_size: int) -> torch.Tensor:
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


def generate(
    pipe: FluxMusicPipeline, prompts: list[str], args: argparse.Namespace, **kw: Any
) -> tuple[torch.Tensor, float]:
    """One clip per prompt, row i from seed ``args.seed + i``; returns (audio (N, S), seconds)."""
    start, rows = time.perf_counter(), []
    for i in range(0, len(prompts), args.batch_size):
        out = pipe(
            prompts[i : i + args.batch_size],
            duration=args.duration,
            seed=args.seed + i,
            guidance=args.guidance,
            guidance_interval=args.guidance_interval,
            guidance_eta=args.guidance_eta,
            shift=args.shift,
            progress=False,
            **kw,
        )
        rows.append(out.waveforms)
    return torch.cat(rows), time.perf_counter() - start


def save_spectrograms(
    folder: Path, prompts: list[str], rows: dict[str, torch.Tensor], count: int
) -> list[str]:
    """One PNG per prompt: log-mel of each row (real, floor, a generation, ...) side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(min(count, len(prompts))):
        fig, axes = plt.subplots(1, len(rows), figsize=(4 * len(rows), 3), squeeze=False)
        mels = {name: log_mel(audio[i]).T.numpy() for name, audio in rows.items()}
        top = max(float(m.max()) for m in mels.values())  # one colour scale per figure
        for ax, (name, mel) in zip(axes[0], mels.items()):
            ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=-11.5, vmax=top)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("frame (10 ms)")
        axes[0][0].set_ylabel("mel band")
        fig.suptitle(prompts[i][:110], fontsize=8)
        fig.tight_layout()
        path = folder / f"spectrogram_{i:02d}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(str(path))
    return paths


def finite(value: Any) -> Any:
    """The report with NaN / inf floats as None (strict JSON)."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write the report as strict JSON, atomically (a stopped run never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(finite(report), indent=2, allow_nan=False) + "\n")
    os.replace(partial, path)


def fmt(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


COLUMNS: tuple[tuple[str, str, str, int], ...] = (  # (header, key, format, width); tempo keys under "tempo"
    ("fam", "family_accuracy", ".3f", 7),
    ("#fam", "families", "d", 5),
    ("logcor", "tempo.log_corr", ".3f", 8),
    ("octcor", "tempo.octave_corr", ".3f", 8),
    ("acc1", "tempo.acc1", ".3f", 7),
    ("acc2", "tempo.acc2", ".3f", 7),
    ("dens", "onsets.log_corr", ".3f", 7),
    ("pulse", "onsets.pulse_clarity", ".3f", 7),
    ("FD", "fd", ".2f", 9),
    ("FDjoint", "fd_joint", ".2f", 9),
    ("s/clip", "seconds_per_clip", ".2f", 9),
)


def print_header() -> None:
    print(f"  {'':<26}" + "".join(f"{head:>{width}}" for head, _, _, width in COLUMNS))


def print_row(name: str, row: dict[str, Any]) -> None:
    cells = []
    for _, key, spec, width in COLUMNS:
        value: Any = row
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        cells.append(f"{fmt(value, spec):>{width}}")
    print(f"  {name:<26}" + "".join(cells))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    p.add_argument("--data", type=Path, default=Path("/work/data/demo"), help="demo dataset folder")
    p.add_argument(
        "--classifier",
        type=Path,
        default=None,
        help="family classifier folder (default DATA/family_classifier; trained if missing)",
    )
    p.add_argument("--num-prompts", type=int, default=64)
    p.add_argument("--samplers", nargs="+", default=["euler", "heun", "midpoint"])
    p.add_argument("--steps", nargs="+", type=int, default=[8, 16, 32, 50])
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=sorted(DTYPES))
    p.add_argument("--guidance", type=float, default=None, help="default: the model's")
    p.add_argument(
        "--guidance-interval",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        default=None,
        help="guide only at LO <= t <= HI (default: the model's)",
    )
    p.add_argument(
        "--guidance-eta",
        type=float,
        default=None,
        help="weight of the guidance update's parallel part (1 = plain guidance; default: the model's)",
    )
    p.add_argument("--shift", type=float, default=None, help="time-grid shift (default: the model's)")
    p.add_argument(
        "--duration", type=float, default=None, help="seconds (default: the dataset's clip length)"
    )
    p.add_argument("--ceiling", choices=("chars", "pairs", "none"), default="chars")
    p.add_argument(
        "--floor-vae", type=Path, default=None, help="VAE folder for the floor (default: the model's)"
    )
    p.add_argument(
        "--floor-vocoder", default=None, help="HiFi-GAN folder or 'griffin-lim' (default: the model's)"
    )
    p.add_argument("--spectrograms", type=int, default=None, help="PNGs for the first N prompts (default 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="<= 16 prompts, euler, 8 steps, float32, no PNGs")
    p.add_argument("--out", type=Path, default=RESULTS / "bench_bundled.json")
    args = p.parse_args(argv)
    if args.quick:
        args.num_prompts, args.samplers, args.steps, args.dtypes = (
            min(args.num_prompts, 16),
            ["euler"],
            [8],
            ["float32"],
        )
        args.spectrograms = 0 if args.spectrograms is None else args.spectrograms
    args.spectrograms = 4 if args.spectrograms is None else args.spectrograms
    args.model = args.model or str(bundled_model_dir())
    if not Path(args.model).is_dir():
        p.error(f"no model folder at {args.model}; pass --model")
    args.classifier = args.classifier or args.data / "family_classifier"
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the report written to ``--out``."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    }
    report["machine"] = {"platform": platform.platform(), "torch": torch.__version__, "threads": args.threads}

    judge, judge_report = load_or_train_classifier(args.classifier, args.data)
    if judge_report:
        print(format_report(judge_report))
    report["classifier"] = {
        "path": str(args.classifier),
        **{k: judge_report.get(k) for k in ("held_out", "train_accuracy")},
    }

    test = [r for r in read_records(args.data, "test") if r["family"] in judge.families]
    with_bpm = [r for r in test if "bpm" in r.get("caption_attributes", [])]
    prompts = stratified_pick(with_bpm, args.num_prompts, args.seed)
    picked = {r["id"] for r in prompts}
    reference = [r for r in test if r["id"] not in picked]
    if len(reference) < len(prompts):
        reference = test  # too few clips left: the reference overlaps the prompts' clips
    args.duration = args.duration or float(prompts[0]["seconds"])
    texts = [r["caption"] for r in prompts]
    print(
        f"{len(prompts)} prompts over {len({r['family'] for r in prompts})} families; "
        f"{len(reference)} reference clips"
    )

    real = load_waveforms(args.data, prompts)
    data_config = args.data / "config.json"
    bpm_range = DEFAULT_BPM_RANGE
    if data_config.is_file():  # the tempo search range is the range the dataset drew BPMs from
        bpm_range = tuple(json.loads(data_config.read_text()).get("bpm_range", bpm_range))
    score = Scorer(judge, prompts, load_waveforms(args.data, reference), reference, bpm_range)
    pipe = FluxMusicPipeline.from_pretrained(args.model, device=args.device, dtype="float32")
    if pipe.transformer.config.has_tempo_input:  # the pipeline reads each prompt's BPM
        read = sum(prompt_bpm(r["caption"]) == r["bpm"] for r in prompts)
        report["tempo_input"] = {"prompts_read_exactly": read, "prompts": len(prompts)}
        print(f"tempo input: the requested BPM is read exactly from {read} of {len(prompts)} prompts")
    vae = AudioVAE.from_pretrained(args.floor_vae, None, device=pipe.device) if args.floor_vae else pipe.vae
    if args.floor_vocoder == "griffin-lim":
        vocoder: Any = GriffinLimVocoder()
    elif args.floor_vocoder:
        vocoder = HifiGanVocoder.from_pretrained(args.floor_vocoder, None, device=pipe.device)
    else:
        vocoder = pipe.vocoder
    start = time.perf_counter()
    floor = reconstruct(real, vae, vocoder, args.batch_size)
    rows = {
        "real": score(real),
        "floor": {**score(floor), "seconds_per_clip": (time.perf_counter() - start) / len(prompts)},
    }

    defaults = pipe.spec.defaults
    args.guidance = defaults.get("guidance", 7.0) if args.guidance is None else args.guidance
    if args.guidance_interval is None:
        args.guidance_interval = defaults.get("guidance_interval")
    args.guidance_eta = defaults.get("guidance_eta", 1.0) if args.guidance_eta is None else args.guidance_eta
    args.shift = defaults.get("shift", 1.0) if args.shift is None else args.shift
    ceiling_config = (args.samplers[0], max(args.steps), args.dtypes[0])
    if args.ceiling != "none":
        pipe.dtype = DTYPES[ceiling_config[2]]
        audio, seconds = generate(
            pipe,
            scramble(texts, args.ceiling, args.seed),
            args,
            sampler=ceiling_config[0],
            steps=ceiling_config[1],
        )
        rows["ceiling"] = {**score(audio), "seconds_per_clip": seconds / len(prompts), "mode": args.ceiling}
    print(
        "\nreference rows (fam: family accuracy; tempo: log/octave corr, acc1/acc2; "
        "dens: onset-rate corr; pulse: beat clarity; FD: in the classifier embedding)"
    )
    print_header()
    for name, row in rows.items():
        print_row(name, row)
    noise = score.sampling_noise(len(prompts), seed=args.seed)
    report["fd_sampling_noise"] = noise
    if noise:
        print(
            f"  FD between {noise['size']} and the other real reference clips ({noise['draws']} draws): "
            f"{noise['mean']:.2f} +- {noise['sd']:.2f} (real vs real at this size)"
        )

    interval = "" if args.guidance_interval is None else f" in t {tuple(args.guidance_interval)}"
    interval += "" if args.guidance_eta == 1.0 else f", eta {args.guidance_eta}"
    interval += "" if args.shift == 1.0 else f", shift {args.shift}"
    print(f"\ngenerations (guidance {args.guidance}{interval}, {args.duration:.2f} s, seed {args.seed})")
    print_header()
    grid, shown = [], {}
    report.update(
        {
            "prompts": [{k: r[k] for k in ("id", "caption", "family", "bpm")} for r in prompts],
            "reference_clips": len(reference),
            "rows": rows,
            "grid": grid,
            "bpm_range": list(bpm_range),
            "complete": False,
        }
    )
    for dtype in args.dtypes:
        pipe.dtype = DTYPES[dtype]
        for sampler in args.samplers:
            for steps in args.steps:
                audio, seconds = generate(pipe, texts, args, sampler=sampler, steps=steps)
                row = {
                    "dtype": dtype,
                    "sampler": sampler,
                    "steps": steps,
                    **score(audio),
                    "seconds_per_clip": seconds / len(prompts),
                }
                grid.append(row)
                print_row(f"{dtype} {sampler} {steps}", row)
                write_report(args.out, report)  # a long grid keeps its finished rows if stopped
                if (sampler, steps, dtype) == ceiling_config:
                    shown = {"generated": audio}
    if args.spectrograms:
        panels = {
            "real": real,
            "floor (VAE + vocoder)": floor,
            **{f"generated {' '.join(map(str, ceiling_config))}": a for a in shown.values()},
        }
        report["spectrograms"] = save_spectrograms(
            args.out.parent / f"{args.out.stem}_spectrograms", texts, panels, args.spectrograms
        )
    report["complete"] = True
    write_report(args.out, report)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
