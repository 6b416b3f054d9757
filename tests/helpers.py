"""What several test files share that is not a fixture (the fixtures are in conftest.py): where the
app is, how long one AppTest script run may take, the app's pages as the tests name them (from the
app's one list of pages, ``ui.nav.PAGES``), what each page is expected to draw, and a page opened in
a fresh AppTest session. Imported as ``from tests.helpers import ...`` (tests run as
``python -m pytest`` from the repository root, as the README and .ci/run do)."""

from __future__ import annotations

from pathlib import Path

from ui import nav

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 240  # seconds per AppTest script run: a busy 2-core machine

# The menu (ui.nav.PAGES) in order, each page by its name: its file's stem, which is also its URL
# path, its widgets' key prefix and its key in core.studies.experiments.SETUPS (for the pages with a form).
PATHS = {Path(p.path).stem: p.path for p in nav.PAGES}
PAGES = list(PATHS)
HOME = PAGES[0]  # the default page, served at "/"

# Charts a page draws once it shows results: after its default experiment ran (pages with a Run
# form) or as soon as it opens (the others); the page's record says (ui.nav.PageInfo.charts).
CHARTS = {Path(p.path).stem: p.charts for p in nav.PAGES}


def url_path(page: str) -> str:
    """The page's path in the browser: "" for the default page, else its name."""
    return "" if page == HOME else page


def open_page(page: str, query: dict | None = None):
    """``page`` (a name from PAGES) in a fresh AppTest session, opened through the app's navigation,
    with ``query`` as its URL parameters (what a link carries; none otherwise, as a browser drops
    them on a page change). Asserts that it drew without an exception."""
    from streamlit.testing.v1 import AppTest  # not at import: the browser tests need no AppTest

    assert page in PATHS, f"{page!r} is not a page of the menu (ui.nav.PAGES): {PAGES}"
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if page != HOME:
        at.switch_page(PATHS[page])
    at.query_params.clear()
    at.query_params.update(query or {})
    at.run()
    assert not at.exception, at.exception
    return at


def require_chromium():
    """Skip without Debian's Chromium (fail if REQUIRE_BROWSER is set, as in CI) or Playwright."""
    import os

    import pytest

    if not os.path.exists("/usr/bin/chromium"):
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("no Chromium at /usr/bin/chromium: apt-get install -y chromium")
        pytest.skip("no Chromium at /usr/bin/chromium")
    pytest.importorskip("playwright.async_api")
