"""``fluxmusic evaluate``: the evaluation tools (argparse glue around :mod:`fluxmusic.evaluation`).

Tools (``fluxmusic evaluate TOOL --help`` lists each one's options):

- ``tempo``: requested (metadata) vs estimated tempo on a demo dataset's real renders, overall and per
  group (:func:`fluxmusic.evaluation.tempo_report.tempo_report`);
- ``judge``: train and save the family classifier on the ``train`` split, print its held-out report
  (:func:`fluxmusic.evaluation.judge.train_demo_classifier`);
- ``reconstruction``: vocoder and VAE round-trip metrics on the same held-out clips
  (:func:`fluxmusic.evaluation.reconstruction.reconstruction_report`).

Examples::

    fluxmusic evaluate tempo --data /work/data/demo --split test --by collection --out t.json
    fluxmusic evaluate judge --data /work/data/demo --out /work/data/demo/family_classifier
    fluxmusic evaluate reconstruction --data /work/data/demo --vae RUN/final --vocoder RUN/final \
        --griffin-lim 32 64 --clips 64 --out eval.json

Beside the tools, ``fluxmusic evaluate GENERATED --reference REF [--metrics fad,fad-inf,...]
[--embedding clap-music|clap-general|encodec|family|basic-pitch] [--prompts FILE] [--json OUT]`` measures
a set of generated clips against a reference set (:func:`fluxmusic.evaluation.compare.evaluate_sets`):
the ``evaluate`` subparsers action (:class:`_ToolsOrSets`) sends a first word that is not a tool name
(:data:`TOOLS`) to that form, so ``fluxmusic evaluate tempo ...`` keeps meaning the tool and a folder
that happens to be named like a tool is written ``./tempo``.

    fluxmusic evaluate outputs/ --reference real/ --embedding basic-pitch --metrics fad,fad-inf --json m.json

Bad input (a missing folder or dataset, an empty set, unreadable files, unknown names, sets too small for
a metric, missing weights offline) ends with a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

TOOLS = ("tempo", "judge", "reconstruction")
"""The first words ``fluxmusic evaluate`` reserves for its tools."""

METRIC_NAMES = ("fad", "fad-inf", "fad-clips", "kl", "clap", "family", "tempo")
"""``--metrics`` words (``fluxmusic.evaluation.set_metrics.METRICS``, listed so help imports no torch)."""

EMBEDDING_NAMES = ("clap-music", "clap-general", "encodec", "family", "basic-pitch")
"""``--embedding`` words (``fluxmusic.evaluation.embedders.EMBEDDINGS``)."""


def _show_progress() -> None:
    """The tools' progress lines (INFO) are shown, as training's are."""
    for name in ("fluxmusic.evaluation", "fluxmusic.data"):
        logging.getLogger(name).setLevel(logging.INFO)


def _write_json(path: str | Path, value: object, indent: int | None = None) -> None:
    from fluxmusic.files import atomic_write_text

    atomic_write_text(path, json.dumps(value, indent=indent) + "\n")


def _cmd_tempo(args: argparse.Namespace) -> int:
    from fluxmusic.evaluation.tempo_report import format_tempo_table, tempo_report

    report = tempo_report(args.data, args.split, args.limit, args.by)
    print(format_tempo_table(report, args.by))
    if args.out:
        _write_json(args.out, report)
    return 0


def _cmd_judge(args: argparse.Namespace) -> int:
    import torch

    from fluxmusic.evaluation.family_training import TrainSettings
    from fluxmusic.evaluation.judge import format_report, train_demo_classifier

    _show_progress()
    torch.set_num_threads(args.threads)
    settings = TrainSettings(**{k: getattr(args, k) for k in _JUDGE_SETTINGS if hasattr(args, k)})
    _, report = train_demo_classifier(args.data, args.out, settings, max_train=args.max_train)
    print(format_report(report))
    print(f"saved to {args.out}")
    return 0


def _cmd_reconstruction(args: argparse.Namespace) -> int:
    import torch

    from fluxmusic.evaluation.reconstruction import reconstruction_report

    _show_progress()
    torch.set_num_threads(args.threads)
    report = reconstruction_report(
        args.data, args.split, args.clips, args.clip_seconds, args.vae, args.vocoder, args.griffin_lim,
        on_result=lambda name, metrics: print(name, json.dumps(metrics), flush=True),
    )  # fmt: skip
    if args.out:
        _write_json(args.out, report, indent=2)
    return 0


def _add_tempo(tools: argparse._SubParsersAction) -> None:
    text = "Tempo estimation on real demo renders: requested vs estimated BPM, overall and per group"
    p = tools.add_parser("tempo", help=text, description=text)
    p.add_argument("--data", required=True, help="demo dataset folder")
    p.add_argument("--split", default=None, choices=("train", "test"), help="default: both")
    p.add_argument("--limit", type=int, default=None, help="first N clips (by id)")
    p.add_argument("--by", default="time_signature", help="metadata field to break results down by")
    p.add_argument("--out", default=None, help="write the results as JSON")
    p.set_defaults(handler=_cmd_tempo)


_JUDGE_SETTINGS = ("epochs", "batch_size", "lr", "blur", "seed")
"""``TrainSettings`` fields the ``judge`` tool sets; unset ones keep their defaults."""


def _add_judge(tools: argparse._SubParsersAction) -> None:
    text = "Train the demo family classifier on the train split, save it, print its held-out report"
    more = "Unset options keep the values of fluxmusic.evaluation.TrainSettings."
    p = tools.add_parser("judge", help=text, description=f"{text}. {more}")
    p.add_argument("--data", type=Path, required=True, help="demo dataset folder")
    p.add_argument("--out", type=Path, required=True, help="classifier folder to write")
    unset = argparse.SUPPRESS  # the defaults are TrainSettings' own (importing it here would load torch)
    p.add_argument("--epochs", type=int, default=unset, help="training epochs")
    p.add_argument("--batch-size", type=int, default=unset, help="clips per optimiser step")
    p.add_argument("--lr", type=float, default=unset, help="AdamW learning rate")
    p.add_argument("--blur", type=float, default=unset, help="blur augmentation probability")
    p.add_argument("--seed", type=int, default=unset, help="seed of the weights, shuffling and augmentation")
    p.add_argument("--max-train", type=int, default=None, help="first N training clips only")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.set_defaults(handler=_cmd_judge)


def _add_reconstruction(tools: argparse._SubParsersAction) -> None:
    text = (
        "Reconstruction metrics for vocoders and the mel VAE on the same held-out clips "
        "(prints one JSON line per system, optionally writes a JSON table)"
    )
    p = tools.add_parser("reconstruction", help=text, description=text)
    p.add_argument("--data", required=True, help="dataset root with test.json (or records/)")
    p.add_argument("--split", default="test")
    p.add_argument("--clips", type=int, default=64, help="first N clips of the split")
    p.add_argument("--clip-seconds", type=float, default=5.12)
    p.add_argument("--vae", help="AudioVAE folder to measure")
    p.add_argument("--vocoder", action="append", default=[], help="HifiGanVocoder folder (repeatable)")
    p.add_argument("--griffin-lim", type=int, nargs="*", default=[32, 64], help="n_iter values")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="write the results as JSON here")
    p.set_defaults(handler=_cmd_reconstruction)


def _cmd_sets(args: argparse.Namespace) -> int:
    import torch

    from fluxmusic.evaluation.compare import evaluate_sets, format_result
    from fluxmusic.evaluation.embedding_cache import default_cache_dir

    torch.set_num_threads(args.threads)

    def progress(label: str):  # noqa: ANN202 - a tqdm wrapper
        from tqdm import tqdm

        return lambda items: tqdm(items, desc=label, unit="clip", leave=False, disable=args.quiet)

    cache = None if args.no_cache else (args.cache_dir or default_cache_dir())
    result = evaluate_sets(
        args.generated, args.reference, args.metrics, args.embedding, prompts=args.prompts,
        classifier=args.classifier, checkpoint=args.checkpoint, clap_checkpoint=args.clap_checkpoint,
        cache_dir=cache, skip_unreadable=args.skip_unreadable, device=args.device, progress=progress,
    )  # fmt: skip
    print(format_result(result))
    if args.json:
        _write_json(args.json, result.to_dict(), indent=2)
    return 0


def _sets_parser() -> argparse.ArgumentParser:
    text = "Metrics of a set of generated clips against a reference set (folders of audio or manifests)"
    p = argparse.ArgumentParser(prog="fluxmusic evaluate", description=text, usage=_SETS_USAGE.strip())
    p.add_argument("generated", help="folder of generated audio (sidecars give prompts) or a manifest")
    p.add_argument("--reference", required=True, help="folder of reference audio or a manifest")
    p.add_argument(
        "--metrics", default="fad", help=f"comma-separated: {','.join(METRIC_NAMES)} (default: fad)"
    )
    p.add_argument(
        "--embedding", default="clap-music",
        help=f"embedding of the FAD metrics: {'|'.join(EMBEDDING_NAMES)} (default: clap-music)",
    )  # fmt: skip
    p.add_argument("--prompts", help="prompts of the generated clips: .txt (one per line) or .json/.jsonl")
    p.add_argument("--json", help="write the result as JSON here")
    p.add_argument("--classifier", help="family-classifier folder (family embedding, kl, family)")
    p.add_argument("--checkpoint", help="another hub id or folder for the embedding backend")
    p.add_argument("--clap-checkpoint", default="laion/larger_clap_music", help="CLAP of the clap score")
    p.add_argument("--cache-dir", help="embedding cache (default ~/.cache/fluxmusic/embeddings)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument("--skip-unreadable", action="store_true", help="leave out undecodable clips (counted)")
    p.add_argument("--device", default=None, help="device of the hub models (default cpu)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=_cmd_sets, evaluate_command=None)
    return p


_SETS_USAGE = """
fluxmusic evaluate GENERATED --reference REF [--metrics fad,fad-inf,kl,clap,...]
                          [--embedding clap-music|clap-general|encodec|family|basic-pitch]
                          [--prompts FILE] [--json OUT] [options]
