"""Caption dropout (independent for T5 states and the pooled vector, as the reference; or joint)."""

from __future__ import annotations

import torch

from fluxmusic.text.base import TextEmbedding
from fluxmusic.training.batches import apply_caption_dropout


def _text(batch: int) -> tuple[TextEmbedding, TextEmbedding]:
    text = TextEmbedding(
        torch.ones(batch, 5, 4), torch.ones(batch, 5, dtype=torch.bool), torch.ones(batch, 3)
    )
    empty = TextEmbedding(torch.zeros(1, 5, 4), torch.zeros(1, 5, dtype=torch.bool), torch.zeros(1, 3))
    return text, empty


def _dropped(out: TextEmbedding) -> tuple[torch.Tensor, torch.Tensor]:
    return (out.txt == 0).all(dim=(1, 2)), (out.y == 0).all(dim=1)


def test_independent_dropout_drops_txt_and_y_separately() -> None:
    text, empty = _text(4000)
    out = apply_caption_dropout(text, empty, 0.1, "independent", torch.Generator().manual_seed(0))
    drop_txt, drop_y = _dropped(out)
    assert 0.08 < drop_txt.float().mean() < 0.12 and 0.08 < drop_y.float().mean() < 0.12
    assert (drop_txt != drop_y).any()  # independent draws
    assert torch.equal(out.txt_mask.any(dim=1), ~drop_txt)  # the mask follows the token states
    again = apply_caption_dropout(text, empty, 0.1, "independent", torch.Generator().manual_seed(0))
    assert torch.equal(again.txt, out.txt) and torch.equal(again.y, out.y)  # seeded


def test_joint_dropout_and_no_dropout() -> None:
    text, empty = _text(1000)
    out = apply_caption_dropout(text, empty, 0.3, "joint", torch.Generator().manual_seed(1))
    drop_txt, drop_y = _dropped(out)
    assert torch.equal(drop_txt, drop_y) and drop_txt.any()
    kept = apply_caption_dropout(text, empty, 0.0, "independent", torch.Generator().manual_seed(1))
    assert torch.equal(kept.txt, text.txt) and torch.equal(kept.y, text.y)
