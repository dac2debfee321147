"""Measures a text model on held-out ad requests: `python -m models.ad_writer.evaluate [--requests 200]`.

Half the requests English, half Chinese, half typed as a completion prompt and half as a chat message;
every product/keyword combination is one training never saw. Samples at temperature 0.8 with a fixed
seed per request, through the platform's own generation code, and reports:
clean (no U+FFFD, no control character), right language (by script), on topic (names the product),
distinct-2 (over words and CJK characters), verbatim (repeats a training ad), and the held-out
perplexity, for builtin:ad-writer and, beside it, the untrained builtin:tiny-gpt2.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import unicodedata
from dataclasses import asdict, dataclass
from functools import cache

from models.ad_writer import NAME, TRAIN_SEED
from models.ad_writer.data import Request, held_out_requests, training_examples
from models.ad_writer.tokenizer import EOS, IM_END, IM_START
from models.ad_writer.train import EXAMPLES, answer_loss
from models.chat import chat_prompt, chat_stops
from models.corpus import load_ad_copy
from models.text import GenerationParams, TextModel, generate_rows, load_text_model

UNTRAINED = "builtin:tiny-gpt2"
TEMPERATURE = 0.8
MAX_NEW_TOKENS = 128

# Targets from the issue that introduced the model; the test asserts them on a small sample.
TARGETS = {"clean": 0.99, "right_language": 0.95, "on_topic": 0.90, "distinct_2": 0.40}
MAX_VERBATIM = 0.05

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")
_UNITS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]|[A-Za-z0-9'-]+")


@dataclass
class Report:
    model: str
    requests: int
    clean: float
    right_language: float
    on_topic: float
    distinct_2: float
    verbatim: float
    perplexity: float  # per token of the model's own tokenizer, over the reference ads
    bits_per_char: float  # the same loss per character: comparable across tokenizers
    samples: list[dict]


def is_clean(text: str) -> bool:
    """No replacement character and no control character (a newline inside an ad counts as one)."""
    return "\ufffd" not in text and not any(unicodedata.category(c) == "Cc" for c in text.strip())


def language(text: str) -> str:
    """zh where CJK characters outnumber Latin letters, else en."""
    return "zh" if len(_CJK.findall(text)) > len(_LATIN.findall(text)) else "en"


def on_topic(text: str, req: Request) -> bool:
    return req.product.lower() in text.lower()


def distinct_2(texts: list[str]) -> float:
    """Distinct bigrams over all bigrams, counting English words and CJK characters as units."""
    bigrams = [tuple(u[i:i + 2]) for t in texts for u in [_UNITS.findall(t)] for i in range(len(u) - 1)]
    return len(set(bigrams)) / max(1, len(bigrams))


@cache
def training_ads() -> frozenset[str]:
    """Every ad text training shows the model (trained pieces, end markers removed), and the corpus."""
    examples = training_examples(EXAMPLES, TRAIN_SEED, EOS, IM_START, IM_END, load_ad_copy())
    ads = {text.replace(EOS, "").replace(IM_END, "").strip() for ex in examples for text, trained in ex.pieces
           if trained}
    return frozenset(ads | set(load_ad_copy()))


def prompts_for(tm: TextModel, requests: list[tuple[Request, str, str]]) -> list[tuple[str, bool]]:
    """(prompt, is_chat): every other pair of requests (one English, one Chinese) comes as a chat."""
    out = []
    for i, (_, typed, _) in enumerate(requests):
        chat = (i // 2) % 2 == 1
        out.append((chat_prompt(tm.tokenizer, [{"role": "user", "content": typed}]) if chat else typed, chat))
    return out


def generate(tm: TextModel, requests: list[tuple[Request, str, str]]) -> list[str]:
    """One sample per request, seeded by its index, as the platform's jobs would draw it."""
    prompts = prompts_for(tm, requests)
    texts = [""] * len(prompts)
    for chat in (False, True):
        idx = [i for i, (_, c) in enumerate(prompts) if c == chat]
        stop = chat_stops(tm.tokenizer) if chat else ()
        params = GenerationParams(max_new_tokens=MAX_NEW_TOKENS, temperature=TEMPERATURE, stop=stop)
        rows = generate_rows(tm, [prompts[i][0] for i in idx], params, seeds=idx, max_sequences=64)
        for i, row in zip(idx, rows):
            texts[i] = row["choices"][0]["text"] if isinstance(row, dict) else ""
    return texts


def held_out_loss(tm: TextModel, requests: list[tuple[Request, str, str]]) -> tuple[float, float]:
    """(perplexity per token, bits per character) of the reference ads after their typed requests."""
    nats, tokens = answer_loss(tm.model, tm.tokenizer, requests, tm.device)
    chars = sum(len("\n" + ad) + 1 for _, _, ad in requests)  # the answer, its line break and its end
    return math.exp(nats / tokens), nats / chars / math.log(2)


def evaluate(name: str, count: int) -> Report:
    tm = load_text_model(name, "builtin")
    requests = held_out_requests(count)
    texts = generate(tm, requests)
    seen = training_ads()
    n = len(texts)
    perplexity, bpc = held_out_loss(tm, requests)
    return Report(
        model=name, requests=n,
        clean=sum(map(is_clean, texts)) / n,
        right_language=sum(language(t) == r.lang for t, (r, _, _) in zip(texts, requests)) / n,
        on_topic=sum(on_topic(t, r) for t, (r, _, _) in zip(texts, requests)) / n,
        distinct_2=distinct_2(texts),
        verbatim=sum(t.strip() in seen for t in texts) / n,
        perplexity=perplexity, bits_per_char=bpc,
        samples=[{"request": typed, "output": t} for t, (_, typed, _) in zip(texts, requests)],
    )


def table(reports: list[Report]) -> str:
    rows = ["| model | clean | right language | on topic | distinct-2 | verbatim | perplexity (per token) | bits/char |",
            "|---|---|---|---|---|---|---|---|"]
    for r in reports:
        rows.append(f"| {r.model} | {r.clean:.1%} | {r.right_language:.1%} | {r.on_topic:.1%} | {r.distinct_2:.3f} "
                    f"| {r.verbatim:.1%} | {r.perplexity:.2f} | {r.bits_per_char:.2f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print the reports, samples included, as JSON")
    args = parser.parse_args(argv)
    reports = [evaluate(NAME, args.requests), evaluate(UNTRAINED, args.requests)]
    if args.json:
        print(json.dumps([asdict(r) for r in reports], ensure_ascii=False, indent=1))
        return
    print(table(reports))
    for sample in reports[0].samples[:6]:
        print(f"\n> {sample['request']}\n{sample['output'].strip()}")


if __name__ == "__main__":
    main()
