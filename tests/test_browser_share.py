"""Share links, the guided tour and the presenter view in a real browser (Debian's Chromium through
Playwright, as tests/test_browser.py; never downloads a browser).

A run set by hand on the live page, its share link opened in a new browser context (a new
session): the same settings, and Run gives the same numbers. A link with bad settings: one warning
each, the page works. Each scenario from a click on the tour page to its drawn charts, timed
(artifacts/precomputed_timings_browser.json). The presenter view: sidebar closed, settings folded,
larger text (artifacts/screenshots/<n>_presenter.png, numbered after the pages' own).
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from benchmarks.workshop import TIMING_JS as RUN_TIMING_JS  # click and the script's end, in the page
from core.settings.config import NORMS
from core.studies.experiments import SETUPS
from core.studies.presets import PRESETS
from tests.helpers import ARTIFACTS, CHARTS, PAGES, url_path

pytestmark = pytest.mark.slow
SHOTS = ARTIFACTS / "screenshots"

VIEWPORT = {"width": 1400, "height": 1000}
RUN_TIMEOUT_MS = 240_000
MARK = '[data-testid="stVegaLiteChart"] svg g.role-mark path'

# In the page: when the scenario's link was clicked and when the first chart mark appeared.
TIMING_JS = """
() => {
  const t = window.__timing = {};
  document.addEventListener('click', e => {
    if (e.target.closest('[class*="st-key-tour-"] a')) t.click = performance.now();
  }, true);
  new MutationObserver(() => {
    if (t.click !== undefined && t.first === undefined && document.querySelector('MARK')) t.first = performance.now();
  }).observe(document.body, {subtree: true, childList: true});
}
""".replace("MARK", MARK.replace("'", '"'))


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    yield context.new_page()
    context.close()


def _wait_idle(page, timeout_ms: int = RUN_TIMEOUT_MS):
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)


def expect(locator):
    from playwright.sync_api import expect as playwright_expect  # the module is skipped without playwright

    return playwright_expect(locator)


def _open(page, url: str):
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_selector('[data-testid="stSidebarNav"]', state="attached")  # hidden in the presenter view
    _wait_idle(page, 90_000)


def _run(page):
    """Press Run and wait for the script it starts to end: recorded in the page as it happens (a run
    recalled from the shared store can be over before a poll for the running state would see it)."""
    page.evaluate(RUN_TIMING_JS)
    page.locator('[data-testid="stBaseButton-primaryFormSubmit"]').click()
    page.wait_for_function("window.__timing.done !== undefined", timeout=240_000, polling=100)
    _wait_idle(page)
    page.wait_for_selector(MARK, timeout=30_000)


def _share_link(page) -> str:
    page.locator('[data-testid="stPopover"] button').first.click()
    code = page.locator('[data-testid="stPopoverBody"] [data-testid="stCode"] code')
    code.wait_for()
    link = code.inner_text().strip()
    page.keyboard.press("Escape")
    return link


def _metrics(page) -> list[str]:
    return page.locator('[data-testid="stMetricValue"]').all_inner_texts()


def _no_errors(page):
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def test_a_live_run_set_by_hand_and_its_share_link_agree(server, browser, page):
    _open(page, f"{server}/live")
    page.locator(".st-key-live-steps input").fill("40")
    page.locator(".st-key-live-seed input").fill("9")
    page.locator(".st-key-live-norms button", has_text="BatchNorm (pads masked)").click()
    _run(page)
    page.locator(".st-key-live-log_y label").click()  # a display setting, outside the form
    _wait_idle(page)
    by_hand = _metrics(page)
    link = _share_link(page)
    query = dict(parse_qsl(urlsplit(link).query))
    assert link.startswith(f"{server}/live?")
    assert query["steps"] == "40" and query["seed"] == "9" and query["norms"] == "ln,bn,masked_bn"
    assert query["log_y"] == "1" and query["task"] == "text"  # every setting, defaults included
    address_bar = dict(parse_qsl(urlsplit(page.url).query))
    assert address_bar == {"norms": "ln,bn,masked_bn", "steps": "40", "seed": "9", "log_y": "1"}
    _no_errors(page)

    other = browser.new_context(viewport=VIEWPORT).new_page()  # a new session, as a recipient's
    try:
        _open(other, link)
        other.wait_for_selector('[data-testid="stForm"]')
        _wait_idle(other)
        expect(other.locator(".st-key-live-steps input")).to_have_value("40")
        expect(other.locator(".st-key-live-seed input")).to_have_value("9")
        assert other.locator('[data-testid="stAlertContentWarning"]').count() == 0
        _run(other)
        assert other.locator(".st-key-live-log_y input").is_checked()
        assert _metrics(other)[:-1] == by_hand[:-1]  # all but steps per second
        _no_errors(other)
    finally:
        other.context.close()


# page -> a link's non-default settings, and how each shows: a number box or a slider's value; for
# every page of the menu (a new page fails below until it has its entry)
LINKS = {
    "overview": {"seq": "3", "channel": "2"},
    "tour": {},  # no settings: the link is the bare page
    "live": {"steps": "70", "seed": "4", "x": "tokens"},
    "batch_size": {"steps": "60", "seeds": "3"},
    "padding": {"steps": "80", "seeds": "2"},
    "per_token": {"steps": "90", "seed": "6"},
    "train_vs_inference": {"steps": "110", "seed": "8"},
    "gradients": {"steps": "120", "layers": "4"},
    "fixes": {"steps": "130", "seeds": "2"},
}
NUMBER_BOXES = ("steps", "seed")


def test_every_page_of_the_menu_has_a_link_case():
    assert sorted(LINKS) == sorted(PAGES), {"missing": set(PAGES) - set(LINKS), "extra": set(LINKS) - set(PAGES)}


FORM_PAGES = [p for p in PAGES if p in SETUPS]
QUICK = {"batch_size": {"sizes": "2", "seeds": "1"}, "fixes": {"sizes": "2", "seeds": "1"}, "padding": {"seeds": "1"}}


@pytest.mark.parametrize("name", FORM_PAGES)
def test_every_page_runs_every_norm_on_real_text(server, page, name):
    """A link asking a page for every norm (and, where it has a task, Shakespeare's lines) trains
    them all in the browser and draws its charts with no error."""
    query = {"norms": ",".join(NORMS), "steps": "20", **QUICK.get(name, {})}
    if "task" in SETUPS[name].fields:
        query.update(task="shakespeare", lengths="natural")
    _open(page, f"{server}/{url_path(name)}?" + "&".join(f"{k}={v}" for k, v in query.items()))
    assert page.locator('[data-testid="stAlertContentWarning"]').count() == 0, "every setting was taken"
    page.locator('[data-testid="stBaseButton-primaryFormSubmit"]').click()
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="running"]', timeout=30_000)
    _wait_idle(page)
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": height + 40})  # charts draw when in view
    page.wait_for_timeout(1500)
    drawn = page.eval_on_selector_all(
        '[data-testid="stVegaLiteChart"]',
        "els => els.filter(e => e.querySelector('svg g.role-mark path, canvas')).length",  # large charts: canvas
    )
    assert drawn >= CHARTS[name], (name, drawn)
    _no_errors(page)


def test_a_link_carries_the_task_and_the_page_trains_on_it(server, page):
    """Chinese verses by a link, in Chinese: the form shows the task, Run trains on it, and what the
    models write is Chinese; the screenshot is a new reader's first view of the real-text task."""
    _open(page, f"{server}/live?task=tangshi&lengths=natural&steps=40&lang=zh")
    expect(page.locator(".st-key-live-task input")).to_have_value(re.compile("^唐诗"), timeout=30_000)
    page.locator('[data-testid="stBaseButton-primaryFormSubmit"]').click()
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="running"]', timeout=30_000)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=240_000)
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible(timeout=30_000)
    assert "每个模型写出的文字" in page.locator('[data-testid="stMain"]').inner_text()
    _no_errors(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "live_tangshi_zh.png"), full_page=True)


