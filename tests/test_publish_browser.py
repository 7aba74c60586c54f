"""The published page in a real browser (Debian's Chromium driven by Playwright), opened from disk:
the search box filters offline, and a hostile name is shown as text without running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from riskengine.supervision.policy import load_policy
from riskengine.workflows.publish import publish
from tests.share_helpers import uscc
from tests.test_publish import AS_OF, HOSTILE, lake  # noqa: F401  (the module's lake fixture)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_search_filters_offline_and_hostile_names_stay_text(
    browser: Browser,
    lake: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    publish(lake, AS_OF, tmp_path, load_policy())
    context = browser.new_context(offline=True)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto((tmp_path / "index.html").as_uri())
    rows = page.locator("#records tbody tr")
    expect(rows).to_have_count(6)
    page.get_by_role("searchbox").fill(uscc(4))
    expect(page.locator("#records tbody tr:visible")).to_have_count(1)
    expect(page.locator("#count")).to_have_text("1")
    page.get_by_role("searchbox").fill("")
    expect(page.locator("#records tbody tr:visible")).to_have_count(6)
    expect(page.get_by_text(HOSTILE).first).to_be_visible()  # shown as its literal text
    assert dialogs == []  # nothing in a name ran
    assert [u for u in requests if not u.startswith("file:")] == []  # no asset fetched
    context.close()
