"""Shared fixtures (shared constants and helpers: tests/helpers.py). AppTest: an empty shared
result store and the live page opened in a fresh session. Browser files: a `streamlit run` server
per test module and Debian's Chromium driven by Playwright (never a downloaded browser: without
/usr/bin/chromium the tests are skipped, or fail if REQUIRE_BROWSER is set, as in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import ARTIFACTS, open_page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def empty_store(monkeypatch):
    """A fresh job manager for the server (the app's default settings): no result recalled from an
    earlier test and no job of one joined, so every Run trains. A file whose every test needs it
    says so once: ``pytestmark = pytest.mark.usefixtures("empty_store")``."""
    from core.studies import jobs
    from ui import runner

    monkeypatch.setattr(runner, "JOBS", jobs.JobManager())


@pytest.fixture
def live_page(empty_store):
    """The Live page, opened through the app's navigation in a new AppTest session."""
    return open_page("live")


@pytest.fixture(scope="module")
def server_log(request) -> Path:
    """Where the module's server writes its output: artifacts/streamlit_server_<module>.log."""
    return ARTIFACTS / f"streamlit_server_{Path(request.module.__file__).stem}.log"


@pytest.fixture(scope="module")
def server(server_log):
    """A fresh `streamlit run streamlit_app.py` on a free localhost port, for one test module
    (benchmarks.server: headless, no usage statistics, no file watcher)."""
    from benchmarks.server import free_port, start_server, stop_server

    port = free_port()
    proc = start_server(port, server_log, {})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("REQUIRE_BROWSER"):  # set by .ci/run: in CI a missing browser is a failure
            pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
