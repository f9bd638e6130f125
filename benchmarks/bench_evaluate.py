"""Sanity table of ``fluxmusic evaluate``: real < generated < shuffled-prompt FAD, on the bundled model.

Everything goes through the repository's own commands (run as ``python -m fluxmusic ...``):

1. held-out prompts of the demo dataset's test split (balanced over families, captions that state a BPM;
   :func:`fluxmusic.evaluation.benchmark.held_out_prompts`) and the other test clips as the reference,
   written as manifests;
2. ``fluxmusic generate --prompt-file`` with the prompts (``generated``) and with each prompt's characters
   shuffled (``shuffled``), one clip per prompt, seeds ``--seed + i``;
3. the family judge: ``fluxmusic evaluate judge`` (unless ``--classifier`` names a trained one);
4. ``fluxmusic evaluate SET --reference reference.jsonl --metrics fad,fad-inf,...`` for the prompts' own
   renders (``real``), the generations and the shuffled-prompt generations, with the family embedding and
   with the basic-pitch note statistics.

Prints the table and writes ``benchmarks/results/bench_evaluate.json``.

    python benchmarks/bench_evaluate.py --data data/demo [--num-prompts 64] [--classifier DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
SETS = ("real", "generated", "shuffled")
EMBEDDINGS = {"family": "fad,fad-inf,family,tempo", "basic-pitch": "fad,fad-inf"}


def fluxmusic(*argv: str) -> None:
    """Run one ``fluxmusic`` command of this checkout; stop on failure."""
    command = [sys.executable, "-m", "fluxmusic", *argv]
    print("$", " ".join(command[2:]), flush=True)
    subprocess.run(command, check=True)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def prepare(args: argparse.Namespace, work: Path, families: tuple[str, ...]) -> dict[str, Any]:
    """Manifests of the prompt clips and the reference, the prompt files, the requests."""
    from fluxmusic.evaluation.benchmark import held_out_prompts, scramble

    data = Path(args.data).resolve()
    held = held_out_prompts(data, families, args.num_prompts, args.seed)

    def item(r: dict[str, Any]) -> dict[str, Any]:
        return {"wav": str(data / r["wav"]), "label": r["caption"], "family": r["family"], "bpm": r["bpm"]}

    write_jsonl(work / "real.jsonl", [item(r) for r in held.prompts])
    write_jsonl(work / "reference.jsonl", [item(r) for r in held.reference])
    requests = [{"prompt": r["caption"], "family": r["family"], "bpm": r["bpm"]} for r in held.prompts]
    write_jsonl(work / "requests.jsonl", requests)
    shuffled = [p.lstrip("#").strip() or "x" for p in scramble(held.captions, "chars", args.seed)]
    (work / "prompts.txt").write_text("\n".join(held.captions) + "\n")
    (work / "shuffled.txt").write_text("\n".join(shuffled) + "\n")
    return {"prompts": len(held.prompts), "reference": len(held.reference), "captions": held.captions}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="data/demo", help="demo dataset folder")
    p.add_argument("--model", default="bundled")
    p.add_argument(
        "--classifier", help="family-classifier folder (default: DATA/family_classifier, else trained)"
    )
    p.add_argument("--judge-epochs", type=int, default=None, help="epochs when the judge is trained here")
    p.add_argument("--num-prompts", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="judge training threads")
    p.add_argument("--work", default="/tmp/fluxmusic_bench_evaluate", help="scratch folder")
    p.add_argument("--out", default=str(RESULTS / "bench_evaluate.json"))
    args = p.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    families = tuple(f for f in json.loads((Path(args.data) / "config.json").read_text())["families"])
    setup = prepare(args, work, families)

    timings = {}
    for name, prompts in (("generated", "prompts.txt"), ("shuffled", "shuffled.txt")):
        folder = work / name
        if not any(folder.glob("*.wav")):
            t0 = time.perf_counter()
            generate = ["--prompt-file", str(work / prompts), "-o", str(folder), "--model", args.model]
            fluxmusic("generate", *generate, "--seed", str(args.seed), "-q")
            timings[name] = time.perf_counter() - t0

    classifier = Path(args.classifier) if args.classifier else Path(args.data) / "family_classifier"
    if not (classifier / "model.safetensors").is_file():
        classifier = Path(args.classifier) if args.classifier else work / "family_classifier"
        if not (classifier / "model.safetensors").is_file():
            epochs = ["--epochs", str(args.judge_epochs)] if args.judge_epochs else []
            judge = ["--data", args.data, "--out", str(classifier), "--threads", str(args.threads), *epochs]
            fluxmusic("evaluate", "judge", *judge)

    results: dict[str, dict[str, Any]] = {}
    for embedding, metrics in EMBEDDINGS.items():
        for name in SETS:
            source = work / "real.jsonl" if name == "real" else work / name
            out = work / f"{embedding}-{name}.json"
            extra = [] if name == "real" else ["--prompts", str(work / "requests.jsonl")]
            sets = [str(source), "--reference", str(work / "reference.jsonl")]
            options = ["--embedding", embedding, "--classifier", str(classifier), "--metrics", metrics]
            fluxmusic(
                "evaluate",
                *sets,
                *options,
                "--json",
                str(out),
                "--cache-dir",
                str(work / "cache"),
                "-q",
                *extra,
            )
            results[f"{embedding}/{name}"] = json.loads(out.read_text())

    print()
    print(table(results))
    report = {
        "args": vars(args),
        "classifier": str(classifier),
        "prompts": setup["prompts"],
        "reference_clips": setup["reference"],
        "captions": setup["captions"],
        "results": results,
        "generation_seconds": timings,
        "seconds": time.perf_counter() - start,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    from fluxmusic.files import atomic_write_text

    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    return report


def table(results: dict[str, dict[str, Any]]) -> str:
    """real / generated / shuffled rows; FAD and FAD-inf (+- its error) per embedding, family, tempo."""
    head = f"{'set':<11}{'FAD fam':>10}{'FADinf fam':>19}{'FAD notes':>11}{'FADinf notes':>17}"
    lines = [head + f"{'family':>8}{'tempo':>7}"]
    for name in SETS:
        fam, notes = results[f"family/{name}"]["metrics"], results[f"basic-pitch/{name}"]["metrics"]
        lines.append(
            f"{name:<11}{fam['fad']:>10.2f}{fam['fad-inf']:>11.2f} +-{fam['fad-inf-err']:>6.2f}"
            f"{notes['fad']:>11.3f}{notes['fad-inf']:>9.3f} +-{notes['fad-inf-err']:>6.3f}"
            f"{fam.get('family', float('nan')):>8.3f}{fam.get('tempo', float('nan')):>7.3f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
