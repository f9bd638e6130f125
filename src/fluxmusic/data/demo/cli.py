"""``fluxmusic data build-demo``: argparse glue around ``build_demo_dataset`` (no logic of its own)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from fluxmusic.data.demo.builder import build_demo_dataset
from fluxmusic.data.demo.captions import CAPTION_STYLES
from fluxmusic.data.demo.catalogue import COLLECTIONS
from fluxmusic.data.demo.config import DEFAULT_SOUNDFONT, DemoDatasetConfig
from fluxmusic.data.demo.instruments import FAMILIES
from fluxmusic.data.demo.stats import format_report


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
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
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


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m fluxmusic.data.demo OUT_DIR [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m fluxmusic.data.demo",
        description="Render a text-to-music dataset from the music21 corpus with FluidSynth.",
    )
    add_build_demo_arguments(parser)
    return run_build_demo(parser.parse_args(argv))
