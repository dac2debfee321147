"""Hostile and malformed requests get a 4xx that says what is wrong, never a 500: the content type,
size, nesting and shape of a body, and methods a route does not take."""

from __future__ import annotations

import io
import json

import pytest

from tests.unit.test_web_app import api_key, app, client  # noqa: F401 -- the fixtures

JSON_ROUTES = ["/v1/jobs", "/v1/completions", "/v1/chat/completions", "/v1/campaigns", "/v1/batches",
               "/v1/images/generations"]


def _auth(key: str, **headers) -> dict:
    return {"Authorization": f"Bearer {key}", **headers}


@pytest.mark.parametrize("path", JSON_ROUTES)
def test_json_sent_under_another_content_type_is_415(client, api_key, path):
    body = json.dumps({"kind": "text.generate", "input": {"prompt": "hi"}})
    for ctype in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = _auth(api_key) if ctype is None else _auth(api_key, **{"Content-Type": ctype})
        resp = client.post(path, data=body, headers=headers)
        assert resp.status_code == 415, (path, ctype, resp.status_code, resp.get_data(as_text=True))
        err = resp.get_json()["error"]
        assert err["code"] == "unsupported_media_type" and "application/json" in err["message"]
    ok = client.post(path, data=body, headers=_auth(api_key, **{"Content-Type": "application/json; charset=utf-8"}))
    assert ok.status_code != 415


def test_a_chunked_body_over_the_limit_is_413_not_cut_and_parsed(app, client, api_key):
    limit = app.config["MAX_CONTENT_LENGTH"]
    big = json.dumps({"kind": "text.generate", "input": {"model": "builtin:tiny-gpt2", "prompt": "x" * limit}})

    # As gunicorn hands a chunked body over: no Content-Length, the stream terminated by the server.
    resp = client.post("/v1/jobs", input_stream=io.BytesIO(big.encode()),
                       headers=_auth(api_key, **{"Content-Type": "application/json", "Transfer-Encoding": "chunked"}),
                       environ_overrides={"wsgi.input_terminated": True})
    assert resp.status_code == 413, resp.get_data(as_text=True)
    assert resp.get_json()["error"]["code"] == "too_large"


@pytest.mark.parametrize("body,param", [
    ({"kind": {"a": 1}, "input": {}}, "kind"),
    ({"kind": ["text.generate"], "input": {}}, "kind"),
    ({"kind": "gan.train", "input": {"dataset": {"x": 1}}}, "input.dataset"),
    ({"kind": "gan.train", "input": {"dataset": ["builtin:digits"]}}, "input.dataset"),
    ({"kind": "gan.sample", "input": {"model": ["gan:x"]}}, "input.model"),
    ({"kind": "text.generate", "input": {"model": {"id": 1}, "prompt": "hi"}}, "input.model"),
    ({"kind": "text.finetune", "input": {"base_model": ["x"], "dataset": {"y": 2}}}, None),
])
def test_objects_and_lists_where_strings_belong_are_400s_naming_the_field(client, api_key, body, param):
    resp = client.post("/v1/jobs", json=body, headers=_auth(api_key))
    assert resp.status_code == 400, resp.get_data(as_text=True)
    if param:
        assert param in {e["param"] for e in resp.get_json()["error"].get("errors") or [resp.get_json()["error"]]}


def test_campaign_metadata_is_checked_like_a_jobs(client, api_key):
    rows = [{"product": "tea"}]
    for metadata in ({"k": {"nested": 1}}, ["a"], {"x" * 100: "v"}):
        resp = client.post("/v1/campaigns", json={"rows": rows, "template": "Ad for {product}", "metadata": metadata,
                                                  "model": "builtin:tiny-gpt2"}, headers=_auth(api_key))
        assert resp.status_code == 400 and resp.get_json()["error"]["param"].startswith("metadata"), resp.get_json()


def test_a_method_a_route_does_not_take_is_405_with_allow(client, api_key):
    resp = client.delete("/v1/completions", headers=_auth(api_key))
    assert resp.status_code == 405
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) >= {"POST"}
    assert resp.get_json()["error"]["code"] == "method_not_allowed"
    page = client.delete("/jobs")
    assert page.status_code == 405 and "GET" in page.headers["Allow"]


def test_a_batch_line_with_a_list_for_its_model_is_refused_by_line(client, api_key):
    line = {"custom_id": "a", "method": "POST", "url": "/v1/completions",
            "body": {"model": ["builtin:tiny-gpt2"], "prompt": "hi", "max_tokens": 2}}
    up = client.post("/v1/files", data={"purpose": "batch", "file": (io.BytesIO(json.dumps(line).encode() + b"\n"),
                                                                        "b.jsonl")}, headers=_auth(api_key))
    if up.status_code == 400:  # refused at upload, naming the line
        assert "line 1" in up.get_json()["error"]["message"], up.get_json()
        return
    assert up.status_code == 201, up.get_data(as_text=True)
    resp = client.post("/v1/batches", json={"input_file_id": up.get_json()["id"], "endpoint": "/v1/completions",
                                            "completion_window": "24h"}, headers=_auth(api_key))
    assert resp.status_code == 400 and "line 1" in resp.get_json()["error"]["message"], resp.get_data(as_text=True)
