"""Every page at a phone's 390 px and a laptop's 1280 px: no sideways scrolling, no serious or
critical axe-core violation (WCAG 2.1 A and AA), and a screenshot of each for a person to look at."""

from __future__ import annotations

import os
import time

import pytest

from tests.integration.pages import HAVE_CHROMIUM, serious_axe_violations, sign_in

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not HAVE_CHROMIUM, reason="Debian chromium is not installed (make test installs it)")]

WIDTHS = {"phone": (390, 844), "laptop": (1280, 800)}


@pytest.fixture(scope="module")
def pages(platform):
    """A key with something on every page: a finished generation and a finished campaign."""
    key = platform.create_key("layout")
    api = platform.api(key)
    job = api.submit({"model": "builtin:tiny-gpt2", "prompt": "A lamp for readers", "max_new_tokens": 8})
    campaign = api.post("/v1/campaigns", json={
        "rows": [{"product": "Lamp", "audience": "readers"}, {"product": "绿茶", "audience": "学生"}],
        "template": "Ad for {product} aimed at {audience}:", "model": "builtin:tiny-gpt2",
        "generation": {"max_new_tokens": 6, "seed": 1}}).json()
    gan = api.submit({"dataset": "builtin:digits", "conditional": True, "nz": 8, "ngf": 8, "ndf": 8, "batch_size": 32,
                      "max_images": 128, "epochs": 2}, kind="gan.train")
    assert api.wait(job["id"])["status"] == "succeeded"
    assert api.wait(gan["id"], timeout_s=120)["status"] == "succeeded"
    for _ in range(200):  # bounded: the campaign is two rows of six tokens
        if api.get(f"/v1/campaigns/{campaign['id']}").json()["status"] == "succeeded":
            break
        time.sleep(0.3)
    return key, {"jobs": "/jobs", "new-job": "/jobs/new", "job-text": f"/jobs/{job['id']}",
                 "job-gan": f"/jobs/{gan['id']}", "campaigns": "/campaigns", "campaign": f"/campaigns/{campaign['id']}",
                 "chat": "/chat", "gan": "/gan", "images": "/images", "finetune": "/finetune/new"}


@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_page_fits_the_screen_and_passes_axe(browser, platform, pages, width, tmp_path):
    key, paths = pages
    shots = os.environ.get("AIGC_SCREENSHOTS") or str(tmp_path)
    w, h = WIDTHS[width]
    context = browser.new_context(base_url=platform.web_url, viewport={"width": w, "height": h}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    problems = []
    try:
        page.goto("/login")
        problems += _check(page, "login", width, shots)
        sign_in(page, key)
        for name, path in paths.items():
            page.goto(path)
            page.wait_for_load_state("load")
            problems += _check(page, name, width, shots)
    finally:
        context.close()
    assert not problems, "\n".join(problems)


def _check(page, name: str, width: str, shots: str) -> list[str]:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    if os.environ.get("AIGC_SCREENSHOTS"):
        page.wait_for_timeout(500)  # for a person to look at: let the progress bar's transition end
    page.screenshot(path=os.path.join(shots, f"{name}-{width}.png"), full_page=True)
    found = [f"{name} at {width}: {v}" for v in serious_axe_violations(page)]
    # Chart labels are SVG text scaled with their chart: at a phone's width they must stay legible.
    tiny = page.evaluate("""() => [...document.querySelectorAll('svg text')]
        .map(t => t.getBoundingClientRect().height).filter(h => h > 0 && h < 9).length""")
    if tiny:
        found.append(f"{name} at {width}: {tiny} chart labels under 9 px tall")
    if overflow > 0:
        # The innermost elements that reach past the right edge: what to fix.
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1
                         && ![...e.children].some(c => c.getBoundingClientRect().right > document.documentElement.clientWidth + 1))
            .slice(0, 4).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : ''))""")
        found.append(f"{name} at {width}: {overflow} px wider than the screen ({', '.join(wide)})")
    return found
