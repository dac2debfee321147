"""The ad-writer's training data: requests (product, audience, keywords) and the ads that answer them.

Every ad is written from its request by a template, and mentions the request's product and keywords
word for word. Products are the category banks' names (models/corpus/build_ad_copy.py) or everyday
products, often with a made-up brand, so a model can only get them right by copying them from the
request. A fixed share of product/keyword combinations is held out: training never sees them, the
evaluation (models/ad_writer/evaluate.py) asks for nothing else.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from models.ad_writer import banks
from models.corpus.build_ad_copy import CATEGORIES

LANGS = ("en", "zh")
HELD_OUT_SHARE = 20  # one product/keyword combination in 20 never appears in training


@dataclass(frozen=True)
class Request:
    """What a user asks for. `product` is what the ad must mention; `noun` is it without a brand."""

    lang: str
    product: str
    noun: str
    audience: str | None
    keywords: tuple[str, ...]
    category: str | None  # a category bank's product, whose features and benefits the ad may use


def held_out(req: Request) -> bool:
    """Whether this product (brand aside) with these keywords belongs to the held-out split."""
    key = "|".join([req.lang, req.noun, *sorted(req.keywords)])
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % HELD_OUT_SHARE == 0


# ---------------------------------------------------------------- requests


def _brand(rng: random.Random, lang: str) -> str:
    first, second = banks.BRAND_PARTS[lang]
    return "".join([rng.choice(first), *rng.choices(second, k=rng.choice([1, 1, 2]))])


def _join(lang: str, *words: str) -> str:
    return " ".join(words) if lang == "en" else "".join(words)


def _keyword(rng: random.Random, lang: str) -> str:
    """Mostly a common keyword; else a free phrase or a number with its unit, which must be copied."""
    roll = rng.random()
    if roll < 0.7:
        return rng.choice(banks.KEYWORDS[lang])
    if roll < 0.85:
        return rng.choice(banks.PLAIN_FREE[lang])
    form, unit = rng.choice(banks.MEASURES[lang])
    return form.format(n=rng.choice(banks.COUNTS[unit]))


def _audience(rng: random.Random, lang: str, pool: list[str]) -> str:
    if rng.random() < 0.7:
        return rng.choice(pool)
    return _join(lang, rng.choice(banks.AUDIENCE_MODIFIERS[lang]), rng.choice(banks.AUDIENCE_NOUNS[lang]))


def draw_request(rng: random.Random, lang: str) -> Request:
    """A random request: a third name a category bank's product, the rest an everyday one, which may
    carry what it is made of ("bamboo toothbrush") and a made-up brand."""
    category = None
    if rng.random() < 0.3:
        category = rng.choice(sorted(CATEGORIES))
        bank = CATEGORIES[category][lang]
        product = noun = rng.choice(bank.names)
        audiences = bank.audiences + banks.AUDIENCES[lang]
    else:
        noun = rng.choice(banks.PRODUCTS[lang])
        if rng.random() < 0.4:
            noun = _join(lang, rng.choice(banks.MODIFIERS[lang]), noun)
        product = noun
        if rng.random() < 0.4:
            product = _join(lang, _brand(rng, lang), noun)
        audiences = banks.AUDIENCES[lang]
    audience = _audience(rng, lang, audiences) if rng.random() < 0.75 else None
    count = rng.choices([0, 1, 2, 3], weights=[20, 35, 35, 10])[0]
    keywords = tuple(dict.fromkeys(_keyword(rng, lang) for _ in range(count)))
    return Request(lang, product, noun, audience, keywords, category)


def _article(noun: str) -> str:
    """'a thermos', 'an air fryer', 'sneakers': English's article for a product, where it takes one."""
    if noun.endswith("s") or noun.split()[-1] in {"clothing", "granola", "honey", "chocolate", "oil",
                                                   "sauce", "tea", "water", "yarn", "supplies"}:
        return noun
    return ("an " if noun[0].lower() in "aeiou" else "a ") + noun