@pytest.mark.parametrize("name", PAGES)
def test_a_link_sets_each_page(server, page, name):
    query = LINKS[name]
    _open(page, f"{server}/{url_path(name)}?" + "&".join(f"{k}={v}" for k, v in query.items()))
    for key, value in query.items():
        if key in NUMBER_BOXES:
            expect(page.locator(f".st-key-{name}-{key} input")).to_have_value(value, timeout=30_000)
        elif key != "x":  # a result widget: drawn after a run, its value waits in the session
            slider = page.locator(f".st-key-{name}-{key} input[type=range]")  # loaded lazily: a skeleton first
            expect(slider).to_have_value(value, timeout=30_000)
    assert dict(parse_qsl(urlsplit(page.url).query)) == query  # what the page keeps in the address bar
    assert page.locator('[data-testid="stAlertContentWarning"]').count() == 0
    link = dict(parse_qsl(urlsplit(_share_link(page)).query))
    assert query.items() <= link.items()
    _no_errors(page)


def test_a_link_with_bad_settings_warns_and_works(server, page):
    _open(page, f"{server}/batch_size?sizes=3&seeds=0&steps=abc&stesp=5&lr=0.01")
    warnings = page.locator('[data-testid="stAlertContentWarning"]').all_inner_texts()
    assert len(warnings) == 4, warnings
    for name in ("sizes=3", "seeds=0", "steps=abc", "stesp"):
        assert any(name in w for w in warnings), name
    assert dict(parse_qsl(urlsplit(page.url).query)) == {"lr": "0.01"}  # the good one stays
    page.locator('[data-testid="stForm"]').wait_for()
    _no_errors(page)


