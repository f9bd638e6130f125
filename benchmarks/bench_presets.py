"""Speed and quality of the sampling presets: network calls, seconds and the evaluation kit's metrics.

For the bundled model (or ``--model``) on ``--num-prompts`` held-out demo prompts
(:mod:`fluxmusic.evaluation.benchmark`): every row is a way of integrating the flow (sampler, steps,
shift, step-cache threshold) at the model's guidance. Each row reports

- NFE: transformer calls per clip (a guided call counts once), and the effective NFE after step caching
  (calls whose blocks ran, weighted by the share of rows that ran them);
- seconds per clip of sampling alone (stage 4) on this machine, wall and CPU (the CPU seconds of one
  thread are what an idle machine's wall clock gives; the wall clock also counts other jobs' load);
- family accuracy, Fréchet distance (plain and joint), tempo agreement (log correlation, acc2);
- the distance to a converged solution from the same noise: ``mean_i |x_i - x*_i| / |x*_i|`` over the
  latents of the first ``--converged-prompts`` prompts, ``x*`` from ``--converged`` (200 Heun calls).

Rows with several ``--seeds`` report each metric's mean and standard deviation across seeds: the
sampling noise of the metric on this many prompts. The acceptance check compares the ``balanced`` preset
with the reference row (50 Euler steps): a metric passes when they differ by at most twice the larger
of the two rows' across-seed standard deviations.

    python benchmarks/bench_presets.py --data data/demo                   # presets vs 50 Euler steps
    python benchmarks/bench_presets.py --data data/demo --rows ab2:12:3:0 dpmpp_2m:16:3:0 --seeds 0

On a machine with two free cores, run the reference and the presets as two processes and merge:

    python benchmarks/bench_presets.py --presets --out A.json &      # converged + reference rows
    python benchmarks/bench_presets.py --no-reference --out B.json   # converged + presets
    python benchmarks/bench_presets.py --merge A.json B.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fluxmusic.evaluation.benchmark import Scorer, held_out_prompts
from fluxmusic.evaluation.demo_records import read_records
from fluxmusic.evaluation.judge import load_or_train_classifier
from fluxmusic.files import atomic_write_json
from fluxmusic.modelfolder import bundled_model_dir
from fluxmusic.pipeline import FluxMusicPipeline
from fluxmusic.pipeline.prepare import prepare
from fluxmusic.sampling import QUALITIES, preset_values

RESULTS = Path(__file__).parent / "results"
METRICS: tuple[tuple[str, str, str], ...] = (  # (header, key in a score row, format)
    ("fam", "family_accuracy", ".3f"),
    ("FD", "fd", ".1f"),
    ("FDjoint", "fd_joint", ".1f"),
    ("logcor", "tempo.log_corr", ".3f"),
    ("acc2", "tempo.acc2", ".3f"),
)
ACCEPTANCE = ("family_accuracy", "fd", "fd_joint", "tempo.log_corr")
REFERENCE = "euler50 (reference)"
COSTS = ("nfe", "nfe_effective", "seconds_per_clip", "cpu_seconds_per_clip")


def lookup(row: dict[str, Any], key: str) -> float:
    value: Any = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return math.nan if value is None else float(value)


def parse_row(text: str) -> dict[str, Any]:
    """``SAMPLER:STEPS:SHIFT:CACHE`` (e.g. ``ab2:12:3:0``) -> settings of one row."""
    sampler, steps, shift, cache = text.split(":")
    return {"sampler": sampler, "steps": int(steps), "shift": float(shift), "cache_threshold": float(cache)}


class Counter:
    """Counts transformer calls and the rows that ran the blocks (hooks on the model and its first block)."""

    def __init__(self, transformer: torch.nn.Module) -> None:
        self.calls = self.rows = self.block_rows = 0
        transformer.register_forward_pre_hook(self._model)
        first = (
            transformer.double_blocks[0] if len(transformer.double_blocks) else transformer.single_blocks[0]
        )
        first.register_forward_pre_hook(self._block)

    def _model(self, _: Any, args: tuple) -> None:
        self.calls += 1
        self.rows += args[0].shape[0]

    def _block(self, _: Any, args: tuple) -> None:
        self.block_rows += args[0].shape[0]

    def take(self) -> tuple[int, int, int]:
        out = (self.calls, self.rows, self.block_rows)
        self.calls = self.rows = self.block_rows = 0
        return out


def run_row(
    pipe: FluxMusicPipeline,
    prompts: list[str],
    settings: dict[str, Any],
    seed: int,
    batch: int,
    counter: Counter,
) -> dict[str, Any]:
    """Latents and audio of one clip per prompt (row i from seed + i), with calls and seconds."""
    latents, audio, sampling, cpu, calls, rows, block_rows, batches = [], [], 0.0, 0.0, 0, 0, 0, 0
    for i in range(0, len(prompts), batch):
        resolved = pipe.settings(seed=seed + i, **settings)
        req = prepare(pipe, prompts[i : i + batch], resolved, 1, None)
        noise = req.noise(pipe, pipe.latent_frames(resolved.duration))
        counter.take()
        start, cpu_start = time.perf_counter(), time.process_time()
        latent = pipe.denoise(noise, req.emb, req.tempo, req.settings, progress=False)
        sampling += time.perf_counter() - start
        cpu += time.process_time() - cpu_start
        c, r, b = counter.take()
        calls, rows, block_rows, batches = calls + c, rows + r, block_rows + b, batches + 1
        latents.append(latent)
        audio.append(pipe.decode(latent, round(resolved.duration * pipe.sample_rate))[0])
    nfe = calls / batches
    return {
        "latents": torch.cat(latents),
        "audio": torch.cat(audio),
        "nfe": nfe,
        "nfe_effective": nfe * block_rows / max(rows, 1),
        "seconds_per_clip": sampling / len(prompts),
        "cpu_seconds_per_clip": cpu / len(prompts),
        "settings": resolved.to_dict(),
    }


def distance(latents: torch.Tensor, converged: torch.Tensor) -> float:
    """Mean relative L2 distance of the first len(converged) latents to the converged ones."""
    diff = (latents[: len(converged)] - converged).flatten(1).norm(dim=1)
    return float((diff / converged.flatten(1).norm(dim=1)).mean())


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and across-seed standard deviation of every metric of a row's seeds."""
    out: dict[str, Any] = {}
    for _, key, _ in METRICS:
        values = [lookup(r, key) for r in runs]
        out[key] = {
            "mean": float(np.mean(values)),
            "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None,
        }
    return out


