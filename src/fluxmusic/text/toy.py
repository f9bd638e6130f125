"""Offline byte-level tokenizers with T5 or RoBERTa special-token layouts, for tiny test encoders.

Every UTF-8 string tokenises (one token per byte), so tiny random-weight conditioners work with no
downloaded vocabulary. Not a substitute for the real T5 / CLAP tokenizers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = ["byte_level_tokenizer"]

# (special tokens in id order, post-processing template, pad token, eos token, bos token)
_LAYOUTS = {
    "t5": (["<pad>", "</s>", "<unk>"], "$A </s>", "<pad>", "</s>", None),
    "roberta": (["<s>", "<pad>", "</s>", "<unk>"], "<s> $A </s>", "<pad>", "</s>", "<s>"),
}


def byte_level_tokenizer(style: Literal["t5", "roberta"]) -> PreTrainedTokenizerFast:
    """Build a ``PreTrainedTokenizerFast`` over the 256 byte symbols plus special tokens.

    Args:
        style: ``"t5"``: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, sequences end with ``</s>``.
            ``"roberta"``: ``<s>`` 0, ``<pad>`` 1, ``</s>`` 2, ``<unk>`` 3, sequences are
            ``<s> ... </s>`` (the CLAP text tower's layout).

    Returns:
        A tokenizer with ``len(tokenizer) == len(specials) + 256``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials, template, pad, eos, bos = _LAYOUTS[style]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(specials)}
    vocab.update({symbol: len(specials) + i for i, symbol in enumerate(sorted(alphabet))})
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=template, special_tokens=[(tok, vocab[tok]) for tok in specials if tok in template]
    )
    kwargs = {"bos_token": bos} if bos else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=pad, eos_token=eos, unk_token="<unk>", **kwargs
    )
