"""Train (or continue) the bundled VAE and vocoder, then measure them against Griffin-Lim.

Every stage resumes from its newest checkpoint, so running this script again after an interruption picks
up where it stopped; finished stages (``RUN/final`` present) are skipped.

    OMP_NUM_THREADS=1 python scripts/train_bundled_components.py --data /work/data/demo --runs /work/runs \
        [--only vae|vocoder|eval] [--max-minutes 60]

Outputs: ``RUNS/bundled_vae/final`` (AudioVAE folder), ``RUNS/bundled_vocoder/final`` (HifiGanVocoder
folder), ``RUNS/bundled_eval/reconstruction.json`` (the comparison table on held-out clips).
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="demo dataset root")
    parser.add_argument("--runs", default="runs", help="folder holding bundled_vae/, bundled_vocoder/")
    parser.add_argument("--only", choices=("vae", "vocoder", "eval"), help="run one stage")
    parser.add_argument("--max-minutes", type=float, default=0.0, help="per training stage (0: no limit)")
    parser.add_argument("--eval-clips", type=int, default=64)
    args = parser.parse_args()
    from fluxmusic.evaluation.__main__ import main as evaluation_main
    from fluxmusic.training import autoencoder, vocoder_gan

    runs = Path(args.runs)
    stages = [args.only] if args.only else ["vae", "vocoder", "eval"]
    common = ["--data", args.data, "--resume", "--max-minutes", str(args.max_minutes)]
    if "vae" in stages and not (runs / "bundled_vae" / "final").is_dir():
        config = str(REPO / "configs" / "bundled" / "vae.toml")
        autoencoder.main(["--config", config, "--out", str(runs / "bundled_vae"), *common])
    if "vocoder" in stages and not (runs / "bundled_vocoder" / "final").is_dir():
        config = str(REPO / "configs" / "bundled" / "vocoder.toml")
        vocoder_gan.main(["--config", config, "--out", str(runs / "bundled_vocoder"), *common])
    if "eval" in stages:
        argv = ["--data", args.data, "--clips", str(args.eval_clips), "--griffin-lim", "32", "64"]
        if (runs / "bundled_vocoder" / "final").is_dir():
            argv += ["--vocoder", str(runs / "bundled_vocoder" / "final")]
        if (runs / "bundled_vae" / "final").is_dir():
            argv += ["--vae", str(runs / "bundled_vae" / "final")]
        (runs / "bundled_eval").mkdir(parents=True, exist_ok=True)
        out = str(runs / "bundled_eval" / "reconstruction.json")
        evaluation_main(["reconstruction", *argv, "--out", out])


if __name__ == "__main__":
    main()
