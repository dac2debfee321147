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


def _platforms(tmp_path_factory, s3, models_dir):
    """A factory of platforms and the list of those it made, for the fixture that closes them."""
    made = []

    def make(name: str) -> Platform:
        platform = Platform(tmp_path_factory.mktemp(name), s3)
        platform.env["AIGC_MODELS_DIR"] = str(models_dir)
        made.append(platform)
        return platform
    return make, made


def _close(made: list[Platform]) -> None:
    for platform in made:
        platform.close()


# A platform lives only as long as what made it: one left running idles on for the rest of the
# session, and a score of idle web servers, workers and Redis servers slowed the whole suite by half.
@pytest.fixture
def make_platform(tmp_path_factory, s3, models_dir):
    """Platforms of one test, closed when it ends."""
    make, made = _platforms(tmp_path_factory, s3, models_dir)
    yield make
    _close(made)


@pytest.fixture(scope="module")
def make_module_platform(tmp_path_factory, s3, models_dir):
    """Platforms shared by one module's tests, closed after its last."""
    make, made = _platforms(tmp_path_factory, s3, models_dir)
    yield make
    _close(made)


@pytest.fixture(scope="session")
def platform(tmp_path_factory, s3, models_dir):
    """The shared platform: web server and one worker serving every queue."""
    make, made = _platforms(tmp_path_factory, s3, models_dir)
    p = make("shared")
    p.start_web()
    p.start_worker()
    yield p
    _close(made)


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
