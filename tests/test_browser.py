"""The real app in a real browser: `streamlit run` in a subprocess, Debian's Chromium driven by
Playwright. Every page is opened, its default experiment run, its charts checked for drawn marks
and for the absence of errors; screenshots go to artifacts/screenshots/ and the live page's
click-to-first-point and click-to-complete times to artifacts/browser_timings.json.

Never downloads a browser: without /usr/bin/chromium the test is skipped (fails if REQUIRE_BROWSER is set, as in CI).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest

from benchmarks.workshop import TIMING_JS  # click, first chart mark and end, timed in the page
from core.studies.experiments import SETUPS
from tests.helpers import ARTIFACTS, CHARTS, PAGES, url_path

pytestmark = pytest.mark.slow

SHOTS = ARTIFACTS / "screenshots"
RUN_TIMEOUT_MS = 240_000  # one default experiment, on a busy 2-core machine
VIEWPORT = {"width": 1400, "height": 1000}


def shot(page: str) -> str:
    """A page's screenshot name: its place in the menu, then its name (1_overview, 2_tour, ...)."""
    return f"{PAGES.index(page) + 1}_{page}"


def _wait_idle(page, timeout_ms: int = RUN_TIMEOUT_MS):
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)


def _run_form(page):
    """Click Run, wait for the job to start (its Stop button) and for the script to finish."""
    page.locator('[data-testid="stBaseButton-primaryFormSubmit"]').click()
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="running"]', timeout=30_000)
    _wait_idle(page)


def _drawn_charts(page) -> int:
    """Charts whose SVG holds at least one drawn mark (a line, a dot, a cell), or drawn on a canvas
    (Streamlit draws a chart with many marks, such as a causality map of long sentences, on a canvas)."""
    return page.eval_on_selector_all(
        '[data-testid="stVegaLiteChart"]',
        "els => els.filter(e => e.querySelector('svg g.role-mark path') || "
        "[...e.querySelectorAll('canvas')].some(c => c.width > 0 && c.height > 0)).length",
    )


def _screenshot(page, name: str):
    """The whole page: the main area scrolls inside the app, so grow the viewport to its height."""
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], height + 40)})
    page.wait_for_timeout(500)  # let vega lay out at the new size
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size(VIEWPORT)


def _assert_app_navigation(page):
    """The app's own menu (st.navigation), not Streamlit's legacy list of files."""
    links = page.locator('[data-testid="stSidebarNavLink"]')
    assert links.count() == len(PAGES)
    assert "Live comparison" in page.locator('[data-testid="stSidebarNav"]').inner_text()


def _assert_no_errors(page):
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]'
    ).first.inner_text()
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.first.inner_text()


