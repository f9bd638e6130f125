"""Editing and long form, measured: variation, inpainting, continuation, long pieces, wall time.

Sections (``--sections``, default all):

- ``variation``: log-mel distance to the input (both peak-normalised) and the family the judge hears
  (the prompt's, the input's) against strength; prompts are captions of another family than the input.
- ``inpaint``: the middle half of each input regenerated from another family's caption; the region's
  family accuracy beside the same span of text-to-music clips; join discontinuity (spectral flux at the
  boundary frames over the clip's median flux) beside naive splicing of the text-to-music span and the
  95th percentile of the same ratio at random points of real renders.
- ``continuation``: the first half of each input continued to the window's length from its own caption;
  the same measures for the continued part and its join.
- ``long``: pieces of ``--long-duration`` s (61.44) per ``--overlaps`` value: family accuracy and Fréchet
  distance per trained-window segment, beside 5.12 s clips, the same duration in one window (today's
  pipe(...)) and independent clips concatenated; joins as above.
- ``timing``: wall time against duration: no more than windows x one window's time + 10%.

Family accuracy and FD need the demo dataset (``fluxmusic data build-demo``) and its family classifier
(``--data``; trained into DATA/family_classifier when missing). Without ``--data`` the inputs are the
model's own renders of built-in captions, and only distances, joins and timing are reported.

    python benchmarks/bench_editing.py --data /work/data/demo                    # the measurement
    python benchmarks/bench_editing.py --data /work/data/demo --quick            # 4 prompts, 8 steps
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fluxmusic.audio import log_mel, normalize_peak
from fluxmusic.evaluation.benchmark import Scorer, held_out_prompts
from fluxmusic.evaluation.demo_records import load_waveforms
from fluxmusic.evaluation.frechet import frechet_distance
from fluxmusic.evaluation.judge import load_or_train_classifier
from fluxmusic.files import atomic_write_json
from fluxmusic.pipeline import FluxMusicPipeline
from fluxmusic.pipeline.edit_inputs import CROSSFADE_SECONDS
from fluxmusic.pipeline.editing import frame_samples
from fluxmusic.pipeline.long_form import join_samples, plan_windows
from fluxmusic.sampling import SampleSettings

RESULTS = Path(__file__).parent / "results"
SECTIONS = ("variation", "inpaint", "continuation", "long", "timing")
CAPTIONS = tuple(  # inputs and prompts without a dataset
    "solo piano, 90 BPM|solo violin, a fast reel at 132 BPM|solo church organ, 66 BPM|solo acoustic guitar, "
    "110 BPM|solo flute, 100 BPM|solo trumpet, 120 BPM|solo cello, 72 BPM|solo marimba, 140 BPM".split("|")
)


@dataclass
class Bench:
    """The model, the inputs (one window long) with their captions and families, the other-family prompts,
    and the judge (None without a dataset)."""

    pipe: FluxMusicPipeline
    args: argparse.Namespace
    inputs: torch.Tensor
    captions: list[str]
    families: list[str | None]
    others: list[str]
    other_families: list[str | None]
    real: torch.Tensor
    judge: Any = None
    scorer: Scorer | None = None

    def accuracy(self, audio: torch.Tensor, families: list[str | None]) -> float | None:
        if self.judge is None:
            return None
        predicted = self.judge.predict(audio)
        return float(np.mean([p == f for p, f in zip(predicted, families)]))

    def fd(self, audio: torch.Tensor) -> float | None:
        if self.scorer is None:
            return None
        return frechet_distance(self.judge.embed_audio(audio), self.scorer.ref_emb)

    def run(self, fn: Any, rows: list[Any], seed_offset: int = 0, **kw: Any) -> torch.Tensor:
        """One call per row (row i from seed ``seed + i + 1000 * seed_offset``), waveforms stacked."""
        kw = {"steps": self.args.steps, "progress": False, **kw}
        seed = self.args.seed + 1000 * seed_offset
        return torch.cat([fn(*row, seed=seed + i, **kw).waveforms for i, row in enumerate(rows)])


def flux(audio: torch.Tensor) -> torch.Tensor:
    """Half-wave rectified spectral flux of the log-mel, 100 frames/s. Shapes: (S,) -> (T - 1,)."""
    mel = log_mel(audio[None])[0]
    return (mel[1:] - mel[:-1]).clamp_min(0).sum(1)


REACH = 5
"""Frames (10 ms) either side of a join searched for its flux: a crossfade (80 ms) and its edges."""


def join_ratio(audio: torch.Tensor, sample: int, reach: int = REACH) -> float:
    """The largest flux within ``reach`` frames of ``sample`` over the clip's median flux."""
    f = flux(audio)
    frame = min(max(sample // 160, reach), f.shape[0] - reach - 1)
    return float(f[frame - reach : frame + reach + 1].max() / f.median().clamp_min(1e-6))


def random_ratios(clips: torch.Tensor, per_clip: int, seed: int) -> list[float]:
    """``join_ratio`` at random points of each clip (away from its ends)."""
    rng, out = np.random.default_rng(seed), []
    for clip in clips:
        for sample in rng.integers(clip.shape[0] // 10, clip.shape[0] * 9 // 10, per_clip):
            out.append(join_ratio(clip, int(sample)))
    return out


def joins(ratios: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(ratios)), "p95": float(np.percentile(ratios, 95)), "count": len(ratios)}


def mel_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute log-mel difference of two peak-normalised clips."""
    n = min(a.shape[-1], b.shape[-1])
    return float((log_mel(normalize_peak(a[:n])[None]) - log_mel(normalize_peak(b[:n])[None])).abs().mean())


def section_variation(b: Bench) -> dict[str, Any]:
    rows = []
    for strength in [*b.args.strengths, 1.0]:
        audio = b.run(b.pipe.variation, list(zip(b.inputs, b.others)), strength=strength)
        rows.append(
            {
                "strength": strength,
                "mel_distance": float(np.mean([mel_distance(x, y) for x, y in zip(b.inputs, audio)])),
                "prompt_family": b.accuracy(audio, b.other_families),
                "input_family": b.accuracy(audio, b.families),
            }
        )
    distances = [r["mel_distance"] for r in rows[:-1]]
    return {"rows": rows, "distance_monotonic": bool(np.all(np.diff(distances) > 0))}


def _region_report(
    b: Bench,
    edited: torch.Tensor,
    plain: torch.Tensor,
    naive: torch.Tensor,
    span: tuple[int, int],
    families: list[str | None],
    ours: list[int],
) -> dict[str, Any]:
    """Region family accuracy (edit, text-to-music); flux at our crossfade centres and at the naive cuts."""
    start, end = span
    cuts = [s for s in span if 0 < s < edited.shape[1]]
    return {
        "region_family": b.accuracy(edited[:, start:end], families),
        "text_to_music_family": b.accuracy(plain[:, start:end], families),
        "joins": joins([join_ratio(clip, s) for clip in edited for s in ours]),
        "naive_joins": joins([join_ratio(clip, s) for clip in naive for s in cuts]),
        "real_random_p95": joins(random_ratios(b.real, 20, b.args.seed))["p95"],
    }


def section_inpaint(b: Bench) -> dict[str, Any]:
    length, rate = b.inputs.shape[1], b.pipe.sample_rate
    span, fade = (length // 4, 3 * length // 4), round(CROSSFADE_SECONDS * rate)
    region = (span[0] / rate, span[1] / rate)
    edited = b.run(b.pipe.inpaint, [(x, p, [region]) for x, p in zip(b.inputs, b.others)])
    plain = b.run(b.pipe, [(p,) for p in b.others], duration=length / rate)
    naive = b.inputs.clone()
    naive[:, span[0] : span[1]] = plain[:, span[0] : span[1]]
    kept = torch.ones(length, dtype=torch.bool)
    kept[span[0] - fade : span[1] + fade] = False
    exact = bool(torch.equal(edited[:, kept], b.inputs[:, kept]))
    return {
        "region_s": list(region),
        "kept_exactly": exact,
        **_region_report(
            b, edited, plain, naive, span, b.other_families, [span[0] - fade // 2, span[1] + fade // 2]
        ),
    }


def section_continuation(b: Bench) -> dict[str, Any]:
    length, rate = b.inputs.shape[1], b.pipe.sample_rate
    half, fade = length // 2, round(CROSSFADE_SECONDS * rate)
    edited = b.run(b.pipe.continuation, [(x[:half], c, length / rate) for x, c in zip(b.inputs, b.captions)])
    plain = b.run(b.pipe, [(c,) for c in b.captions], duration=length / rate)
    naive = torch.cat((b.inputs[:, :half], plain[:, half:]), dim=1)
    return {
        "input_s": half / rate,
        "total_s": length / rate,
        **_region_report(b, edited, plain, naive, (half, length), b.families, [half - fade // 2]),
    }


def _segments(audio: torch.Tensor, window: int) -> torch.Tensor:
    count = audio.shape[1] // window
    return audio[:, : count * window].reshape(-1, window)


def _long_row(
    b: Bench, audio: torch.Tensor, window: int, seconds: float, bounds: list[int]
) -> dict[str, Any]:
    segments = _segments(audio, window)
    per_piece = segments.shape[0] // audio.shape[0]
    families = [f for f in b.families for _ in range(per_piece)]
    rng = np.random.default_rng(b.args.seed)
    one_each = segments[[i * per_piece + int(rng.integers(per_piece)) for i in range(audio.shape[0])]]
    return {
        "window_family": b.accuracy(segments, families),
        "fd_windows": b.fd(segments),
        "fd_one_window_each": b.fd(one_each),
        "joins": joins([join_ratio(clip, s) for clip in audio for s in bounds]) if bounds else None,
        "seconds": seconds,
    }


def section_long(b: Bench) -> dict[str, Any]:
    pipe, args, rate = b.pipe, b.args, b.pipe.sample_rate
    window, total = b.inputs.shape[1], round(args.long_duration * rate)
    frame, d = frame_samples(pipe), pipe.vae.downsample
    report: dict[str, Any] = {"duration": args.long_duration, "rows": {}}
    start = time.perf_counter()
    clips = b.run(pipe, [(c,) for c in b.captions], duration=window / rate)
    report["rows"]["clips"] = {**_long_row(b, clips, window, time.perf_counter() - start, []), "joins": None}
    for overlap in args.overlaps:
        start = time.perf_counter()
        out = pipe.long_form(
            b.captions, args.long_duration, overlap=overlap, steps=args.steps, seed=args.seed, progress=False
        )
        plan = plan_windows(
            window,
            total,
            pipe.latent_frames(pipe.spec.default_duration) // d,
            round(overlap * rate / frame),
            frame,
            pipe.transformer.config.patch_size,
        )
        bounds = join_samples(plan, window, frame, round(CROSSFADE_SECONDS * rate))
        row = _long_row(b, out.waveforms, window, time.perf_counter() - start, bounds)
        report["rows"][f"long form, overlap {overlap:g}"] = {**row, "windows": out.edit.windows}
    start = time.perf_counter()
    settings = SampleSettings.resolve(
        pipe.spec.defaults, default_duration=args.long_duration, steps=args.steps, seed=args.seed
    )  # no max: today's one window
    one = pipe.generate(b.captions, settings, progress=False).waveforms
    report["rows"]["one window"] = _long_row(b, one, window, time.perf_counter() - start, [])
    start = time.perf_counter()
    count = math.ceil(total / window)
    parts = [
        b.run(pipe, [(c,) for c in b.captions], duration=window / rate, seed_offset=k) for k in range(count)
    ]
    concat = torch.cat(parts, dim=1)[:, :total]
    bounds = [k * window for k in range(1, count)]
    report["rows"]["independent clips"] = _long_row(b, concat, window, time.perf_counter() - start, bounds)
    if b.scorer is not None:
        report["fd_sampling_noise"] = b.scorer.sampling_noise(len(b.captions), seed=args.seed)
    return report


def section_timing(b: Bench) -> dict[str, Any]:
    pipe, window = b.pipe, b.pipe.spec.default_duration
    run = {"steps": b.args.steps, "seed": b.args.seed, "progress": False}
    pipe.long_form(b.captions[0], window, **run)  # warm-up
    rows = []
    for multiple in b.args.timing_windows:
        start = time.perf_counter()
        out = pipe.long_form(b.captions[0], window * multiple, **run)
        rows.append(
            {
                "duration": window * multiple,
                "windows": out.edit.windows if out.edit else 1,
                "seconds": time.perf_counter() - start,
            }
        )
    one = rows[0]["seconds"] / rows[0]["windows"]
    for row in rows:
        row["bound"] = 1.1 * row["windows"] * one
        row["linear"] = row["seconds"] <= row["bound"]
    return {"rows": rows, "one_window_seconds": one}


def other_family(records: list[dict[str, Any]], i: int) -> int:
    """The next record (cyclically) whose family differs from record ``i``'s (``i`` if none does)."""
    for k in range(1, len(records)):
        j = (i + k) % len(records)
        if records[j]["family"] != records[i]["family"]:
            return j
    return i


def build(args: argparse.Namespace) -> Bench:
    pipe = FluxMusicPipeline.from_pretrained(args.model, device=args.device, dtype=args.dtype)
    args.steps = args.steps or pipe.settings().steps
    window = pipe.spec.default_duration
    if args.data is None:
        captions = list(CAPTIONS[: args.num_prompts])
        run = {"duration": window, "steps": args.steps, "progress": False}
        inputs = torch.cat(
            [pipe(c, seed=args.seed + 100 + i, **run).waveforms for i, c in enumerate(captions)]
        )
        none = [None] * len(captions)
        return Bench(pipe, args, inputs, captions, none, captions[1:] + captions[:1], none, inputs)
    judge, _ = load_or_train_classifier(args.classifier or args.data / "family_classifier", args.data)
    held = held_out_prompts(args.data, judge.families, args.num_prompts, args.seed)
    records = held.prompts
    inputs = load_waveforms(args.data, records, round(window * pipe.sample_rate))
    order = [other_family(records, i) for i in range(len(records))]
    return Bench(
        pipe,
        args,
        inputs,
        held.captions,
        [r["family"] for r in records],
        [records[j]["caption"] for j in order],
        [records[j]["family"] for j in order],
        inputs,
        judge,
        Scorer.for_dataset(judge, args.data, held),
    )


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "-" if value is None else str(value)


def show(name: str, report: dict[str, Any]) -> None:
    print(f"\n{name}")
    rows = report.get("rows")
    if isinstance(rows, dict):
        rows = [{"row": k, **v} for k, v in rows.items()]
    for row in rows or [report]:
        flat = {k: (f"{v['mean']:.1f}/{v['p95']:.1f}" if isinstance(v, dict) and "p95" in v else v)
                for k, v in row.items()}  # fmt: skip
        print("  " + "  ".join(f"{k}={fmt(v)}" for k, v in flat.items() if not isinstance(v, (dict, list))))
    extra = {k: v for k, v in report.items() if k != "rows"}
    if rows and extra:
        print("  " + "  ".join(f"{k}={fmt(v)}" for k, v in extra.items() if not isinstance(v, (dict, list))))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model folder or name (default: the bundled model)")
    p.add_argument("--data", type=Path, default=None, help="demo dataset folder (family accuracy and FD)")
    p.add_argument(
        "--classifier", type=Path, default=None, help="family classifier (default DATA/family_classifier)"
    )
    p.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    p.add_argument("--num-prompts", type=int, default=16)
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    p.add_argument("--strengths", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 0.9])
    p.add_argument("--long-duration", type=float, default=61.44)
    p.add_argument("--overlaps", type=float, nargs="+", default=None, help="default: half the model's window")
    p.add_argument(
        "--timing-windows", type=float, nargs="+", default=[1, 2, 4, 8, 12], help="durations in windows"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--quick", action="store_true", help="4 prompts, 8 steps, strengths 0.1 0.5 0.9")
    p.add_argument("--out", type=Path, default=RESULTS / "bench_editing.json")
    args = p.parse_args(argv)
    if args.quick:
        args.num_prompts, args.steps, args.strengths = (
            min(args.num_prompts, 4),
            args.steps or 8,
            [0.1, 0.5, 0.9],
        )
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the sections; returns the report written to ``--out``."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    bench = build(args)
    args.overlaps = args.overlaps or [bench.pipe.spec.default_duration / 2]
    report: dict[str, Any] = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "dataset": args.data is not None,
        "prompts": bench.captions,
    }
    seconds = bench.inputs.shape[1] / bench.pipe.sample_rate
    note = "" if args.data else "; no --data: no family accuracy or FD"
    print(f"{len(bench.captions)} inputs of {seconds:g} s, {args.steps} steps{note}")
    for name in args.sections:
        start = time.perf_counter()
        report[name] = {**globals()[f"section_{name}"](bench), "wall_s": time.perf_counter() - start}
        show(name, report[name])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.out, report)
    print(f"\nwrote {args.out}")
    return report


if __name__ == "__main__":
    main()
