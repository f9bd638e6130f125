"""``fluxmusic data``: check a manifest, build the demo dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from fluxmusic.cli.console import add_quiet, command


def _cmd_data_check(args: argparse.Namespace) -> int:
    from fluxmusic.data.check import check_manifest

    manifest = Path(args.manifest)
    report_path = Path(args.report) if args.report else manifest.with_name(f"{manifest.stem}.check.json")
    bar = None
    if not args.quiet:
        from tqdm.auto import tqdm

        bar = tqdm(desc="checking", unit="file")
    try:
        report = check_manifest(
            manifest, args.min_duration, decode=not args.headers_only, workers=args.workers,
            report_path=report_path, progress=bar.update if bar else None,
            clean_path=args.write_clean, overwrite=args.overwrite,
        )  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    for verdict in report.bad:
        print(verdict.describe())
    summary = report.summary()
    print(
        f"{summary['ok']} of {summary['total']} items ok ({summary['usable_hours']:.2f} h), "
        f"{summary['bad']} bad {summary['by_status']}; report: {report_path}"
    )
    if args.write_clean:
        print(f"wrote the {summary['ok']} good items to {args.write_clean}")
    return 1 if report.bad else 0


def add_data(sub: argparse._SubParsersAction) -> None:
    """``fluxmusic data check`` and ``fluxmusic data build-demo``."""
    p = sub.add_parser("data", help="dataset tools: check a manifest, build the demo dataset")
    data_sub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    check = command(
        data_sub,
        "check",
        _cmd_data_check,
        help="validate every item of a manifest and write a report",
        description=(
            "Open and decode every item of MANIFEST; report missing, corrupt (undecodable, truncated, "
            "NaN/Inf samples), empty, too-short and silent files (and low sample rates) with their paths. "
            "Exit status 1 when any item is bad. "
            "Example: fluxmusic data check data/train.json --write-clean data/train.clean.json"
        ),
    )
    check.add_argument("manifest", help="manifest (.json reference list, .jsonl or .csv)")
    check.add_argument(
        "--report", help="report file (JSON; default: MANIFEST_STEM.check.json beside it; replaced each run)"
    )
    check.add_argument(
        "--min-duration", type=float, default=1.0, help="shortest usable item, seconds (default 1.0)"
    )
    check.add_argument(
        "--headers-only",
        action="store_true",
        help="read headers only (fast; still finds truncated files and NaN/Inf in float files; no silence "
        "check)",
    )
    check.add_argument("--workers", type=int, default=4, help="threads (default 4)")
    check.add_argument(
        "--write-clean", metavar="PATH", help="also write a manifest of the good items (never onto MANIFEST)"
    )
    check.add_argument("--overwrite", action="store_true", help="let --write-clean replace an existing file")
    add_quiet(check)
    demo = command(
        data_sub,
        "build-demo",
        run_build_demo,
        help="render the demo text-to-music dataset (music21 corpus + FluidSynth)",
        description="Build the demo dataset (see docs/demo-dataset.md).",
    )
    add_build_demo_arguments(demo)
    p.set_defaults(handler=lambda _args: (p.print_help(), 2)[1])


def _csv(choices: tuple[str, ...]) -> type:
    def parse(text: str) -> tuple[str, ...]:
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        bad = [v for v in values if v not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {', '.join(choices)}")
        return values

    return parse  # type: ignore[return-value]


def add_build_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``build-demo`` options to a (sub)parser."""
    from fluxmusic.data.demo.captions import CAPTION_STYLES
    from fluxmusic.data.demo.catalogue import COLLECTIONS
    from fluxmusic.data.demo.config import DEFAULT_SOUNDFONT, DemoDatasetConfig
    from fluxmusic.data.demo.instruments import FAMILIES

    d = DemoDatasetConfig(out_dir=Path("."))
    parser.add_argument(
        "out_dir", type=Path, help="output folder (resumes a build made with the same options)"
    )
    parser.add_argument("--n-clips", type=int, default=d.n_clips, help="clips to build (default %(default)s)")
    parser.add_argument("--seed", type=int, default=d.seed, help="master seed (default %(default)s)")
    parser.add_argument("--workers", type=int, default=d.workers, help="processes (default %(default)s)")
    parser.add_argument("--sample-rate", type=int, default=d.sample_rate, help="Hz (default %(default)s)")
    parser.add_argument("--clip-seconds", type=float, default=d.clip_seconds, help="default %(default)s")
    parser.add_argument("--bpm-min", type=int, default=d.bpm_range[0], help="default %(default)s")
    parser.add_argument("--bpm-max", type=int, default=d.bpm_range[1], help="default %(default)s")
    parser.add_argument(
        "--test-fraction", type=float, default=d.test_fraction, help="of pieces (default %(default)s)"
    )
    parser.add_argument("--clips-per-piece", type=int, default=d.clips_per_piece, help="default %(default)s")
    parser.add_argument("--collections", type=_csv(tuple(COLLECTIONS)), default=d.collections,
                        help="comma-separated subset of: " + ", ".join(COLLECTIONS))  # fmt: skip
    parser.add_argument("--families", type=_csv(FAMILIES), default=d.families,
                        help="comma-separated subset of: " + ", ".join(FAMILIES))  # fmt: skip
    parser.add_argument("--caption-styles", type=_csv(CAPTION_STYLES), default=d.caption_styles,
                        help="comma-separated subset of: " + ", ".join(CAPTION_STYLES))  # fmt: skip
    parser.add_argument("--ensemble-prob", type=float, default=d.ensemble_prob, help="default %(default)s")
    parser.add_argument(
        "--caption-drop-prob", type=float, default=d.caption_drop_prob, help="default %(default)s"
    )
    parser.add_argument("--soundfont", type=Path, default=DEFAULT_SOUNDFONT, help="default %(default)s")
    parser.add_argument(
        "--fluidsynth", default=d.fluidsynth, help="FluidSynth executable (default %(default)s)"
    )
    parser.add_argument("--keep-midi", action="store_true", help="also keep the MIDI files under midi/")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run_build_demo(args: argparse.Namespace) -> int:
    """Build the dataset described by parsed ``build-demo`` arguments and print its report; returns 0."""
    from fluxmusic.data.demo.builder import build_demo_dataset
    from fluxmusic.data.demo.config import DemoDatasetConfig
    from fluxmusic.data.demo.stats import format_report

    config = DemoDatasetConfig(
        out_dir=args.out_dir,
        n_clips=args.n_clips,
        seed=args.seed,
        sample_rate=args.sample_rate,
        clip_seconds=args.clip_seconds,
        bpm_range=(args.bpm_min, args.bpm_max),
        test_fraction=args.test_fraction,
        clips_per_piece=args.clips_per_piece,
        collections=args.collections,
        families=args.families,
        caption_styles=args.caption_styles,
        ensemble_prob=args.ensemble_prob,
        caption_drop_prob=args.caption_drop_prob,
        workers=args.workers,
        soundfont=args.soundfont,
        fluidsynth=args.fluidsynth,
        keep_midi=args.keep_midi,
    )
    report = build_demo_dataset(config, progress=not args.no_progress)
    print(format_report(report))
    return 0