@contextmanager
def _live(browser, url: str):
    """The live page at ``url`` in a new browser context (closed afterwards), once its form has
    loaded and its script is idle."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_selector('[data-testid="stForm"]', timeout=90_000)
        _wait_idle(page, 90_000)
        yield page
    finally:
        context.close()


def test_deep_link_then_stop_keeps_the_partial_run(server, browser):
    """First visit to a fresh server through a deep link (/live) gets the real app (its navigation
    and layout); a long run stopped once its chart has drawn shows what was trained, flagged.
    Runs first in this file, while the server is fresh."""
    with _live(browser, f"{server}/live") as page:
        _assert_app_navigation(page)
        page.locator(".st-key-live-steps input").fill("3000")
        page.locator(".st-key-live-seed input").fill("7")  # settings no other test ran: no stored result
        page.locator('[data-testid="stBaseButton-primaryFormSubmit"]').click()
        page.wait_for_selector('[data-testid="stVegaLiteChart"] svg g.role-mark path', timeout=60_000)
        page.wait_for_timeout(1500)
        page.locator(".st-key-live-stop button").first.click()
        page.wait_for_selector('[data-testid="stAlertContentWarning"]', timeout=60_000)
        _wait_idle(page)
        assert "Stopped" in page.locator('[data-testid="stAlertContentWarning"]').first.inner_text()
        assert page.locator(".st-key-live-stop").count() == 0
        page.wait_for_timeout(800)
        assert _drawn_charts(page) >= 2
        _assert_no_errors(page)
        _screenshot(page, f"{shot('live')}_stopped")


@pytest.mark.parametrize("name", PAGES)
def test_page_runs_its_default_experiment(server, browser, name):
    """Every page of the menu (ui.nav.PAGES); one with a Run form (core.studies.experiments.SETUPS) runs its
    default experiment; then the page has drawn its charts (tests/helpers.CHARTS) and no error."""
    path, has_form, n_charts = url_path(name), name in SETUPS, CHARTS[name]
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.goto(f"{server}/{path}")
        page.wait_for_selector('[data-testid="stApp"]')
        _wait_idle(page, 90_000)
        page.wait_for_selector('[data-testid="stSidebarNav"]')
        _assert_app_navigation(page)
        timing = None
        if has_form:
            page.wait_for_selector('[data-testid="stForm"]')
            if path == "live":
                page.evaluate(TIMING_JS)
            _run_form(page)
            if path == "live":
                timing = page.evaluate("window.__timing")
        if n_charts:
            page.wait_for_function(
                "document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] svg g.role-mark path').length > 0",
                timeout=30_000,
            )
        page.wait_for_timeout(800)  # the last charts finish drawing
        _screenshot(page, shot(name))
        _assert_no_errors(page)
        assert _drawn_charts(page) >= n_charts
        if timing is not None:
            _record_timing(timing)
    finally:
        context.close()


# A share link with settings off every default of the live page's form.
SHARED = {"norms": "ln,rms", "batch_size": "4", "lengths": "uniform", "steps": "120", "lr": "0.01", "seed": "7"}


def test_share_link_opens_with_its_settings_and_runs_them(server, browser):
    from playwright.sync_api import expect

    with _live(browser, f"{server}/live?{urlencode(SHARED, safe=',')}") as page:
        expect(page.locator(".st-key-live-steps input")).to_have_value("120", timeout=15_000)
        expect(page.locator(".st-key-live-seed input")).to_have_value("7")
        expect(page.locator(".st-key-live-lengths input").first).to_have_value("uniform")
        thumb = '[data-testid="stSliderThumbValue"]'
        assert page.locator(f".st-key-live-lr {thumb}").all_inner_texts() == ["0.01"]
        assert page.locator(f".st-key-live-batch_size {thumb}").all_inner_texts() == ["4"]
        assert page.locator('.st-key-live-norms button[aria-pressed="true"]').all_inner_texts() == [
            "LayerNorm",
            "RMSNorm",
        ]
        _assert_no_errors(page)
        assert page.locator('[data-testid="stAlertContentWarning"]').count() == 0  # nothing in the link was refused
        _run_form(page)
        caption = " ".join(page.locator('[data-testid="stCaptionContainer"]').all_inner_texts())
        assert "120 steps" in caption and "seed 7" in caption and "batch 4" in caption, caption
        page.wait_for_timeout(800)
        assert _drawn_charts(page) >= 2
        _assert_no_errors(page)
        _screenshot(page, f"{len(PAGES) + 1}_share_link")


def _record_timing(t: dict):
    assert {"click", "first", "done"} <= set(t), t
    out = {
        "page": "live comparison, default settings (BatchNorm vs LayerNorm, 300 steps, batch 2, long-tail lengths)",
        "click_to_first_point_s": round((t["first"] - t["click"]) / 1000, 2),
        "click_to_complete_s": round((t["done"] - t["click"]) / 1000, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    (ARTIFACTS / "browser_timings.json").write_text(json.dumps(out, indent=2) + "\n")
    print("\nbrowser timings:", out)
    assert out["click_to_first_point_s"] < out["click_to_complete_s"]


def test_the_server_logged_no_exception(server, server_log):
    """Last in this file: an exception in any script run above (also one no page showed, as in a
    rerun racing an interrupted run) is in the server's log."""
    log = server_log.read_text()
    assert "Traceback" not in log, log[log.index("Traceback") :][:3000]
