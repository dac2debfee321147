"""Presigned links use the public S3 endpoint when one is set (MinIO behind compose, say)."""

from __future__ import annotations

from core.storage import S3Storage


def test_presigned_links_name_the_public_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = S3Storage("aigc", "artifacts", endpoint_url="http://minio:9000",
                      public_endpoint_url="https://files.example.test")
    url = store.presigned_get("jobs/j1/out.json", 60)
    assert url.startswith("https://files.example.test/aigc/artifacts/jobs/j1/out.json?")
    assert "X-Amz-Signature=" in url
    internal = S3Storage("aigc", "artifacts", endpoint_url="http://minio:9000")
    assert internal.presigned_get("jobs/j1/out.json", 60).startswith("http://minio:9000/")
