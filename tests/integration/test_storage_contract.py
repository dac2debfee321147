"""One storage contract, two backends: a local directory and S3 (moto over HTTP), presigned GET included."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from werkzeug.serving import make_server

from core.config import Settings
from core.errors import InvalidInput, NotFound
from core.net import free_port
from core.storage import LocalStorage, S3Storage
from web import create_app


@pytest.fixture
def local_storage(tmp_path, redis_server):
    """A local store whose signed links are served over HTTP by the real app."""
    port = free_port()
    settings = Settings.from_env({
        "AIGC_DATA_DIR": str(tmp_path / "data"), "AIGC_REDIS_URL": redis_server.url,
        "AIGC_STORAGE_URL": (tmp_path / "store").as_uri(), "AIGC_SECRET_KEY": "contract-test-secret",
        "AIGC_PUBLIC_URL": f"http://127.0.0.1:{port}"})
    server = make_server("127.0.0.1", port, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LocalStorage(tmp_path / "store", settings.secret_key, settings.public_url)
    server.shutdown()
    thread.join(10)


@pytest.fixture
def s3_storage(s3, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    s3.create_bucket("contract")
    return S3Storage("contract", "some/prefix", endpoint_url=s3.endpoint)


@pytest.fixture(params=["local", "s3"])
def storage(request):
    return request.getfixturevalue(f"{request.param}_storage")


def test_put_get_exists_delete(storage):
    assert storage.put_bytes("jobs/j1/a.txt", "héllo".encode(), "text/plain") == 6
    assert storage.get_bytes("jobs/j1/a.txt") == "héllo".encode()
    assert storage.exists("jobs/j1/a.txt") and not storage.exists("jobs/j1/b.txt")
    storage.put_bytes("jobs/j1/a.txt", b"second")  # overwrite, never a second copy
    assert storage.get_bytes("jobs/j1/a.txt") == b"second"
    storage.delete("jobs/j1/a.txt")
    assert not storage.exists("jobs/j1/a.txt")
    with pytest.raises(NotFound):
        storage.get_bytes("jobs/j1/a.txt")
    storage.delete("jobs/j1/a.txt")  # deleting twice is fine


def test_list_by_prefix(storage):
    for key in ("jobs/j2/x.bin", "jobs/j2/sub/y.bin", "jobs/j3/z.bin"):
        storage.put_bytes(key, b"123")
    listed = storage.list("jobs/j2")
    assert [o.key for o in listed] == ["jobs/j2/sub/y.bin", "jobs/j2/x.bin"]
    assert all(o.bytes == 3 for o in listed)
    assert storage.list("jobs/nothing") == []


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/path", "a//b", "a/../b", "", "a/.hidden", "a b"])
def test_keys_that_could_escape_are_refused(storage, key):
    with pytest.raises(InvalidInput):
        storage.put_bytes(key, b"x")


def test_presigned_get_over_http(storage):
    storage.put_bytes("jobs/j4/out.json", b'{"ok": true}', "application/json")
    url = storage.presigned_get("jobs/j4/out.json", expires_s=60)
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200 and resp.content == b'{"ok": true}'


def test_local_links_are_signed_and_expire(local_storage):
    # (moto does not verify S3 signatures, so this half of the contract is checked locally only.)
    local_storage.put_bytes("jobs/j5/out.json", b"{}")
    url = local_storage.presigned_get("jobs/j5/out.json", expires_s=1)
    tampered = url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")
    assert requests.get(tampered, timeout=10).status_code == 404
    time.sleep(2.1)
    assert requests.get(url, timeout=10).status_code == 404


def test_check_reports_reachable(storage):
    storage.check()
