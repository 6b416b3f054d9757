"""Shared fixtures. AppTest: an empty shared result store and the live page opened in a fresh
session. Browser files: a `streamlit run` server per test module and Debian's Chromium driven by
Playwright (never a downloaded browser: without /usr/bin/chromium the tests are skipped, or fail if
REQUIRE_BROWSER is set, as in CI)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
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
def empty_store():
    """No result recalled from an earlier test: every Run trains."""
    from ui import runner

    runner._shared_slot.clear()


@pytest.fixture
def live_page(empty_store):
    """The Live page, opened through the app's navigation in a new AppTest session."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=240)
    at.run()
    at.switch_page("app_pages/live.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("streamlit did not become healthy")


@pytest.fixture(scope="module")
def server_log(request) -> Path:
    """Where the module's server writes its output: artifacts/streamlit_server_<module>.log."""
    return ARTIFACTS / f"streamlit_server_{Path(request.module.__file__).stem}.log"


@pytest.fixture(scope="module")
def server(server_log):
    """A fresh `streamlit run streamlit_app.py` on a free localhost port, for one test module."""
    port = _free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(server_log, "w")  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true"]
    cmd += ["--server.port", str(port), "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


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
