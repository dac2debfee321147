"""Campaigns through real workers: CSV edge cases, variants, row errors, cancel, duplicates, kill -9."""

from __future__ import annotations

import csv
import io
import json

import pytest
import requests

from core.campaigns import CHUNK_ROWS
from tests.harness import wait_for

GEN = {"max_new_tokens": 6, "temperature": 0.8, "seed": 1}
TEMPLATE = "Write an ad for {product} aimed at {audience}:"


def run_campaign(api, body: dict, timeout_s: float = 180) -> dict:
    resp = api.post("/v1/campaigns", json=body)
    assert resp.status_code == 202, resp.text
    cid = resp.json()["id"]

    def finished():
        c = api.get(f"/v1/campaigns/{cid}").json()
        return c if c["status"] in ("succeeded", "failed", "canceled") else None
    return wait_for(finished, timeout_s, f"campaign {cid} to finish", interval_s=0.3)


def artifact(api, campaign: dict, name: str) -> bytes:
    resp = api.get(f"/v1/campaigns/{campaign['id']}/artifacts/{name}", allow_redirects=False)
    assert resp.status_code == 302, resp.text
    download = requests.get(resp.headers["Location"], timeout=10)
    # Each download says how its text is encoded, once.
    assert download.headers["Content-Type"] == ("text/csv; charset=utf-8" if name.endswith(".csv")
                                                else "application/x-ndjson; charset=utf-8")
    return download.content


def jsonl(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().split("\n") if line]


