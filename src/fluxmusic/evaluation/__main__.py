"""Command line of the evaluation tools: ``python -m fluxmusic.evaluation SUBCOMMAND [options]``.

Subcommands (``python -m fluxmusic.evaluation SUBCOMMAND --help`` lists each one's options):

- ``tempo``: requested (metadata) vs estimated tempo on a demo dataset's real renders, overall and per
  group (:mod:`fluxmusic.evaluation.tempo`);
- ``judge``: train and save the family classifier on the ``train`` split, print its held-out report
  (:mod:`fluxmusic.evaluation.judge`);
- ``reconstruction``: vocoder and VAE round-trip metrics on the same held-out clips
  (:mod:`fluxmusic.evaluation.reconstruction`).

Examples::

    python -m fluxmusic.evaluation tempo --data /work/data/demo --split test --by collection --out t.json
    python -m fluxmusic.evaluation judge --data /work/data/demo --out /work/data/demo/family_classifier
    python -m fluxmusic.evaluation reconstruction --data /work/data/demo --vae RUN/final \
        --vocoder RUN/final --griffin-lim 32 64 --clips 64 --out eval.json

Bad input (a missing dataset folder, an empty split) ends with a one-line ``error:`` message and exit
status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path

# ----------------------------------------------------------------------------------------------- tempo


def _add_tempo(subparsers: argparse._SubParsersAction) -> None:
    text = "Tempo estimation on real demo renders: requested vs estimated BPM, overall and per group"
    parser = subparsers.add_parser("tempo", help=text, description=text)
    parser.add_argument("--data", required=True, help="demo dataset folder")
    parser.add_argument("--split", default=None, choices=("train", "test"), help="default: both")
    parser.add_argument("--limit", type=int, default=None, help="first N clips (by id)")
    parser.add_argument("--by", default="time_signature", help="metadata field to break results down by")
    parser.add_argument("--out", default=None, help="write the results as JSON")
    parser.set_defaults(run=_run_tempo)


def _run_tempo(args: argparse.Namespace) -> None:
    import numpy as np

    from fluxmusic.evaluation.demo_records import load_waveforms, read_records
    from fluxmusic.evaluation.tempo import estimate_tempi, tempo_agreement

    records = read_records(args.data, args.split, families=False)[: args.limit]
    if not records:
        raise ValueError(f"{args.data}: no clips (split {args.split or 'train+test'})")
    estimates = np.concatenate(
        [estimate_tempi(load_waveforms(args.data, records[i : i + 64])) for i in range(0, len(records), 64)]
    )
    requested = np.array([r["bpm"] for r in records], dtype=np.float64)
    result = {"all": tempo_agreement(requested, estimates).to_dict(), args.by: {}}
    groups = sorted({str(r.get(args.by)) for r in records})
    for group in groups:
        mask = np.array([str(r.get(args.by)) == group for r in records])
        result[args.by][group] = tempo_agreement(requested[mask], estimates[mask]).to_dict()
    print(f"{'group':<24}{'n':>6}{'log_corr':>10}{'oct_corr':>10}{'acc1':>7}{'acc2':>7}{'median':>8}")
    for name, row in [("all", result["all"]), *result[args.by].items()]:
        cells = [row[k] for k in ("log_corr", "octave_corr", "acc1", "acc2", "median_ratio")]
        text = "".join(
            f"{'-' if v is None else format(v, '.3f'):>{w}}" for v, w in zip(cells, (10, 10, 7, 7, 8))
        )
        print(f"{name:<24}{row['count']:>6}{text}")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(
                {
                    **result,
                    "ids": [r["id"] for r in records],
                    "estimated": [v if math.isfinite(v) else None for v in estimates.tolist()],
                },
                handle,
            )


# ----------------------------------------------------------------------------------------------- judge


def _add_judge(subparsers: argparse._SubParsersAction) -> None:
    from fluxmusic.evaluation.family_training import TrainSettings

    text = "Train the demo family classifier on the train split, save it, print its held-out report"
    parser = subparsers.add_parser("judge", help=text, description=text)
    parser.add_argument("--data", type=Path, required=True, help="demo dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="classifier folder to write")
    parser.add_argument("--epochs", type=int, default=TrainSettings.epochs)
    parser.add_argument("--batch-size", type=int, default=TrainSettings.batch_size)
    parser.add_argument("--lr", type=float, default=TrainSettings.lr)
    parser.add_argument(
        "--blur", type=float, default=TrainSettings.blur, help="blur augmentation probability"
    )
    parser.add_argument("--seed", type=int, default=TrainSettings.seed)
    parser.add_argument("--max-train", type=int, default=None, help="first N training clips only")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.set_defaults(run=_run_judge)


def _run_judge(args: argparse.Namespace) -> None:
    import torch

    from fluxmusic.evaluation.family_training import TrainSettings
    from fluxmusic.evaluation.judge import format_report, train_demo_classifier

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    settings = TrainSettings(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, blur=args.blur, seed=args.seed
    )
    _, report = train_demo_classifier(args.data, args.out, settings, max_train=args.max_train)
    print(format_report(report))
    print(f"saved to {args.out}")


# -------------------------------------------------------------------------------------- reconstruction


def _add_reconstruction(subparsers: argparse._SubParsersAction) -> None:
    text = (
        "Reconstruction metrics for vocoders and the mel VAE on the same held-out clips "
        "(prints one JSON line per system, optionally writes a JSON table)"
    )
    parser = subparsers.add_parser("reconstruction", help=text, description=text)
    parser.add_argument("--data", required=True, help="dataset root with test.json (or records/)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--clips", type=int, default=64, help="first N clips of the split")
    parser.add_argument("--clip-seconds", type=float, default=5.12)
    parser.add_argument("--vae", help="AudioVAE folder to measure")
    parser.add_argument("--vocoder", action="append", default=[], help="HifiGanVocoder folder (repeatable)")
    parser.add_argument("--griffin-lim", type=int, nargs="*", default=[32, 64], help="n_iter values")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="write the results as JSON here")
    parser.set_defaults(run=_run_reconstruction)


def _run_reconstruction(args: argparse.Namespace) -> None:
    from dataclasses import asdict

    import torch

    from fluxmusic.audio import AudioVAE, GriffinLimVocoder, HifiGanVocoder
    from fluxmusic.evaluation.reconstruction import evaluate_vocoder, vae_round_trip
    from fluxmusic.training.component_data import ClipBank, list_clips

    if not Path(args.data).is_dir():
        raise FileNotFoundError(f"{args.data}: no such dataset folder")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    paths = list_clips(args.data, args.split)[: args.clips]
    bank = ClipBank.load(args.data, paths, args.clip_seconds)
    assert bank.waveforms is not None
    vocoders = {f"griffin_lim_{n}": GriffinLimVocoder(n_iter=n) for n in args.griffin_lim}
    for folder in args.vocoder:
        vocoders[f"hifigan:{folder}"] = HifiGanVocoder.from_pretrained(folder, subfolder=None).eval()
    results: dict[str, dict[str, float]] = {}
    for name, vocoder in vocoders.items():
        results[name] = asdict(evaluate_vocoder(vocoder, bank.waveforms, bank.mels))
        print(name, json.dumps(results[name]), flush=True)
    if args.vae:
        vae = AudioVAE.from_pretrained(args.vae, subfolder=None).eval()
        recon = vae_round_trip(vae, bank.mels)
        results["vae"] = {"mel_l1": float((recon - bank.mels).abs().mean())}
        print("vae", json.dumps(results["vae"]), flush=True)
        for name, vocoder in vocoders.items():
            results[f"vae+{name}"] = asdict(evaluate_vocoder(vocoder, bank.waveforms, recon))
            print(f"vae+{name}", json.dumps(results[f"vae+{name}"]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"clips": paths, "results": results}, indent=2) + "\n")


# ------------------------------------------------------------------------------------------ dispatcher


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m fluxmusic.evaluation`` parser with its three subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m fluxmusic.evaluation",
        description="Evaluation tools: tempo agreement, the family-classifier judge, reconstruction metrics.",
        epilog="Run 'python -m fluxmusic.evaluation SUBCOMMAND --help' for a subcommand's options.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    _add_tempo(subparsers)
    _add_judge(subparsers)
    _add_reconstruction(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the subcommand.

    Raises:
        SystemExit: 0 after ``--help``; 2 on bad options or bad input (missing dataset folder, no clips),
            after a one-line ``error:`` message on stderr.
    """
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