REQUEST_FORMS = {
    # (has audience, has keywords) -> forms; {p} product, {ap} with article, {a} audience, {k} keywords
    "en": {
        (True, True): ["Write an ad for {ap} for {a}: {k}", "Write a short ad for {p} aimed at {a}: {k}",
                       "Product: {p}\nAudience: {a}\nKeywords: {k}", "Ad for {p}. Audience: {a}. Keywords: {k}.",
                       "Can you write an ad for our {p}? It is for {a}. Keywords: {k}.", "{kb} {p} for {a}",
                       "Write an ad: {p}, for {a}, {k}"],
        (False, True): ["Write an ad for {ap}: {k}", "Product: {p}\nKeywords: {k}", "{kb} {p}",
                        "Ad copy for {p}, {k}", "Write a short ad for {p}: {k}"],
        (True, False): ["Write an ad for {ap} for {a}", "Write a short ad for {p} aimed at {a}:",
                        "Product: {p}\nAudience: {a}", "An ad for {p}, for {a}"],
        (False, False): ["Write an ad for {ap}", "Write a short ad for {p}.", "Product: {p}", "Ad for {p}"],
    },
    "zh": {
        (True, True): ["为{a}写一条{p}的广告：{k}", "写一条{p}的广告，面向{a}，关键词：{k}",
                       "产品：{p}\n受众：{a}\n关键词：{k}", "帮我写个{p}的文案，给{a}看的，要突出{k}",
                       "{kb}{p}，目标人群{a}"],
        (False, True): ["{kb}{p}", "帮我写个{p}的文案：{k}", "产品：{p}\n关键词：{k}", "写一条{p}的广告，关键词：{k}"],
        (True, False): ["为{a}写一条{p}的广告", "请为{p}写一段广告语，目标人群是{a}。", "产品：{p}\n受众：{a}"],
        (False, False): ["写一条{p}的广告", "帮我写个{p}的文案", "产品：{p}"],
    },
}


def render_request(rng: random.Random, req: Request) -> str:
    """The request as a user would type it, in one of several forms (a campaign template is one)."""
    form = rng.choice(REQUEST_FORMS[req.lang][(req.audience is not None, bool(req.keywords))])
    sep = ", " if req.lang == "en" else rng.choice(["，", "、"])
    bare = " " if req.lang == "en" else ""
    ap = _article(req.product) if req.product == req.noun else req.product
    return form.format(p=req.product, ap=ap, a=req.audience, k=sep.join(req.keywords), kb=bare.join(req.keywords))


# ---------------------------------------------------------------- ads

AD_TEMPLATES = {
    # {P} product, {A} audience, {K} keywords in a list, {KS} keywords as short sentences,
    # {KC} the list capitalised, {D} a detail, {B} a benefit, {C} a call to action
    "en": {
        (True, True): ["The {P}: {K}. Made for {A} who want to {B}. {C}.",
                       "Meet the {P}, made for {A}. {KS} {C}.",
                       "Calling all {A}: the {P} is here. {KC}, with {D}. {C}.",
                       "{KC}: the {P} helps {A} {B}. {C}.",
                       "Looking for a way to {B}? The {P} for {A}: {K}. {C}.",
                       "New for {A}: the {P}. {KS} With {D}, it helps you {B}. {C}.",
                       "Made for {A}: the {P}, {K}. {C}."],
        (False, True): ["The {P}: {K}. With {D}, it helps you {B}. {C}.",
                        "Meet the {P}. {KS} {C}.",
                        "Want to {B}? Try the {P}: {K}. {C}.",
                        "{KC}. That is the {P}, with {D}. {C}."],
        (True, False): ["Made for {A}: the {P}, with {D}. {C}.",
                        "Calling all {A}: the {P} helps you {B}. {C}.",
                        "The {P}: {D}, for {A} who want to {B}. {C}."],
        (False, False): ["Meet the {P}. With {D}, it helps you {B}. {C}.",
                         "The {P} comes with {D}, so you can {B}. {C}.",
                         "Want to {B}? The {P} has {D}. {C}."],
    },
    "zh": {
        (True, True): ["{P}，{K}！专为{A}打造，让你{B}。{C}！",
                       "{A}看过来：{P}，{K}。{D}，{C}！",
                       "{K}的{P}来了！{A}必备，帮你{B}。{C}！",
                       "新品上市：{P}。{K}，{A}的理想之选。{C}！",
                       "想要{B}？试试{P}，{K}，{A}都爱用。{C}！",
                       "{A}的好帮手：{P}。{K}，{D}。{C}！"],
        (False, True): ["{P}，{K}，{D}。{C}！",
                        "{K}的{P}，让你{B}。{C}！",
                        "想要{B}？{P}，{K}。{C}！"],
        (True, False): ["专为{A}打造：{P}，{D}。{C}！",
                        "{A}都爱的{P}，{D}，让你{B}。{C}！"],
        (False, False): ["{P}，{D}，让你{B}。{C}！",
                         "新品上市：{P}。{D}，从此{B}。{C}！"],
    },
}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def write_ad(rng: random.Random, req: Request) -> str:
    """The ad answering `req`: a template filled with its words, and a category's phrases where it has one."""
    lang = req.lang
    if req.category:
        bank = CATEGORIES[req.category][lang]
        details, benefits, ctas = bank.features, bank.benefits, bank.ctas
    else:
        details, benefits, ctas = banks.DETAILS[lang], banks.BENEFITS[lang], banks.CTAS[lang]
    template = rng.choice(AD_TEMPLATES[lang][(req.audience is not None, bool(req.keywords))])
    if lang == "en":
        listed = " and ".join(filter(None, [", ".join(req.keywords[:-1]), req.keywords[-1]])) if req.keywords else ""
        sentences = " ".join(_cap(k) + "." for k in req.keywords)
    else:
        listed = sentences = "、".join(req.keywords)
    return template.format(P=req.product, A=req.audience, K=listed, KS=sentences, KC=_cap(listed),
                           D=rng.choice(details), B=rng.choice(benefits), C=rng.choice(ctas))


