"""The portal used as a person would: headless Chromium (Debian's) driven by Playwright.

Screenshots go to ``test-artifacts/portal/`` at the repository root. If Chromium cannot
be launched the test fails with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from tests.portal.conftest import Portal

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "portal"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as err:  # the reason goes into the failure
            pytest.fail(f"Chromium at {CHROMIUM} could not be launched: {err}")
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on("console", lambda msg: errors.append(msg.text)
              if "Content Security Policy" in msg.text else None)
    yield opened
    context.close()
    assert errors == [], f"JavaScript errors or CSP violations: {errors}"


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


@pytest.mark.slow
def test_search_open_dataset_and_use_the_event_display(page: Page, live_server: str,
                                                       portal: Portal) -> None:
    page.goto(live_server + "/")
    expect(page.locator("article.hit")).to_have_count(5)
    page.fill("input[name=q]", "sPHENIX")
    page.click("form.search button")
    expect(page.locator("article.hit")).to_have_count(3)
    page.click("section[data-facet=collision_system] >> text=AuAu")
    expect(page.locator("article.hit")).to_have_count(1)
    shot(page, "01-search.png")

    page.goto(live_server + "/?q=e%2Be-+on+the+Z+resonance&mode=semantic")
    expect(page.locator("article.hit").first).to_contain_text("ALEPH")
    shot(page, "02-semantic-search.png")
    page.locator("article.hit h2 a").first.click()
    expect(page.locator("h1")).to_contain_text("ALEPH electron-positron annihilation")
    expect(page.locator("svg.provenance g.node").first).to_be_visible()

    display = page.locator("#event-display")
    expect(display).to_have_attribute("data-mode", "track")
    hits = page.locator("#view-xy circle.hit")
    n = int(display.get_attribute("data-rendered") or 0)
    assert n > 50
    expect(hits).to_have_count(n)
    expect(page.locator("#view-rz circle.hit")).to_have_count(n)
    track_colours = {hits.nth(i).get_attribute("fill") for i in range(0, n, 7)}
    assert len(track_colours) > 2  # one colour per truth track
    page.locator("#event-display").scroll_into_view_if_needed()
    shot(page, "03-dataset-tracks.png")

    page.select_option("#colour-mode", "subsystem")
    expect(display).to_have_attribute("data-mode", "subsystem")
    expect(page.locator("#legend span")).to_have_count(3)  # MVTX, INTT, TPC
    sub_colours = {hits.nth(i).get_attribute("fill") for i in range(n)}
    assert len(sub_colours) == 3
    assert sub_colours != track_colours
    before = page.locator("#event-label").inner_text()
    page.click("#next-event")
    expect(page.locator("#event-label")).not_to_have_text(before)
    shot(page, "04-dataset-subsystems.png")

    page.goto(f"{live_server}/datasets/{portal.ids['sphenix-pp200']}")
    graph = page.locator("svg.provenance")
    for label in ("dataset sphenix-pp200", "run run · step 100", "tracking ari 0.912"):
        expect(graph).to_contain_text(label)
    shot(page, "05-provenance-and-results.png")
    page.click("table.list >> text=tracking-ari")
    expect(page.locator("h1")).to_have_text("tracking-ari")

    page.goto(live_server + "/?q=tracking")  # stemmed: tracks, tracker, tracking results
    expect(page.locator("article.hit")).to_have_count(5)
    expect(page.locator("article.hit").first).to_contain_text("sPHENIX")
    shot(page, "07-search-tracking.png")
    page.goto(f"{live_server}/datasets/{portal.ids['sphenix-pp200']}")
    page.click("svg.provenance g.node.checkpoint")
    expect(page.locator("h1")).to_have_text("run run · step 100")
    expect(page.locator("#checkpoint-results")).to_contain_text("tracking ari 0.912")
    expect(page.locator("#model-card")).to_contain_text("sha256 " + "c" * 64)
    shot(page, "08-checkpoint.png")

    page.goto(f"{live_server}/datasets/{portal.ids['sphenix-pp200-copy']}/curation")
    expect(page.locator(".suggestion[data-field=facility]")).to_contain_text("RHIC")
    shot(page, "06-curation.png")


def test_the_content_security_policy_is_enforced(browser: Browser, live_server: str) -> None:
    context = browser.new_context()
    opened = context.new_page()
    opened.goto(live_server + "/")
    with pytest.raises(PlaywrightError, match="violates the following Content Security"):
        opened.add_script_tag(content="window.injected = 1;")
    assert opened.evaluate("typeof window.injected") == "undefined"
    context.close()