def test_each_scenario_from_a_click_to_its_precomputed_charts(server, page):
    timings = {}
    for preset in PRESETS:
        _open(page, f"{server}/tour")
        page.evaluate(TIMING_JS)
        page.locator(f".st-key-tour-{preset.id} a").click()
        page.wait_for_selector(MARK, timeout=60_000)
        _wait_idle(page)
        t = page.evaluate("window.__timing")
        timings[preset.id] = round((t["first"] - t["click"]) / 1000, 2)
        page.wait_for_function(
            f"document.querySelectorAll('[data-testid=\"stVegaLiteChart\"]').length >= {CHARTS[preset.page]}"
        )
        assert f"scenario={preset.id}" in page.url
        assert page.get_by_text("Precomputed results").count() == 1
        _no_errors(page)
    out = {
        "click_to_first_chart_s": timings,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    (ARTIFACTS / "precomputed_timings_browser.json").write_text(json.dumps(out, indent=2) + "\n")
    print("\nscenario click to first chart, precomputed (browser):", out)
    # Stored results, not a live run (20-100 s here): the label above says so; the bound only catches a
    # regression on a machine other jobs may load heavily. docs/sharing.md reports the numbers measured.
    assert max(timings.values()) < 15.0, timings


def test_the_presenter_view(server, page):
    _open(page, f"{server}/gradients?scenario=post_ln_init&present=1")
    page.wait_for_selector(MARK, timeout=60_000)
    assert page.locator('[data-testid="stSidebar"][data-collapsed="true"]').count() == 1
    assert page.evaluate("getComputedStyle(document.documentElement).fontSize") == "20px"
    settings = page.locator('[data-testid="stExpander"]', has_text="Settings")
    assert settings.count() == 1 and not page.locator(".st-key-gradients-steps input").is_visible()
    assert "present=1" in page.url
    page.wait_for_timeout(800)
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "screenshots" / f"{len(PAGES) + 2}_presenter.png"))
    _no_errors(page)


def test_the_server_logged_no_exception(server, server_log):
    log = server_log.read_text()
    assert "Traceback" not in log, log[log.index("Traceback") :][:3000]