# ---------------------------------------------------------------- examples


@dataclass(frozen=True)
class Example:
    """One training example: (text, trained) pieces in order; only `trained` pieces count in the loss."""

    pieces: tuple[tuple[str, bool], ...]


def _pair(rng: random.Random, lang: str, split: str) -> tuple[Request, str, str]:
    """A request of the split (train or held_out), as typed, with its ad."""
    for _ in range(1000):
        req = draw_request(rng, lang)
        if held_out(req) == (split == "held_out"):
            return req, render_request(rng, req), write_ad(rng, req)
    raise RuntimeError("no request of the split in 1000 draws")


def plain_example(request: str, ad: str, eos: str) -> Example:
    """A completion: the request, then a newline and the ad, then end of text."""
    return Example(((request, False), ("\n" + ad + eos, True)))


def chat_turns(rng: random.Random, lang: str) -> list[tuple[str, str]]:
    """One or two (user, assistant) turns: ad requests, now and then small talk."""
    turns = []
    for _ in range(2 if rng.random() < 0.15 else 1):
        if rng.random() < 0.06:
            asks, answers = rng.choice(banks.SMALL_TALK[lang])
            turns.append((rng.choice(asks), rng.choice(answers)))
        else:
            _, request, ad = _pair(rng, lang, "train")
            turns.append((request, ad))
    return turns


def chat_example(rng: random.Random, lang: str, im_start: str, im_end: str) -> Example:
    """A conversation in ChatML (the ad-writer's chat template); the assistant turns are trained."""
    pieces: list[tuple[str, bool]] = []
    if rng.random() < 0.3:
        pieces.append((f"{im_start}system\n{rng.choice(banks.SYSTEM_PROMPTS[lang])}{im_end}\n", False))
    for user, assistant in chat_turns(rng, lang):
        pieces.append((f"{im_start}user\n{user}{im_end}\n{im_start}assistant\n", False))
        pieces.append((assistant + im_end, True))
        pieces.append(("\n", False))
    return Example(tuple(pieces))


def training_examples(count: int, seed: int, eos: str, im_start: str, im_end: str,
                      corpus_lines: list[str]) -> list[Example]:
    """`count` examples: completions and chats in equal parts, plus a tenth plain ads from the corpus."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        lang = LANGS[i % 2]
        roll = rng.random()
        if roll < 0.1:
            out.append(Example(((rng.choice(corpus_lines) + eos, True),)))
        elif roll < 0.55:
            _, request, ad = _pair(rng, lang, "train")
            out.append(plain_example(request, ad, eos))
        else:
            out.append(chat_example(rng, lang, im_start, im_end))
    return out


def held_out_requests(count: int, seed: int = 1) -> list[tuple[Request, str, str]]:
    """`count` held-out (request, as typed, reference ad), alternating English and Chinese."""
    rng = random.Random(seed)
    return [_pair(rng, LANGS[i % 2], "held_out") for i in range(count)]
