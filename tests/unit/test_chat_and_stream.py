"""Chat prompts (own template or ChatML) and streamed text: the pieces sent add up to the final completion."""

from __future__ import annotations

import pytest

from models.builtin import byte_level_tokenizer
from models.chat import CHATML_END, chat_prompt, chat_stops
from models.text import GenerationParams, generate_batch, sequences_per_prompt
from models.text_stream import TextStream

CONVERSATION = [{"role": "system", "content": "You write ads."},
                {"role": "user", "content": "A thermos for hikers"},
                {"role": "assistant", "content": "Hot for 24 h."},
                {"role": "user", "content": "Shorter"}]


pytestmark = pytest.mark.usefixtures("pin_fp32")


def test_a_tokenizer_without_a_template_gets_chatml():
    tok = byte_level_tokenizer()
    prompt = chat_prompt(tok, CONVERSATION)
    assert prompt == ("<|im_start|>system\nYou write ads.<|im_end|>\n<|im_start|>user\nA thermos for hikers"
                      "<|im_end|>\n<|im_start|>assistant\nHot for 24 h.<|im_end|>\n<|im_start|>user\nShorter"
                      "<|im_end|>\n<|im_start|>assistant\n")
    assert chat_stops(tok) == (CHATML_END,)


def test_a_tokenizer_with_its_own_template_uses_it():
    tok = byte_level_tokenizer()
    tok.chat_template = "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}" \
                        "{% if add_generation_prompt %}[assistant]{% endif %}"
    assert chat_prompt(tok, CONVERSATION[:2]) == "[system]You write ads.[user]A thermos for hikers[assistant]"
    assert chat_stops(tok) == ()


def _stream(tok, ids, stop=()):
    stream = TextStream(tok, stop)
    return stream, [stream.push(i) for i in ids]


def test_a_character_split_across_tokens_goes_out_whole():
    tok = byte_level_tokenizer()
    ids = list("绿茶 ok".encode())  # byte-level: one token per byte, 3 per character here
    stream, pieces = _stream(tok, ids)
    assert "".join(pieces) == "绿茶 ok"
    assert all("\ufffd" not in p for p in pieces)
    assert pieces[:3] == ["", "", "绿"]


def test_a_possible_stop_string_is_held_back_and_never_sent():
    tok = byte_level_tokenizer()
    stream, pieces = _stream(tok, list("Buy now<|im_end|>trailing".encode()), stop=(CHATML_END,))
    assert "".join(pieces) == "Buy now"
    assert stream.ended
    # A held-back prefix that turns out not to be the stop string goes out after all.
    stream, pieces = _stream(tok, list("a<|im_x b".encode()), stop=(CHATML_END,))
    assert "".join(pieces) == "a<|im_x b"


def test_end_of_text_ends_the_stream():
    tok = byte_level_tokenizer()
    stream, pieces = _stream(tok, list(b"hi") + [tok.eos_token_id] + list(b"more"))
    assert "".join(pieces) == "hi" and stream.ended


@pytest.mark.parametrize("stop", [(), ("e",), ("th", "o w")])
def test_streamed_pieces_add_up_to_the_final_completion(tiny, stop):
    params = GenerationParams(max_new_tokens=40, temperature=1.0, n=2, seed=11, stop=stop)
    tok = tiny.tokenizer
    rows = sequences_per_prompt(params) * 2
    streams = [TextStream(tok, stop) for _ in range(rows)]
    sent = [""] * rows
    steps = []

    def on_tokens(tokens):
        steps.append(len(tokens))
        for r, token in enumerate(tokens):
            sent[r] += streams[r].push(token)
    results = generate_batch(tiny, ["Sale on", "Fresh coffee for"], params, on_tokens=on_tokens)
    assert steps and all(n == rows for n in steps)
    for p, result in enumerate(results):
        for choice in result["choices"]:
            r = p * sequences_per_prompt(params) + choice["index"]
            final = choice["text"]
            assert final.startswith(sent[r])
            assert sent[r] + streams[r].rest(final) == final


def test_every_end_token_of_the_generation_config_ends_the_reply():
    from models.text import load_text_model

    tm = load_text_model("builtin:tiny-gpt2", "builtin")  # its own: the config is changed below
    tm.model.generation_config.eos_token_id = [tm.tokenizer.eos_token_id, ord("e")]  # an end-of-turn token
    assert tm.end_ids == (tm.tokenizer.eos_token_id, ord("e"))
    stream = TextStream(tm.tokenizer, (), tm.end_ids)
    assert "".join(stream.push(t) for t in b"abcdefg") == "abcd" and stream.ended
    params = GenerationParams(max_new_tokens=60, temperature=1.0, n=4, seed=3)
    for choice in generate_batch(tm, ["Sale on"], params)[0]["choices"]:
        assert "e" not in choice["text"]


class _TidyingTokenizer:
    """A tokenizer whose decode tidies spaces before apostrophes unless told not to (as some
    configs' clean_up_tokenization_spaces does)."""

    eos_token_id = 0
    pieces = {1: "It", 2: " '", 3: "s", 4: " good"}

    def decode(self, ids, skip_special_tokens=True, clean_up_tokenization_spaces=True):
        text = "".join(self.pieces[i] for i in ids)
        return text.replace(" '", "'") if clean_up_tokenization_spaces else text


def test_streamed_text_is_the_text_as_decoded_whole_whatever_the_tokenizer_tidies():
    from models.text import DECODE

    tok = _TidyingTokenizer()
    stream = TextStream(tok)
    sent = "".join(stream.push(i) for i in (1, 2, 3, 4))
    assert sent == tok.decode([1, 2, 3, 4], **DECODE) == "It 's good"
