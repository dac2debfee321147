"""Schemathesis against the generated OpenAPI document: every check, thousands of generated cases
over every route, with a valid API key and with none; not one 5xx.

The platform runs for real (Redis, S3, gunicorn, an inference worker), with small caps on tokens,
choices and rows so that each valid request the fuzzer sends is cheap to serve.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = Path(__file__).with_name("schemathesis.toml")
CASES_PER_ROUTE = 40


@pytest.fixture(scope="module")
def fuzzed(make_module_platform):
    p = make_module_platform("fuzz")
    p.env.update({
        "AIGC_RATE_LIMIT_PER_MINUTE": "0", "AIGC_MAX_OPEN_JOBS": "0",  # the fuzzer is one busy key
        "AIGC_MAX_NEW_TOKENS": "16", "AIGC_MAX_CHOICES": "2", "AIGC_MAX_CAMPAIGN_ROWS": "20",
        "AIGC_MAX_PROMPT_CHARS": "2000", "AIGC_SYNC_TIMEOUT_S": "60",
        # Webhook URLs are bound to one on loopback (below): allowed here, so none is looked up in DNS.
        "AIGC_WEBHOOK_ALLOW_PRIVATE": "true",
    })
    p.start_web()
    # Inference and campaign finalizing run; training jobs the fuzzer manages to queue just wait.
    p.start_worker(queues="inference,default")
    return p


def _known_ids(p, key: str) -> dict[str, str]:
    """Things that exist, for the fuzzer to find: without them every route under an id is a 404."""
    from tests.integration.test_finetune import corpus_bytes

    api = p.api(key)
    upload = api.upload(corpus_bytes())
    assert upload.status_code == 201
    job = api.wait(api.submit({"model": "builtin:tiny-gpt2", "prompt": "Hi", "max_new_tokens": 4})["id"])
    assert job["status"] == "succeeded"
    campaign = api.post("/v1/campaigns", json={"rows": [{"product": "tea", "audience": "all"}],
                                               "template": "Ad for {product}:", "model": "builtin:tiny-gpt2"})
    assert campaign.status_code == 202
    from tests.integration.test_openapi_responses import _batch_file

    batch = api.post("/v1/batches", json={"input_file_id": _batch_file(api), "endpoint": "/v1/completions",
                                          "completion_window": "24h"})
    assert batch.status_code == 200, batch.text
    return {"job_id": job["id"], "file_id": upload.json()["id"], "campaign_id": campaign.json()["id"],
            "batch_id": batch.json()["id"]}


def _config(tmp_path: Path, ids: dict[str, str]) -> Path:
    """The checked-in settings, and where a generated value should often be a real one."""
    lines = [CONFIG.read_text(), "[parameters]"]
    for name, value in ids.items():
        lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.8 }}')
    lines += ['"path.name" = { dictionary = "artifact", probability = 0.8 }',
              '"body.model" = { dictionary = "model", probability = 0.7 }',
              '"body.input.model" = { dictionary = "model", probability = 0.7 }',
              '"body.training_file" = { dictionary = "file_id", probability = 0.7 }',
              '"body.input.training_file" = { dictionary = "file_id", probability = 0.7 }',
              # Every generated webhook URL is this one (nothing listens): no test reaches past 127.0.0.1.
              '"body.webhook_url" = { dictionary = "webhook", probability = 1.0 }']
    values = {**{n: [v] for n, v in ids.items()}, "artifact": ["output.json", "output.jsonl"],
              "model": ["builtin:tiny-gpt2", "builtin:ad-writer"], "webhook": ["http://127.0.0.1:9/hook"]}
    for name, entries in values.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(entries)}"]
    path = tmp_path / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(p, tmp_path: Path, config: Path, name: str, headers: list[str]) -> dict:
    report = tmp_path / f"{name}.json"
    args = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
            p.web_url + "/v1/openapi.json", "--checks", "all", "--max-examples", str(CASES_PER_ROUTE),
            "--phases", "examples,coverage,fuzzing", "--seed", "20261204", "--workers", "2",
            "--request-timeout", "90", "--no-shrink", "--report", "json", "--report-json-path", str(report)]
    for header in headers:
        args += ["--header", header]
    done = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-12000:] + done.stderr[-3000:]
    return json.loads(report.read_text())


def test_every_check_passes_with_a_key_and_without(fuzzed, tmp_path):
    key = fuzzed.create_key("fuzzer")
    config = _config(tmp_path, _known_ids(fuzzed, key))
    runs = {"with a key": _run(fuzzed, tmp_path, config, "with-key", [f"Authorization: Bearer {key}"]),
            "without": _run(fuzzed, tmp_path, config, "without-key", [])}
    for name, report in runs.items():
        assert report["operations"]["tested"] == report["operations"]["total"] >= 29, (name, report["operations"])
        assert report["failures"] == [] and report["errors"] == [], (name, report["failures"], report["errors"])
    generated = {name: r["test_cases"]["generated"] for name, r in runs.items()}
    assert generated["with a key"] >= 2000 and generated["without"] >= 1000, generated
    # The known ids and models got the fuzzer past the 404s into the routes' own checks.
    accepted = sum(rate["accepted"] for op in runs["with a key"]["valid_rates"].values() for rate in op.values())
    print(f"schemathesis: {generated} cases, {accepted} schema-valid requests accepted, no failure")
    assert accepted >= 50