@pytest.mark.parametrize("sheet", [
    "product,audience\nShoes,runners\nTea,students\n",
    "\ufeffproduct,audience\r\nShoes,runners\r\n\r\nTea,students\r\n",
    'product,audience\n"Shoes, trail",runners\n"Tea\nleaves",students\n',
    "product,audience\n绿茶,学生\n咖啡,上班族\n",
], ids=["plain", "bom-crlf-blank", "quoted", "chinese"])
def test_csv_files_of_all_kinds(alice, sheet):
    upload = alice.upload(sheet.encode(), purpose="campaign", filename="sheet.csv")
    assert upload.status_code == 201, upload.text
    done = run_campaign(alice, {"input_file": upload.json()["id"], "template": TEMPLATE,
                                "model": "builtin:tiny-gpt2", "generation": GEN})
    assert done["status"] == "succeeded"
    assert done["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
    rows = list(csv.reader(io.StringIO(sheet.lstrip("\ufeff"))))
    rows = [r for r in rows[1:] if any(r)]
    out_csv = artifact(alice, done, "output.csv")
    assert out_csv.startswith("\ufeff".encode())  # spreadsheet programs then read UTF-8
    table = list(csv.reader(io.StringIO(out_csv.decode("utf-8-sig"))))
    assert table[0] == ["product", "audience", "generated_text"]
    assert [r[:2] for r in table[1:]] == rows
    lines = jsonl(artifact(alice, done, "output.jsonl"))
    assert [(o["row"], o["id"]) for o in lines] == [(0, "0"), (1, "1")]


def test_the_built_in_writer_turns_a_sheet_into_ads(alice):
    """The default model and the form's default template: each cell of the sheet is an ad naming its
    product, without the line break the completion starts with (output.jsonl keeps it)."""
    rows = [{"product": "thermos", "audience": "hikers"}, {"product": "yoga mat", "audience": "students"},
            {"product": "Kestrel rain jacket", "audience": "cyclists"}]
    done = run_campaign(alice, {"rows": rows, "template": "Write a short ad for {product} aimed at {audience}:",
                                "model": "builtin:ad-writer", "generation": {"temperature": 0, "max_new_tokens": 64}})
    assert done["status"] == "succeeded", done
    table = list(csv.reader(io.StringIO(artifact(alice, done, "output.csv").decode("utf-8-sig"))))
    lines = jsonl(artifact(alice, done, "output.jsonl"))
    for row, cells, line in zip(rows, table[1:], lines):
        ad = cells[-1]
        assert row["product"].lower() in ad.lower() and ad == ad.strip() and len(ad.split()) >= 5, table
        assert line["text"].strip() == ad and line["finish_reason"] == "stop"


def test_inline_rows_variants_ids_and_a_row_that_fails_alone(alice):
    rows = [{"sku": f"S{i}", "product": f"item {i}", "audience": "parents"} for i in range(5)]
    rows[3]["product"] = "x" * 1100  # too long for the model's 1,024-token context
    done = run_campaign(alice, {"rows": rows, "template": TEMPLATE, "model": "builtin:tiny-gpt2",
                                "generation": GEN, "n": 2, "id_column": "sku"})
    assert done["status"] == "succeeded"
    assert done["request_counts"] == {"total": 5, "completed": 4, "failed": 1}
    lines = jsonl(artifact(alice, done, "output.jsonl"))
    assert [(o["id"], o["variant"]) for o in lines] == [(f"S{i}", v) for i in (0, 1, 2, 4) for v in (0, 1)]
    [error] = jsonl(artifact(alice, done, "errors.jsonl"))
    assert error["id"] == "S3" and error["error"]["code"] == "prompt_too_long"
    header = next(csv.reader(io.StringIO(artifact(alice, done, "output.csv").decode("utf-8-sig"))))
    assert header == ["sku", "product", "audience", "variant", "generated_text"]


@pytest.mark.parametrize("change,param,fragment", [
    ({"template": "Ad for {product} in {city} for {age}"}, "template", "'age', 'city'"),
    ({"template": "no {} names"}, "template", "''"),
    ({"id_column": "sku"}, "id_column", "sku"),
    ({"rows": []}, "rows", "non-empty"),
    ({"rows": [{"product": {"nested": 1}}]}, "rows[0]", "strings"),
    ({"model": "nope"}, "model", "nope"),
    ({"n": 0}, "n", ">= 1"),
    ({"generation": {"max_new_tokens": 0}}, "generation.max_new_tokens", ">= 1"),
    ({"input_file": "file_nope"}, "input_file", "file_nope"),
    ({"colour": 1}, "colour", "colour"),
])
def test_bad_campaigns_are_400_naming_the_field(alice, change, param, fragment):
    body = {"rows": [{"product": "tea", "audience": "all"}], "template": TEMPLATE,
            "model": "builtin:tiny-gpt2", **change}
    if "input_file" in change:
        body.pop("rows")
    resp = alice.post("/v1/campaigns", json=body)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == param and fragment in error["message"]


def test_campaigns_belong_to_their_owner(alice, bob):
    done = run_campaign(alice, {"rows": [{"product": "tea", "audience": "all"}], "template": TEMPLATE,
                                "model": "builtin:tiny-gpt2", "generation": GEN})
    for path in (f"/v1/campaigns/{done['id']}", f"/v1/campaigns/{done['id']}/artifacts/output.csv"):
        assert bob.get(path).status_code == 404
    assert bob.post(f"/v1/campaigns/{done['id']}/cancel").status_code == 404
    assert done["id"] not in [c["id"] for c in bob.get("/v1/campaigns").json()["data"]]
    assert done["id"] in [c["id"] for c in alice.get("/v1/campaigns").json()["data"]]


def test_every_chunk_delivered_twice_still_gives_each_row_once(platform, alice):
    from workers.celery_app import make_celery
    from core.config import Settings

    rows = [{"product": f"p{i}", "audience": "a"} for i in range(2 * CHUNK_ROWS + 22)]  # 3 chunks
    resp = alice.post("/v1/campaigns", json={"rows": rows, "template": TEMPLATE, "model": "builtin:tiny-gpt2",
                                             "generation": {**GEN, "max_new_tokens": 2}})
    cid = resp.json()["id"]
    celery = make_celery(Settings.from_env(platform.env))
    for index in range(3):
        celery.send_task("campaign.chunk", args=[cid, index])
    done = wait_for(lambda: (c := alice.get(f"/v1/campaigns/{cid}").json())["status"] == "succeeded" and c,
                    180, "the campaign to finish")
    assert done["request_counts"] == {"total": len(rows), "completed": len(rows), "failed": 0}
    lines = jsonl(artifact(alice, done, "output.jsonl"))
    assert [o["row"] for o in lines] == list(range(len(rows)))


def test_cancel_keeps_the_partial_output(make_platform):
    # A platform of its own: the slow chunks hold this worker, not the one every other test shares.
    p = make_platform("campaign-cancel")
    p.start_web()
    p.start_worker()
    alice = p.api(p.create_key("canceller"))
    rows = [{"product": f"p{i}", "audience": "a"} for i in range(CHUNK_ROWS * 6)]
    resp = alice.post("/v1/campaigns", json={"rows": rows, "template": TEMPLATE, "model": "slow-gpt2",
                                             "generation": {**GEN, "max_new_tokens": 8}})
    cid = resp.json()["id"]
    wait_for(lambda: alice.get(f"/v1/campaigns/{cid}").json()["request_counts"]["completed"] >= CHUNK_ROWS, 120,
             "a first chunk to finish")
    assert alice.post(f"/v1/campaigns/{cid}/cancel").json()["status"] == "canceling"
    done = wait_for(lambda: (c := alice.get(f"/v1/campaigns/{cid}").json())["status"] == "canceled" and c,
                    120, "the campaign to stop")
    completed = done["request_counts"]["completed"]
    assert CHUNK_ROWS <= completed < len(rows)
    lines = jsonl(artifact(alice, done, "output.jsonl"))
    assert len(lines) == completed and len({o["row"] for o in lines}) == completed


def test_ten_thousand_rows(platform, alice):
    """Scale: 10,000 rows through one worker (tiny generations keep it to about a minute)."""
    sheet = "sku,product,audience\n" + "".join(f"S{i},item {i % 97},group {i % 13}\n" for i in range(10_000))
    upload = alice.upload(sheet.encode(), purpose="campaign", filename="big.csv")
    assert upload.status_code == 201
    done = run_campaign(alice, {"input_file": upload.json()["id"], "template": "{product} for {audience}:",
                                "model": "builtin:tiny-gpt2", "id_column": "sku",
                                "generation": {"max_new_tokens": 2, "temperature": 0}}, timeout_s=600)
    assert done["request_counts"] == {"total": 10_000, "completed": 10_000, "failed": 0}
    table = list(csv.reader(io.StringIO(artifact(alice, done, "output.csv").decode("utf-8-sig"))))
    assert len(table) == 10_001 and table[1][0] == "S0" and table[-1][0] == "S9999"
