"""Quality of a text-to-music model on held-out demo prompts: family accuracy, tempo, Fréchet distance.

The scoring is :mod:`fluxmusic.evaluation.benchmark` (see its docstring and docs/evaluation.md); this
script runs it for every sampler x steps x dtype asked for, prints the table and writes the JSON report.

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
import math
import platform
import time
from pathlib import Path
from typing import Any

import torch

from fluxmusic.audio import log_mel
from fluxmusic.devices import DTYPES
from fluxmusic.evaluation import benchmark
from fluxmusic.evaluation.benchmark import (
    CEILING_MODES,
    GenerationSettings,
    Scorer,
    floor_chain,
    held_out_prompts,
    reconstruct,
    scramble,
)
from fluxmusic.evaluation.demo_records import load_waveforms
from fluxmusic.evaluation.judge import format_report, load_or_train_classifier
from fluxmusic.files import atomic_write_json
from fluxmusic.modelfolder import bundled_model_dir
from fluxmusic.pipeline import FluxMusicPipeline
from fluxmusic.text.tempo import prompt_bpm

RESULTS = Path(__file__).parent / "results"


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


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write the report as strict JSON, atomically (a stopped run never leaves half a file)."""
    atomic_write_json(path, report)


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
    p.add_argument("--ceiling", choices=CEILING_MODES, default="chars")
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

    held = held_out_prompts(args.data, judge.families, args.num_prompts, args.seed)
    prompts, texts = held.prompts, held.captions
    args.duration = args.duration or float(prompts[0]["seconds"])
    print(
        f"{len(prompts)} prompts over {len({r['family'] for r in prompts})} families; "
        f"{len(held.reference)} reference clips"
    )

    real = load_waveforms(args.data, prompts)
    score = Scorer.for_dataset(judge, args.data, held)
    pipe = FluxMusicPipeline.from_pretrained(args.model, device=args.device, dtype="float32")
    if pipe.transformer.config.has_tempo_input:  # the pipeline reads each prompt's BPM
        read = sum(prompt_bpm(r["caption"]) == r["bpm"] for r in prompts)
        report["tempo_input"] = {"prompts_read_exactly": read, "prompts": len(prompts)}
        print(f"tempo input: the requested BPM is read exactly from {read} of {len(prompts)} prompts")
    vae, vocoder = floor_chain(pipe, args.floor_vae, args.floor_vocoder)
    start = time.perf_counter()
    floor = reconstruct(real, vae, vocoder, args.batch_size)
    rows = {
        "real": score(real),
        "floor": {**score(floor), "seconds_per_clip": (time.perf_counter() - start) / len(prompts)},
    }

    settings = GenerationSettings(
        args.duration, args.seed, args.guidance, args.guidance_interval, args.guidance_eta, args.shift,
        args.batch_size,
    ).with_model_defaults(pipe.spec.defaults)  # fmt: skip
    ceiling_config = (args.samplers[0], max(args.steps), args.dtypes[0])
    if args.ceiling != "none":
        pipe.dtype = DTYPES[ceiling_config[2]]
        audio, seconds = benchmark.generate(
            pipe,
            scramble(texts, args.ceiling, args.seed),
            settings,
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

    interval = "" if settings.guidance_interval is None else f" in t {tuple(settings.guidance_interval)}"
    interval += "" if settings.guidance_eta == 1.0 else f", eta {settings.guidance_eta}"
    interval += "" if settings.shift == 1.0 else f", shift {settings.shift}"
    print(f"\ngenerations (guidance {settings.guidance}{interval}, {args.duration:.2f} s, seed {args.seed})")
    print_header()
    grid, shown = [], {}
    report.update(
        {
            "prompts": [{k: r[k] for k in ("id", "caption", "family", "bpm")} for r in prompts],
            "reference_clips": len(held.reference),
            "rows": rows,
            "grid": grid,
            "bpm_range": list(score.bpm_range),
            "complete": False,
        }
    )
    for dtype in args.dtypes:
        pipe.dtype = DTYPES[dtype]
        for sampler in args.samplers:
            for steps in args.steps:
                audio, seconds = benchmark.generate(pipe, texts, settings, sampler=sampler, steps=steps)
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
