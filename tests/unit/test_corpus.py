"""The shipped ad-copy corpus: regenerates exactly, bilingual and balanced, clean, loadable."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict

import pytest

from models.corpus import ad_copy_path, load_ad_copy
from models.corpus.build_ad_copy import build, to_jsonl

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def records() -> list[dict]:
    with ad_copy_path().open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_shipped_file_is_what_build_produces():
    shipped = ad_copy_path().read_bytes()
    expected = [json.dumps(rec, ensure_ascii=False) for rec in build()]
    assert shipped.decode("utf-8").splitlines() == expected
    assert shipped == to_jsonl(build()).encode("utf-8")  # byte-identical, trailing newline included
    assert shipped.endswith(b"\n")


def test_build_is_deterministic_per_seed():
    assert build(7) == build(7)
    assert build(8) != build(7)


def test_size_and_line_count(records):
    assert 2000 <= len(records) <= 5000
    assert ad_copy_path().stat().st_size < 1_000_000


def test_both_languages_balanced(records):
    langs = Counter(rec["lang"] for rec in records)
    assert set(langs) == {"en", "zh"}
    for lang in ("en", "zh"):
        assert langs[lang] >= 0.4 * len(records), langs


def test_every_category_in_both_languages(records):
    langs_by_category = defaultdict(set)
    for rec in records:
        langs_by_category[rec["category"]].add(rec["lang"])
    assert len(langs_by_category) >= 24
    assert all(langs == {"en", "zh"} for langs in langs_by_category.values()), langs_by_category


def test_no_duplicate_texts(records):
    texts = [rec["text"] for rec in records]
    assert len(set(texts)) == len(texts)


def test_scripts_and_lengths(records):
    for rec in records:
        assert set(rec) == {"text", "lang", "category"}
        text = rec["text"]
        if rec["lang"] == "en":
            assert text.isascii(), text
            assert len(text) < 160, text
        else:
            assert CJK.search(text), text
            assert len(text) < 80, text


def test_load_ad_copy_returns_the_texts(records):
    assert load_ad_copy() == [rec["text"] for rec in records]
