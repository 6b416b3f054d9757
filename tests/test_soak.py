"""The soak test, short form: four visitors, two rounds each (one shared experiment, then one each,
with a Stop and a visitor leaving mid-run in each round), on a real ``streamlit run`` server that
runs one job at a time and gives up on a job after 5 s without a watcher. The long form is a command
in docs/reliability.md (``python -m benchmarks.soak --visitors 4 --minutes 5``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import require_chromium

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
VISITORS, ROUNDS = 4, 2
MAX_GROWTH_MB = 150


def test_short_soak(tmp_path):
    require_chromium()
    out = tmp_path / "soak.json"
    cmd = [sys.executable, "-m", "benchmarks.soak", "--visitors", str(VISITORS), "--rounds", str(ROUNDS)]
    # A 5 s watch timeout: a watcher's heartbeat is its page's script, which two busy cores (the suite's
    # other worker, four browsers, the training) can hold back for 2 s, and a job is stopped when all
    # its watchers fall silent that long.
    cmd += ["--steps", "60", "--max-runs", "1", "--watch-timeout", "5", "--rest", "8", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    print("\nsoak:", json.dumps(r))
    assert r["runs_started"] == VISITORS * ROUNDS
    # every run completed, was stopped by its visitor or left by it: none refused (the queue waits)
    assert r["runs_left_mid_run"] == ROUNDS  # one visitor in four leaves, each round
    assert r["runs_completed"] + r["runs_stopped"] + r["runs_left_mid_run"] == r["runs_started"], r
    assert r["runs_refused"] == 0 and r["runs_completed"] >= VISITORS, r
    assert r["server_cpu_s_in_3_s_after_rest"] < 0.5, r  # nothing left training after everyone left
    assert r["job_threads_after_rest"] == 0, r  # no job thread left behind
    jobs = r["jobs"]  # the server's own log: every job it queued ended (some before starting), none failed
    assert jobs["open"] == 0 and jobs["queued"] == sum(jobs["ended"].values()) >= jobs["started"], jobs
    assert "failed" not in jobs["ended"] and jobs["ended"]["done"] >= ROUNDS, jobs
    assert r["runs_failed"] == 0 and r["error_elements"] == 0, r["problems"]
    assert r["tracebacks_in_log"] == 0, (ROOT / "artifacts" / "soak_server.log").read_text()[-3000:]
    assert r["page_views"] >= VISITORS * ROUNDS * 3
    assert r["growth_after_warmup_mb"] < MAX_GROWTH_MB, r
