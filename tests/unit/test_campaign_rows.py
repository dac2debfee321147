"""How campaign rows are stored and grouped: JSONL bytes, and one key per set of generation settings."""

from __future__ import annotations

import json

from core.campaigns import jsonl_bytes, settings_key
from core.textfiles import text_lines


def test_jsonl_bytes_keep_text_as_utf8_one_object_a_line():
    records = [{"prompt": "专为 runners\u2028who"}, {"prompt": "plain"}]
    data = jsonl_bytes(records)
    assert "专为".encode() in data and data.endswith(b"\n")
    assert [json.loads(x) for x in text_lines(data.decode()) if x] == records


def test_rows_with_the_same_settings_share_a_key_whatever_the_order():
    a = {"prompt": "x", "params": {"max_new_tokens": 8, "seed": 1}}
    b = {"prompt": "y", "params": {"seed": 1, "max_new_tokens": 8}}
    assert settings_key(a) == settings_key(b)
    assert settings_key({"prompt": "z"}) == settings_key({"prompt": "z", "params": None}) != settings_key(a)
