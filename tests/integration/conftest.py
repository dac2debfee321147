"""Integration fixtures: moto's S3 server, and platforms made of real Redis, workers and gunicorn."""

from __future__ import annotations

import pytest

from tests.harness import Platform, S3Server, save_model_dir

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def s3():
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """Local models for AIGC_MODELS_DIR; `slow-gpt2` is big enough that a job runs for seconds."""
    root = tmp_path_factory.mktemp("models")
    save_model_dir(root / "slow-gpt2")
    return root


@pytest.fixture(scope="session")
def make_platform(tmp_path_factory, s3, models_dir):
    made = []

    def make(name: str) -> Platform:
        platform = Platform(tmp_path_factory.mktemp(name), s3)
        platform.env["AIGC_MODELS_DIR"] = str(models_dir)
        made.append(platform)
        return platform

    yield make
    for platform in made:
        platform.close()


@pytest.fixture(scope="session")
def platform(make_platform):
    """The shared platform: web server and one worker serving every queue."""
    p = make_platform("shared")
    p.start_web()
    p.start_worker()
    return p


@pytest.fixture(scope="session")
def alice(platform):
    return platform.api(platform.create_key("alice"))


@pytest.fixture(scope="session")
def bob(platform):
    return platform.api(platform.create_key("bob"))


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium driven by Playwright (the browser tests skip where it is missing)."""
    from playwright.sync_api import sync_playwright

    from tests.integration.pages import CHROMIUM, LAUNCH_ARGS

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()
