"""The soak test, short form: three visitors, two rounds each, on a real ``streamlit run`` server
whose bound on concurrent runs is 1 with a one-second queue, so visitors compete for it. The long
form is a command in docs/reliability.md (``python -m benchmarks.soak --visitors 4 --minutes 3``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
VISITORS, ROUNDS = 3, 2
MAX_GROWTH_MB = 150


def test_short_soak(tmp_path):
    if not os.path.exists("/usr/bin/chromium"):
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("no Chromium at /usr/bin/chromium: apt-get install -y chromium")
        pytest.skip("no Chromium at /usr/bin/chromium")
    pytest.importorskip("playwright.async_api")
    out = tmp_path / "soak.json"
    cmd = [sys.executable, "-m", "benchmarks.soak", "--visitors", str(VISITORS), "--rounds", str(ROUNDS)]
    cmd += ["--steps", "60", "--max-runs", "1", "--queue-wait", "1", "--rest", "3", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    print("\nsoak:", json.dumps(r))
    assert r["runs_started"] == VISITORS * ROUNDS
    # every run completed, was stopped by its visitor, or was refused with the "busy" message
    assert r["runs_completed"] + r["runs_stopped"] + r["runs_refused"] == r["runs_started"], r
    assert r["runs_failed"] == 0 and r["error_elements"] == 0, r["problems"]
    assert r["tracebacks_in_log"] == 0, (ROOT / "artifacts" / "soak_server.log").read_text()[-3000:]
    assert r["page_views"] >= VISITORS * ROUNDS * 3
    assert r["growth_after_warmup_mb"] < MAX_GROWTH_MB, r
