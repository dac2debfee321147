"""Bad input gets a 400 (or 413) naming the field, and nothing is recorded or enqueued."""

from __future__ import annotations

import json

import pytest

GOOD = {"model": "builtin:tiny-gpt2", "prompt": "hello", "max_new_tokens": 8}


def _body(**changes):
    return {"kind": "text.generate", "input": {**GOOD, **changes}}


def _without(name):
    return {"kind": "text.generate", "input": {k: v for k, v in GOOD.items() if k != name}}


@pytest.mark.parametrize("body,param", [
    ({"kind": "image.paint", "input": GOOD}, "kind"),
    ({"input": GOOD}, "kind"),
    ({"kind": "text.generate"}, "input"),
    ({"kind": "text.generate", "input": "hello"}, "input"),
    ({"kind": "text.generate", "input": GOOD, "extra": 1}, "extra"),
    (_without("prompt"), "input.prompt"),
    (_without("model"), "input.model"),
    (_body(prompt=""), "input.prompt"),
    (_body(prompt=42), "input.prompt"),
    (_body(model="no-such-model"), "input.model"),
    (_body(model="../../etc"), "input.model"),
    (_body(max_new_tokens=0), "input.max_new_tokens"),
    (_body(max_new_tokens=-5), "input.max_new_tokens"),
    (_body(max_new_tokens=10**6), "input.max_new_tokens"),
    (_body(max_new_tokens=1024), "input.max_new_tokens"),  # within AIGC_MAX_NEW_TOKENS, not the model's 1024
    ({"kind": "text.chat", "input": {"model": "builtin:ad-writer", "max_new_tokens": 512,
                                     "messages": [{"role": "user", "content": "hi"}]}}, "input.max_new_tokens"),
    (_body(max_new_tokens="8"), "input.max_new_tokens"),
    (_body(max_new_tokens=True), "input.max_new_tokens"),
    (_body(temperature=-0.1), "input.temperature"),
    (_body(temperature="hot"), "input.temperature"),
    (_body(top_p=0), "input.top_p"),
    (_body(top_p=1.5), "input.top_p"),
    (_body(top_k=-1), "input.top_k"),
    (_body(n=0), "input.n"),
    (_body(n=1000), "input.n"),
    (_body(seed=-1), "input.seed"),
    (_body(seed=1.5), "input.seed"),
    (_body(stop=["a", "b", "c", "d", "e"]), "input.stop"),
    (_body(stop=[""]), "input.stop[0]"),
    (_body(colour="blue"), "input.colour"),
    ({"kind": "text.generate", "input": GOOD, "metadata": "x"}, "metadata"),
])
def test_invalid_job_is_400_naming_the_field(platform, alice, body, param):
    before = platform.redis_client().zcard("aigc:owner:alice:jobs")
    resp = alice.post("/v1/jobs", json=body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == param
    assert error["code"] in ("invalid_input", "model_not_found") and error["message"]
    assert platform.redis_client().zcard("aigc:owner:alice:jobs") == before


@pytest.mark.parametrize("route,body,param", [
    ("/v1/jobs", _body(prompt="bad \ud800 text"), "input.prompt"),
    ("/v1/jobs", _body(stop=["ok", "\udfff"]), "input.stop[1]"),
    ("/v1/completions", {"model": "builtin:tiny-gpt2", "prompt": "x\ud800"}, "prompt"),
    ("/v1/chat/completions", {"model": "builtin:tiny-gpt2",
                              "messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "\ud800"}]},
     "messages[1].content"),
    ("/v1/campaigns", {"rows": [{"product": "tea\ud800"}], "template": "{product}", "model": "builtin:tiny-gpt2"},
     "rows[0].product"),
])
def test_text_that_is_not_unicode_is_400_where_it_enters(platform, alice, route, body, param):
    """A lone surrogate passes JSON parsing; left in, it failed in a worker's tokenizer, and with it
    every other owner's job in the same batch. It is refused at the door, naming the field."""
    before = platform.redis_client().zcard("aigc:owner:alice:jobs")
    resp = alice.post(route, json=body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == param and "not valid Unicode" in error["message"]
    assert platform.redis_client().zcard("aigc:owner:alice:jobs") == before


def test_a_batch_file_line_with_a_lone_surrogate_is_refused_at_upload(alice):
    line = json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/completions",
                       "body": {"model": "builtin:tiny-gpt2", "prompt": "x\ud800"}})
    resp = alice.upload((line + "\n").encode(), purpose="batch", filename="b.jsonl")
    assert resp.status_code == 400 and "line 1" in resp.json()["error"]["message"], resp.text


def test_json_nested_too_deeply_is_400_not_500(alice):
    resp = alice.post("/v1/jobs", data=b"[" * 100_000 + b"]" * 100_000, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_json", resp.text


@pytest.mark.parametrize("data", [b"{not json", b"", b"\xff\xfe", b"[1, 2]", b"null"])
def test_malformed_json_is_400(alice, data):
    resp = alice.post("/v1/jobs", data=data, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] in ("invalid_json", "invalid_input")


def test_oversized_body_is_413_from_the_production_server(platform, alice):
    before = platform.redis_client().zcard("aigc:owner:alice:jobs")
    resp = alice.post("/v1/jobs", json=_body(prompt="x" * (2 << 20)))
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "too_large"
    assert platform.redis_client().zcard("aigc:owner:alice:jobs") == before


def test_a_chunked_body_over_the_limit_is_413_and_json_under_another_type_415(platform, alice):
    body = json.dumps(_body(prompt="x" * (2 << 20))).encode()
    before = platform.redis_client().zcard("aigc:owner:alice:jobs")

    def chunks():  # a generator body: requests sends it chunked, with no Content-Length
        for i in range(0, len(body), 1 << 16):
            yield body[i:i + (1 << 16)]
    resp = alice.post("/v1/jobs", data=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "too_large", resp.text
    plain = alice.post("/v1/jobs", data=json.dumps(_body(prompt="hi")), headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415 and plain.json()["error"]["code"] == "unsupported_media_type"
    assert platform.redis_client().zcard("aigc:owner:alice:jobs") == before
    wrong_method = alice.delete("/v1/chat/completions")
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["Allow"]


def test_bad_query_parameters_are_400(alice):
    assert alice.get("/v1/jobs", params={"limit": "0"}).json()["error"]["param"] == "limit"
    assert alice.get("/v1/jobs", params={"limit": "abc"}).json()["error"]["param"] == "limit"
    assert alice.get("/v1/jobs", params={"kind": "nope"}).json()["error"]["param"] == "kind"
    assert alice.get("/v1/jobs", params={"after": "job_unknown"}).json()["error"]["param"] == "after"
