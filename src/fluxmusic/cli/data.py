"""``fluxmusic data``: check a manifest, build the demo dataset."""

from __future__ import annotations

import argparse


def _cmd_data_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fluxmusic.data.check import check_manifest
    from fluxmusic.data.manifest import write_manifest

    manifest = Path(args.manifest)
    report_path = Path(args.report) if args.report else manifest.with_name(f"{manifest.stem}.check.json")
    bar = None
    if not args.quiet:
        from tqdm.auto import tqdm

        bar = tqdm(desc="checking", unit="file")
    report = check_manifest(
        manifest, args.min_duration, decode=not args.headers_only, workers=args.workers,
        report_path=report_path, progress=bar.update if bar else None,
    )  # fmt: skip
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
        from fluxmusic.data.manifest import read_manifest

        good = set(report.good_indices)
        path = write_manifest([i for i in read_manifest(manifest) if i.index in good], args.write_clean)
        print(f"wrote the {len(good)} good items to {path}")
    return 1 if report.bad else 0


def add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="dataset tools: check a manifest, build the demo dataset")
    data_sub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    check = data_sub.add_parser(
        "check",
        help="validate every item of a manifest and write a report",
        description=(
            "Open and decode every item of MANIFEST; report missing, corrupt, empty, too-short and silent "
            "files (and low sample rates) with their paths. Exit status 1 when any item is bad. "
            "Example: fluxmusic data check data/train.json --write-clean data/train.clean.json"
        ),
    )
    check.add_argument("manifest", help="manifest (.json reference list, .jsonl or .csv)")
    check.add_argument("--report", help="report file (JSON; default: MANIFEST_STEM.check.json beside it)")
    check.add_argument(
        "--min-duration", type=float, default=1.0, help="shortest usable item, seconds (default 1.0)"
    )
    check.add_argument(
        "--headers-only", action="store_true", help="read headers only (fast; no silence check)"
    )
    check.add_argument("--workers", type=int, default=4, help="threads (default 4)")
    check.add_argument("--write-clean", metavar="PATH", help="also write a manifest of the good items")
    check.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    check.set_defaults(handler=_cmd_data_check)
    from fluxmusic.data.demo import add_build_demo_arguments, run_build_demo

    demo = data_sub.add_parser(
        "build-demo",
        help="render the demo text-to-music dataset (music21 corpus + FluidSynth)",
        description="Build the demo dataset (see docs/demo-dataset.md).",
    )
    add_build_demo_arguments(demo)
    demo.set_defaults(handler=run_build_demo)
    p.set_defaults(handler=lambda _args: (p.print_help(), 2)[1])
