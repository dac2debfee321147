"""Lone surrogates are found wherever they sit in parsed JSON, named by their path; uploads name the line."""

from __future__ import annotations

import json

import pytest

from core.errors import InvalidInput
from core.text_checks import unencodable_path
from core.textfiles import jsonl_objects


@pytest.mark.parametrize("value,path", [
    ({"kind": "text.generate", "input": {"prompt": "bad \ud800"}}, "input.prompt"),
    ({"messages": [{"content": "ok"}, {"content": [{"type": "text", "text": "\udc00"}]}]}, "messages[1].content[0].text"),
    ({"metadata": {"\ud800": "key"}}, "metadata"),
    ("\udfff", "body"),
    ({"fine": ["text", "中文", "emoji \U0001f600"], "n": 1, "x": None}, None),
])
def test_the_first_unencodable_string_is_named_by_its_path(value, path):
    assert unencodable_path(value) == path


def test_a_deep_document_is_walked_without_recursion():
    deep: list = ["\ud800"]
    for _ in range(50_000):
        deep = [deep]
    assert unencodable_path(deep).endswith("[0][0]")


def test_jsonl_upload_lines_are_checked_and_deep_nesting_is_a_400():
    text = json.dumps({"text": "fine"}) + "\n" + json.dumps({"text": "bad \ud800"}) + "\n"
    with pytest.raises(InvalidInput, match="line 2: text holds text that is not valid Unicode"):
        list(jsonl_objects(text))
    with pytest.raises(InvalidInput, match="line 1: nested too deeply"):
        list(jsonl_objects("[" * 100_000 + "]" * 100_000))


def test_in_a_worker_a_prompt_that_is_not_unicode_fails_its_job_alone():
    """Jobs of several owners share a serving loop: the one with bad text fails, the others get their prompts."""
    from types import SimpleNamespace

    from tasks.replies import PLAIN, job_prompt

    ctxs = [SimpleNamespace(id=name, job={"input": {"prompt": prompt}})
            for name, prompt in [("a", "fine"), ("b", "bad \ud800"), ("c", "也很好")]]
    prompts, errors = {}, {}
    for ctx in ctxs:
        try:
            prompts[ctx.id] = job_prompt(ctx, None, PLAIN)
        except InvalidInput as exc:
            errors[ctx.id] = exc
    assert prompts == {"a": "fine", "c": "也很好"}
    assert list(errors) == ["b"] and errors["b"].param == "input.prompt"
