"""A fresh server's first visitor sees the page's heading and menu at once, not a blank page while
torch loads: measured in Chromium from the navigation's start (benchmarks/first_paint.py)."""

from __future__ import annotations

import pytest

from benchmarks.first_paint import visit
from tests.helpers import ARTIFACTS, ROOT

pytestmark = pytest.mark.slow

FIRST_HEADING_S = 5.0  # generous: about 1 s on a quiet 2-core machine; a blank page until torch loads took 9.5 s


@pytest.mark.parametrize("path", ["/live"])
def test_the_first_visit_to_a_fresh_server_shows_the_heading_at_once(browser, path):
    marks = visit(browser, ROOT, path, busy=False, log=ARTIFACTS / "streamlit_server_first_paint.log")
    print(f"\nfirst visit to a fresh server, {path}: {marks}")
    assert marks["heading"] < FIRST_HEADING_S, marks
    assert marks["nav"] < FIRST_HEADING_S, marks
    assert marks["finished"] >= marks["heading"], marks  # the engine loaded after the heading was on screen
