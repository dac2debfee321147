"""Driving the web pages: Debian's Chromium through Playwright, signing in, and axe-core's checks."""

from __future__ import annotations

import os
from importlib import resources

CHROMIUM = "/usr/bin/chromium"
HAVE_CHROMIUM = os.path.exists(CHROMIUM) or bool(os.environ.get("CI"))
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]


def sign_in(page, key: str) -> None:
    page.goto("/")
    assert "/login" in page.url
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    page.wait_for_url("**/jobs")


def axe_source() -> str:
    """axe-core as vendored by the axe-playwright-python wheel (MPL-2.0); nothing is fetched."""
    return (resources.files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")


def serious_axe_violations(page) -> list[str]:
    """axe-core's WCAG 2.1 A and AA rules on the page as it stands: the serious and critical
    violations, one line each (rule, impact, the first offending elements). The context must bypass
    the page's CSP, which would refuse the injected script."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact,
                                       nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    return [f"{v['id']} ({v['impact']}): {', '.join(v['nodes'])}" for v in result
            if v["impact"] in ("serious", "critical")]
