"""The ad-writer's tokenizer: byte-level BPE trained on its own English and Chinese data, with ChatML turns.

Byte-level, so any text encodes (no unknown token), and merges learnt from the corpus, so a Chinese
character or an English word is mostly one token instead of three bytes: a model this small gets far
more out of its 512 positions and its capacity. Each CJK character (and full-width punctuation) is
split off before the byte-level step, so no token holds part of one character and part of another:
whatever sequence the model draws decodes to whole characters, never to U+FFFD at a seam.
"""

from __future__ import annotations

from typing import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from models.chat import CHATML_END, CHATML_TEMPLATE

EOS = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = CHATML_END
SPECIAL_TOKENS = [EOS, IM_START, IM_END]  # ids 0, 1, 2
# CJK punctuation, ideographs and full-width forms: one pre-token each.
_WIDE_CHAR = "[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]"


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE of `vocab_size` tokens learnt from `texts`, ready for transformers."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_WIDE_CHAR), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=EOS,
                                   additional_special_tokens=[IM_START, IM_END])
    # Its own template, so the platform renders chats with it and ends a reply on the <|im_end|> token.
    fast.chat_template = CHATML_TEMPLATE
    fast.padding_side = "left"
    return fast
