"""The MusicFlux side of step caching: the probe, and running the blocks only for the rows that need it.

:class:`fluxmusic.flow.cache.StepCache` decides per row from a probe; here the probe is the first
double block's modulated audio input ``(1 + scale) LayerNorm(img) + shift`` (TeaCache's choice for
Flux: it moves with the state through ``img`` and with the time through the modulation), and the cached
quantity is the residual of all blocks on the audio tokens (their output minus ``img``), to which the
final layer is applied afresh with the current ``vec``. ``MusicFlux.forward(..., cache=...)`` calls
:func:`cached_blocks`; without a cache it runs the blocks exactly as before.
"""

from __future__ import annotations

from torch import Tensor, nn

from fluxmusic.flow.cache import StepCache
from fluxmusic.model.layers import modulate

__all__ = ["cache_probe", "cached_blocks"]


def cache_probe(model: nn.Module, img: Tensor, vec: Tensor) -> Tensor:
    """The first block's modulated audio input (single-stream models: the first single block's).

    ``model`` is a ``MusicFlux`` (typed loosely: this module is imported by ``musicflux``).

    Shapes:
        img: (B, Lx, H), vec: (B, H) -> (B, Lx, H).
    """
    if len(model.double_blocks):
        return modulate(img, model.double_blocks[0].img_mod(vec)[0])
    return modulate(img, model.single_blocks[0].modulation(vec)[0])


def cached_blocks(
    model: nn.Module, img: Tensor, txt: Tensor, vec: Tensor, rope: Tensor, cache: StepCache
) -> Tensor:
    """``model.blocks`` for the rows the cache says must run; the others add their stored residual.

    Rows that run give exactly what ``model.blocks`` gives them in a batch of those rows alone.

    Shapes:
        img: (B, Lx, H), txt: (B, Lc, H), vec: (B, H), rope: (1 or B, 1, Lc + Lx, D // 2) -> (B, Lx, H).
    """
    run = cache.plan(cache_probe(model, img, vec))
    if bool(run.all()):
        out = model.blocks(img, txt, vec, rope)
        cache.finish(run, out - img)
        return out
    if not bool(run.any()):
        residual = cache.finish(run, None)
        assert residual is not None
        return img + residual.to(img.dtype)
    rows = run.nonzero().squeeze(1)
    part = model.blocks(img[rows], txt[rows], vec[rows], rope if rope.shape[0] == 1 else rope[rows])
    residual = cache.finish(run, part - img[rows])
    assert residual is not None
    out = img + residual.to(img.dtype)
    out[rows] = part
    return out
