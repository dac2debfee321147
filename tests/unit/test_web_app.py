"""The Flask app: no torch on import, the OpenAPI spec matches the routes, CSRF and sign-in on the pages."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from core.config import Settings
from core.keys import KeyStore
from web import create_app
from web.openapi import build_spec

REPO = Path(__file__).resolve().parents[2]
CSRF_INPUT = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)"')


def test_importing_and_creating_the_app_does_not_import_torch(tmp_path):
    code = (
        "import json, sys\n"
        "import web\n"
        "app = web.create_app()\n"
        "print(json.dumps({'rules': len(list(app.url_map.iter_rules())),"
        " 'heavy': sorted(m for m in ('torch', 'transformers', 'torchvision', 'tokenizers')"
        " if m in sys.modules)}))\n"
    )
    env = {"AIGC_REDIS_URL": "redis://127.0.0.1:1/0", "AIGC_DATA_DIR": str(tmp_path / "data"),
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["rules"] > 5
    assert report["heavy"] == []


# -- the OpenAPI spec --------------------------------------------------------------------------

def _api_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/v1") or rule.rule in ("/healthz", "/readyz")):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower()))
    return routes


def _spec_routes(spec) -> set[tuple[str, str]]:
    return {(path, method) for path, ops in spec["paths"].items() for method in ops}


def test_openapi_lists_exactly_the_api_routes(settings):
    app = create_app(settings)
    routes, documented = _api_routes(app), _spec_routes(build_spec())
    assert ("/v1/jobs", "post") in routes and ("/v1/jobs/{job_id}", "get") in routes
    assert routes - documented == set(), "routes missing from the spec"
    assert documented - routes == set(), "spec paths with no route"


def test_openapi_path_parameters_match_the_path(settings):
    for path, ops in build_spec()["paths"].items():
        in_path = set(re.findall(r"{([^}]+)}", path))
        for method, op in ops.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == in_path, (path, method)


def test_openapi_is_served_and_refs_resolve(settings):
    client = create_app(settings).test_client()
    resp = client.get("/v1/openapi.json")
    assert resp.status_code == 200
    spec = resp.get_json()
    assert spec["openapi"].startswith("3.")
    refs = set(re.findall(r'"\$ref": "#/components/(\w+)/(\w+)"', json.dumps(spec)))
    assert refs
    for section, name in refs:
        assert name in spec["components"][section], (section, name)


# -- pages: CSRF and sign-in ------------------------------------------------------------------

@pytest.fixture
def app(tmp_path, redis_server, redis_client):
    settings = Settings.from_env({
        "AIGC_DATA_DIR": str(tmp_path / "data"),
        "AIGC_MODELS_DIR": str(tmp_path / "models"),
        "AIGC_SECRET_KEY": "unit-test-secret-key-0123456789",
        "AIGC_REDIS_URL": redis_server.url,
    })
    app = create_app(settings, {"TESTING": True})
    yield app
    if "aigc_redis" in app.extensions:
        app.extensions["aigc_redis"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api_key(redis_client) -> str:
    return KeyStore(redis_client).create("alice")


def login_form_token(client) -> str:
    resp = client.get("/login")
    assert resp.status_code == 200
    match = CSRF_INPUT.search(resp.get_data(as_text=True))
    assert match, "no csrf_token hidden input on /login"
    return match.group(1)


def test_healthz(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok"}


def test_login_page_carries_a_csrf_token(client):
    token = login_form_token(client)
    assert len(token) >= 32
    assert login_form_token(client) == token  # one token per session


def test_login_post_without_csrf_token_is_400(client, api_key):
    login_form_token(client)
    resp = client.post("/login", data={"api_key": api_key})
    assert resp.status_code == 400
    assert "CSRF" in resp.get_data(as_text=True)
    assert client.get("/jobs").status_code == 302  # not signed in


def test_login_post_with_a_wrong_csrf_token_is_400(client, api_key):
    login_form_token(client)
    resp = client.post("/login", data={"api_key": api_key, "csrf_token": "forged"})
    assert resp.status_code == 400


def test_new_job_post_without_csrf_token_is_400(client, api_key):
    # The CSRF check runs before the sign-in check, so even an anonymous post is refused with 400.
    assert client.post("/jobs/new", data={"prompt": "hi"}).status_code == 400
    token = login_form_token(client)
    client.post("/login", data={"api_key": api_key, "csrf_token": token})
    resp = client.post("/jobs/new", data={"prompt": "hi", "model": "builtin:tiny-gpt2"})
    assert resp.status_code == 400


@pytest.mark.parametrize("path", ["/finetune/new", "/finetune/ftjob-1/pause", "/finetune/ftjob-1/resume"])
def test_finetune_posts_without_csrf_token_are_400(client, api_key, path):
    token = login_form_token(client)
    client.post("/login", data={"api_key": api_key, "csrf_token": token})
    assert client.post(path, data={"base_model": "builtin:tiny-gpt2"}).status_code == 400


def test_login_with_a_valid_key_then_list_jobs(client, api_key):
    token = login_form_token(client)
    resp = client.post("/login", data={"api_key": api_key, "csrf_token": token})
    assert resp.status_code == 302
    assert urlsplit(resp.headers["Location"]).path == "/jobs"
    page = client.get("/jobs")
    assert page.status_code == 200
    assert "alice" in page.get_data(as_text=True)


def test_login_with_a_wrong_key_is_401_and_signs_nobody_in(client, api_key):
    token = login_form_token(client)
    resp = client.post("/login", data={"api_key": "aigc_wrong", "csrf_token": token})
    assert resp.status_code == 401
    assert client.get("/jobs").status_code == 302


def test_jobs_page_redirects_to_login_when_signed_out(client):
    resp = client.get("/jobs")
    assert resp.status_code == 302
    assert urlsplit(resp.headers["Location"]).path == "/login"


def test_revoking_the_key_signs_the_session_out(client, api_key, redis_client):
    token = login_form_token(client)
    client.post("/login", data={"api_key": api_key, "csrf_token": token})
    assert client.get("/jobs").status_code == 200
    KeyStore(redis_client).revoke("alice")
    assert client.get("/jobs").status_code == 302


def test_login_follows_a_local_next_path(client, api_key):
    token = login_form_token(client)
    resp = client.post("/login?next=/jobs/new", data={"api_key": api_key, "csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"] == "/jobs/new"


def _browser_target(location: str, base: str = "http://localhost/") -> str:
    """Where a browser goes for a Location header: WHATWG URL parsing drops tab/newline and
    reads a backslash as a slash in http(s) URLs."""
    cleaned = re.sub(r"[\t\n\r]", "", location).replace("\\", "/")
    return urlsplit(urljoin(base, cleaned)).netloc


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/x", "/\\evil.example/x",
                                    "evil.example"])
def test_login_never_redirects_off_site(client, api_key, target):
    token = login_form_token(client)
    resp = client.post("/login", query_string={"next": target},
                       data={"api_key": api_key, "csrf_token": token})
    assert resp.status_code == 302
    assert _browser_target(resp.headers["Location"]) == "localhost"


def test_login_never_redirects_off_site_with_a_control_character(client, api_key):
    token = login_form_token(client)
    resp = client.post("/login", query_string={"next": "/\t/evil.example/x"},
                       data={"api_key": api_key, "csrf_token": token})
    assert resp.status_code == 302
    assert _browser_target(resp.headers["Location"]) == "localhost"


def test_local_artifacts_keep_their_stored_content_type(app):
    """A text/csv artifact with a charset is served with one charset, not two (werkzeug adds its own)."""
    from core.storage import artifact_key
    from web.deps import get_storage
    from web.service import artifact_response

    job = {"id": "job_local", "artifacts": [
        {"name": "output.csv", "content_type": "text/csv; charset=utf-8", "bytes": 8},
        {"name": "output.jsonl", "content_type": "application/x-ndjson; charset=utf-8", "bytes": 3}]}
    with app.test_request_context():
        get_storage().put_bytes(artifact_key("job_local", "output.csv"), "a,b\né,1\n".encode(), "text/csv")
        get_storage().put_bytes(artifact_key("job_local", "output.jsonl"), b"{}\n", "application/x-ndjson")
        csv = artifact_response(job, "output.csv")
        jsonl = artifact_response(job, "output.jsonl")
        assert csv.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert jsonl.headers["Content-Type"] == "application/x-ndjson; charset=utf-8"
        assert "output.csv" in csv.headers["Content-Disposition"]
        csv.close()
        jsonl.close()


def test_a_form_upload_refused_with_its_submission_is_not_kept(app, client, api_key):
    """An archive or sheet stored for a form whose other fields are then refused goes with the refusal."""
    import io

    from tests.unit.test_file_checks import make_zip, png
    from web.deps import get_files

    token = login_form_token(client)
    client.post("/login", data={"api_key": api_key, "csrf_token": token})
    token = CSRF_INPUT.search(client.get("/gan").get_data(as_text=True)).group(1)
    resp = client.post("/gan/train", content_type="multipart/form-data", data={
        "csrf_token": token, "dataset": "builtin:digits", "epochs": "0",
        "archive": (io.BytesIO(make_zip({"a/1.png": png(), "b/2.png": png()})), "shapes.zip")})
    assert resp.status_code == 400 and "input.epochs must be &gt;= 1" in resp.get_data(as_text=True)
    token = CSRF_INPUT.search(client.get("/campaigns").get_data(as_text=True)).group(1)
    resp = client.post("/campaigns", content_type="multipart/form-data", data={
        "csrf_token": token, "template": "Ad for {product}", "model": "builtin:tiny-gpt2", "n": "0",
        "max_new_tokens": "8", "temperature": "1", "seed": "0",
        "file": (io.BytesIO(b"product\ntea\n"), "rows.csv")})
    assert resp.status_code == 400
    with app.test_request_context():
        assert get_files().list("alice") == []


def test_the_jobs_list_filters_by_kind_and_status_and_says_what_each_job_is(client, api_key):
    headers = {"Authorization": f"Bearer {api_key}"}
    for prompt in ("Fresh coffee for early risers", "Tea"):
        assert client.post("/v1/jobs", headers=headers, json={"kind": "text.generate", "input": {
            "model": "builtin:tiny-gpt2", "prompt": prompt, "max_new_tokens": 2}}).status_code == 202
    token = login_form_token(client)
    client.post("/login", data={"api_key": api_key, "csrf_token": token})
    page = client.get("/jobs").get_data(as_text=True)
    assert "builtin:tiny-gpt2: Fresh coffee for early risers" in page
    assert 'data-active="true"' in page  # queued jobs (no worker here): the page refreshes itself
    assert "Fresh coffee" in client.get("/jobs?kind=text.generate&status=queued").get_data(as_text=True)
    none = client.get("/jobs?kind=gan.train").get_data(as_text=True)
    assert "Fresh coffee" not in none and "No jobs match these filters" in none
    assert "Fresh coffee" in client.get("/jobs?kind=nonsense").get_data(as_text=True)  # ignored, not a 500


def test_an_unreachable_job_store_is_a_503_with_retry_after(make_settings):
    """Refused here (nothing listens on port 1); a Redis cut off by the network, its packets dropped,
    is the many-hosts test's (tests/integration/test_many_hosts.py)."""
    app = create_app(make_settings(AIGC_REDIS_URL="redis://127.0.0.1:1/0"))
    resp = app.test_client().get("/v1/jobs", headers={"Authorization": "Bearer aigc_whatever"})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    assert resp.get_json()["error"]["code"] == "unavailable"


def test_metrics_count_refusals_and_honour_a_token(make_settings, redis_server, redis_client):
    from prometheus_client.parser import text_string_to_metric_families

    app = create_app(make_settings(AIGC_REDIS_URL=redis_server.url, AIGC_RATE_LIMIT_PER_MINUTE="1",
                                   AIGC_METRICS_TOKEN="scrape-token"))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {KeyStore(redis_client).create('limited')}"}
    assert client.get("/v1/jobs", headers=headers).status_code == 200
    assert client.get("/v1/jobs", headers=headers).status_code == 429
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    resp = client.get("/metrics", headers={"Authorization": "Bearer scrape-token"})
    assert resp.status_code == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(resp.get_data(as_text=True)) for s in f.samples}
    assert samples[("aigc_rate_limited_total", (("limit", "requests_per_minute"),))] == 1
    assert samples[("aigc_workers", (("queue", "inference"),))] == 0