def cell(summary: dict[str, Any], key: str, spec: str) -> str:
    value = summary[key]
    text = format(value["mean"], spec)
    return text if value["sd"] is None else f"{text}±{format(value['sd'], spec)}"


def print_table(rows: list[dict[str, Any]]) -> None:
    heads = ["row", "sampler", "steps", "shift", "cache", "NFE", "effNFE", "s/clip", "cpu s/clip", "dist*"]
    heads += [h for h, _, _ in METRICS]
    lines = [heads]
    for row in rows:
        s = row["settings"]
        lines.append(
            [row["name"], s["sampler"], str(s["steps"]), f"{s['shift']:g}", f"{s['cache_threshold']:g}"]
            + [f"{row['nfe']:.0f}", f"{row['nfe_effective']:.1f}", f"{row['seconds_per_clip']:.2f}"]
            + [f"{row.get('cpu_seconds_per_clip', math.nan):.2f}"]
            + ["-" if row.get("distance") is None else f"{row['distance']:.3f}"]
            + [cell(row["summary"], key, spec) for _, key, spec in METRICS]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(heads))]
    for line in lines:
        print("  ".join(text.rjust(w) for text, w in zip(line, widths)))


def acceptance(rows: dict[str, dict[str, Any]], candidate: str, reference: str) -> dict[str, Any]:
    """Does ``candidate`` equal ``reference`` within twice the across-seed noise, metric by metric?"""
    out: dict[str, Any] = {"candidate": candidate, "reference": reference, "metrics": {}}
    a, b = rows[candidate]["summary"], rows[reference]["summary"]
    for key in ACCEPTANCE:
        noise = max(v for v in (a[key]["sd"], b[key]["sd"], 0.0) if v is not None)
        diff = a[key]["mean"] - b[key]["mean"]
        out["metrics"][key] = {"difference": diff, "noise_sd": noise, "within": abs(diff) <= 2 * noise}
    out["passed"] = all(m["within"] for m in out["metrics"].values())
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    p.add_argument("--data", type=Path, default=Path("data/demo"), help="demo dataset folder")
    p.add_argument("--classifier", type=Path, default=None, help="default DATA/family_classifier")
    p.add_argument("--num-prompts", type=int, default=64)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the preset rows")
    p.add_argument("--reference", default="euler:50:1:0", help="the row presets are held to")
    p.add_argument("--reference-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--no-reference", action="store_true", help="leave the reference row out")
    p.add_argument(
        "--merge", type=Path, nargs="+", default=None, help="merge reports into --out; run nothing"
    )
    p.add_argument("--presets", nargs="*", default=list(QUALITIES), choices=QUALITIES)
    p.add_argument(
        "--noise-presets",
        nargs="*",
        default=["balanced"],
        help="presets run at every --seeds (others: the first)",
    )
    p.add_argument("--rows", nargs="*", default=[], help="extra rows SAMPLER:STEPS:SHIFT:CACHE (seed 0 only)")
    p.add_argument("--model-default", action="store_true", help="also the model's plain defaults (seed 0)")
    p.add_argument("--converged", default="heun:100:1:0", help="the converged solution's row")
    p.add_argument("--converged-prompts", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--wait-classifier", type=float, default=0.0, help="seconds to wait for --classifier")
    p.add_argument("--out", type=Path, default=RESULTS / "bench_presets.json")
    args = p.parse_args(argv)
    args.model = args.model or str(bundled_model_dir())
    args.classifier = args.classifier or args.data / "family_classifier"
    return args


def load_judge(args: argparse.Namespace) -> Any:
    """The family classifier; with ``--wait-classifier`` first wait for one being trained elsewhere."""
    deadline = time.monotonic() + args.wait_classifier
    while not (args.classifier / "model.safetensors").is_file() and time.monotonic() < deadline:
        time.sleep(15)
    return load_or_train_classifier(args.classifier, args.data)[0]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Generate every row, then score them; print the table and write the JSON report."""
    args = parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    torch.set_num_threads(args.threads)
    families = sorted({r["family"] for r in read_records(args.data, "train")})  # the judge's families
    held = held_out_prompts(args.data, families, args.num_prompts, 0)
    texts = held.captions
    pipe = FluxMusicPipeline.from_pretrained(args.model, device="cpu", dtype="float32")
    counter = Counter(pipe.transformer)
    duration = float(held.prompts[0]["seconds"])
    report: dict[str, Any] = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": args.threads},
        "model_defaults": pipe.spec.defaults,
        "prompts": len(texts),
        "rows": [],
        "complete": False,
    }
    converged = None
    if args.converged_prompts > 0:  # 0: no distance column
        converged = run_row(
            pipe, texts[: args.converged_prompts], {"duration": duration, **parse_row(args.converged)}, 0,
            args.batch_size, counter,
        )  # fmt: skip
        report["converged"] = {k: converged[k] for k in ("nfe", "seconds_per_clip", "settings")}
    plan: list[tuple[str, dict[str, Any], list[int]]] = []
    if not args.no_reference:
        plan.append((REFERENCE, parse_row(args.reference), args.reference_seeds))
    plan += [
        (
            name,
            preset_values(pipe.spec.defaults, name),
            args.seeds if name in args.noise_presets else args.seeds[:1],
        )
        for name in args.presets
    ]
    plan += [(text, parse_row(text), [args.seeds[0]]) for text in args.rows]
    if args.model_default:
        plan.append(("model default", {}, [args.seeds[0]]))
    made: list[tuple[str, list[int], list[dict[str, Any]]]] = []
    for name, settings, seeds in plan:
        outs = []
        for seed in seeds:
            out = run_row(pipe, texts, {"duration": duration, **settings}, seed, args.batch_size, counter)
            latents = out.pop("latents")
            out["distance"] = None if seed or converged is None else distance(latents, converged["latents"])
            outs.append(out)
            print(f"  {name} seed {seed}: {out['seconds_per_clip']:.2f} s/clip", flush=True)
        made.append((name, seeds, outs))
    score = Scorer.for_dataset(load_judge(args), args.data, held)
    report["fd_real_vs_real"] = score.sampling_noise(len(texts))
    for name, seeds, outs in made:
        runs = []
        for seed, out in zip(seeds, outs):
            metrics = score(out["audio"])
            metrics.pop("predicted", None)
            keys = ("nfe", "nfe_effective", "seconds_per_clip", "cpu_seconds_per_clip", "distance")
            runs.append({**metrics, **{k: out[k] for k in keys}, "seed": seed})
        report["rows"].append(
            {
                "name": name,
                "settings": outs[0]["settings"],
                "seeds": seeds,
                "nfe": float(np.mean([r["nfe"] for r in runs])),
                "nfe_effective": float(np.mean([r["nfe_effective"] for r in runs])),
                "seconds_per_clip": float(np.mean([r["seconds_per_clip"] for r in runs])),
                "cpu_seconds_per_clip": float(np.mean([r["cpu_seconds_per_clip"] for r in runs])),
                "distance": runs[0]["distance"],
                "summary": summarise(runs),
                "runs": runs,
            }
        )
    return finish(report, args.out)


def finish(report: dict[str, Any], out: Path) -> dict[str, Any]:
    """Print the table and the acceptance check; write the complete report."""
    print(
        f"\n{report['prompts']} held-out prompts; dist*: to {report['args']['converged']} from the same noise"
    )
    print_table(report["rows"])
    by_name = {row["name"]: row for row in report["rows"]}
    if "balanced" in by_name and REFERENCE in by_name:
        report["acceptance"] = acceptance(by_name, "balanced", REFERENCE)
        verdict = "PASS" if report["acceptance"]["passed"] else "FAIL"
        print(f"acceptance (balanced vs 50 Euler steps, within 2 sd of the seed noise): {verdict}")
        for key, m in report["acceptance"]["metrics"].items():
            print(f"  {key}: difference {m['difference']:+.3f}, seed sd {m['noise_sd']:.3f}")
    report["complete"] = True
    atomic_write_json(out, report)
    print(f"wrote {out}")
    return report


def merge(paths: list[Path], out: Path) -> dict[str, Any]:
    """One report from several runs' reports (the first one's header); rows of one name pool their seeds."""
    reports = [json.loads(path.read_text()) for path in paths]
    rows: dict[str, dict[str, Any]] = {}
    for row in (row for r in reports for row in r["rows"]):
        if row["name"] not in rows:
            rows[row["name"]] = row
            continue
        runs = rows[row["name"]]["runs"] + row["runs"]
        first = min(runs, key=lambda r: r["seed"])
        rows[row["name"]] = {
            **rows[row["name"]],
            "seeds": [r["seed"] for r in runs],
            **{k: float(np.mean([r[k] for r in runs])) for k in COSTS},
            "distance": first.get("distance"),
            "summary": summarise(runs),
            "runs": runs,
        }
    merged = {**reports[0], "rows": list(rows.values()), "merged_from": list(map(str, paths))}
    for key in ("converged", "fd_real_vs_real"):
        merged[key] = next((r[key] for r in reports if r.get(key)), None)
    return finish(merged, out)


if __name__ == "__main__":
    main()
