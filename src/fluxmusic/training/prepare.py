"""``fluxmusic preprocess`` as a job: the VAE and text encoder of a training config, ranks under torchrun."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fluxmusic.training.build import build_text, build_vae
from fluxmusic.training.config import TrainConfig
from fluxmusic.training.distributed import init_distributed

__all__ = ["prepare_shards"]

logger = logging.getLogger(__name__)


def prepare_shards(
    config: TrainConfig,
    manifest: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    crop: str = "random",
    batch_size: int = 8,
    shard_size: int = 256,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Encode a manifest into shards with the config's ``[vae]``, ``[text]`` and ``[data]`` settings.

    Every rank encodes its share; rank 0 then writes ``index.json``. Train on the result with
    ``data.shards = OUT_DIR`` and the same ``[text]`` section.

    Returns:
        ``{"index": index dict (rank 0; None elsewhere), "report": this rank's PreprocessReport}``.
    """
    from fluxmusic.data.preprocess import preprocess, write_index

    ctx = init_distributed(config.run.device)
    try:
        vae = build_vae(config, ctx.device)
        text = build_text(config, ctx.device, cache=bool(config.text.cache_dir))
        report = preprocess(
            manifest,
            out_dir,
            vae,
            text,
            config.data.duration,
            crop=crop,
            seed=config.run.seed,
            batch_size=batch_size,
            shard_size=shard_size,
            min_duration=config.data.min_duration,
            max_tries=config.data.max_tries,
            rank=ctx.rank,
            world_size=ctx.world_size,
            progress=progress,
        )
        ctx.barrier()
        index = None
        if ctx.is_main:
            index = write_index(
                Path(out_dir),
                vae,
                text,
                config.data.duration,
                manifest,
                {"crop": crop, "seed": config.run.seed},
            )
        ctx.barrier()
        return {"index": index, "report": report}
    finally:
        ctx.shutdown()
