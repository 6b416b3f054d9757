"""First paint on a fresh server: how long a visitor stares at a blank page.

    python -m benchmarks.first_paint                          # / and /live, quiet and busy, 3 rounds
    python -m benchmarks.first_paint --app /tmp/baseline      # the same against another checkout
    python -m benchmarks.first_paint --rounds 1 --paths / --json artifacts/first_paint.json

Each visit starts a new ``streamlit run streamlit_app.py`` (headless, no file watcher, as deployed),
waits for its health check, then opens the path in a new Chromium context (Debian's
/usr/bin/chromium through Playwright) and records, with ``performance.now()`` in the page (time
since the navigation began, no polling delay):

* ``heading``: the first page heading (an ``h1``) is on screen;
* ``nav``: the app's navigation menu is on screen;
* ``finished``: the script has run to the end (the app's script state turned back to notRunning
  after running) and the page's own content is there.

"busy": a second process spins on one core during the visit (a neighbour, a second visitor's
run); "quiet": nothing else runs. Rounds alternate the conditions and paths, so a slow minute of
the machine does not fall on one of them; the report gives the median and range of each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from benchmarks.server import CHROMIUM, CHROMIUM_ARGS, free_port, start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]
FINISHED_TIMEOUT_MS = 120_000

# Installed before any page script runs: timestamps of the first heading, the first menu link and
# the end of the first script run. performance.now() counts from the start of the navigation.
TIMING_JS = """
(() => {
  const t = window.__paint = {};
  const look = () => {
    const now = performance.now();
    if (t.heading === undefined && document.querySelector('[data-testid="stMain"] h1')) t.heading = now;
    if (t.nav === undefined && document.querySelector('[data-testid="stSidebarNavLink"]')) t.nav = now;
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app) return;
    const state = app.getAttribute('data-test-script-state');
    if (state === 'running') t.running = true;
    if (t.running && t.finished === undefined && state === 'notRunning') t.finished = now;
  };
  new MutationObserver(look).observe(document, {subtree: true, childList: true, attributes: true});
})();
"""


@contextmanager
def load(busy: bool):
    """One core kept busy by a spinning process while the block runs (nothing if not ``busy``)."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        yield
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()


def visit(browser, app: Path, path: str, busy: bool, log: Path) -> dict[str, float]:
    """Seconds from navigation start to heading, menu and finished page, on a freshly started server."""
    port = free_port()
    proc = start_server(port, log, {}, root=app)
    try:
        with load(busy):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.add_init_script(TIMING_JS)
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}{path}")
            page.wait_for_function(
                "() => window.__paint && window.__paint.finished !== undefined", timeout=FINISHED_TIMEOUT_MS
            )
            marks = page.evaluate("window.__paint")
            context.close()
    finally:
        stop_server(proc)
    return {k: round(marks[k] / 1000, 2) for k in ("heading", "nav", "finished") if k in marks}


def summarise(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for key in ("heading", "nav", "finished"):
        values = [s[key] for s in samples if key in s]
        if values:
            out[key] = {"median": round(statistics.median(values), 2), "min": min(values), "max": max(values)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.first_paint", description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", type=Path, default=ROOT, help="the checkout to serve (default: this one)")
    parser.add_argument("--paths", default="/,/live", help="comma list of URL paths (default /,/live)")
    parser.add_argument("--rounds", type=int, default=3, help="visits per path and condition (default 3)")
    parser.add_argument("--conditions", default="quiet,busy", help="comma list of quiet,busy")
    parser.add_argument("--json", metavar="PATH", help="also write the report here")
    a = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    paths = [p.strip() for p in a.paths.split(",") if p.strip()]
    conditions = [c.strip() for c in a.conditions.split(",") if c.strip()]
    samples: dict[str, list[dict[str, float]]] = {f"{p} {c}": [] for p in paths for c in conditions}
    log = ROOT / "artifacts" / "first_paint_server.log"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for r in range(a.rounds):
            for condition in conditions if r % 2 == 0 else conditions[::-1]:
                for path in paths:
                    marks = visit(browser, a.app.resolve(), path, condition == "busy", log)
                    samples[f"{path} {condition}"].append(marks)
                    print(f"round {r + 1} {path} {condition}: {marks}", file=sys.stderr)
                    time.sleep(1)
        browser.close()
    report = {"app": str(a.app.resolve()), "rounds": a.rounds, "results": {k: summarise(v) for k, v in samples.items()}}
    report["samples"] = samples
    text = json.dumps(report, indent=1)
    print(text)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