"""


class _AnyWord(Mapping):
    """The subparsers' choices: iterates the tools, but accepts any word (a GENERATED folder)."""

    def __init__(self, tools: dict[str, argparse.ArgumentParser]) -> None:
        self.tools = tools

    def __getitem__(self, key: str) -> argparse.ArgumentParser:
        return self.tools[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tools)

    def __len__(self) -> int:
        return len(self.tools)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)


class _ToolsOrSets(argparse._SubParsersAction):
    """A tool name runs that tool; any other first word is GENERATED of the sets form."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choices = _AnyWord(self._name_parser_map)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:  # fmt: skip
        if values[0] in self._name_parser_map:
            return super().__call__(parser, namespace, values, option_string)
        sub, extras = _sets_parser().parse_known_args(values, None)
        for key, value in vars(sub).items():
            setattr(namespace, key, value)
        if extras:
            vars(namespace).setdefault(argparse._UNRECOGNIZED_ARGS_ATTR, []).extend(extras)
        return None


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    """``fluxmusic evaluate TOOL [options]`` with the tools of :data:`TOOLS`, and the sets form."""
    p = sub.add_parser(
        "evaluate",
        help="metrics of generated sets (FAD, FAD-inf, KL, CLAP score, ...) and evaluation tools",
        description="Metrics of a set of generated clips against a reference set, and the evaluation tools "
        "(tempo agreement, the family-classifier judge, reconstruction metrics).",
        usage=_SETS_USAGE.strip() + "\n       fluxmusic evaluate TOOL [options]",
        epilog="Run 'fluxmusic evaluate TOOL --help' for a tool's options, "
        "'fluxmusic evaluate GENERATED --help' for the sets form's "
        f"(metrics: {','.join(METRIC_NAMES)}; embeddings: {'|'.join(EMBEDDING_NAMES)}).",
    )
    tools = p.add_subparsers(dest="evaluate_command", metavar="TOOL", action=_ToolsOrSets)
    _add_tempo(tools)
    _add_judge(tools)
    _add_reconstruction(tools)
    assert tuple(tools.choices) == TOOLS
    p.set_defaults(handler=lambda _args: (p.print_help(), 2)[1])
