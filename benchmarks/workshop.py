"""A workshop room presses Run at once: N Chromium visitors on one ``streamlit run`` server.

Run from the repository root::

    python -m benchmarks.workshop --visitors 12              # the same experiment for everyone
    python -m benchmarks.workshop --visitors 12 --distinct   # each visitor its own ?seed=
    python -m benchmarks.workshop --visitors 4 --steps 60 --json out.json

What it does: starts the app headless on a free localhost port (benchmarks.server), opens
the live page in N browser contexts of Debian's Chromium (never a downloaded browser) and, once
every page has loaded, has each visitor press Run at a random moment within the same second (in
order of a shuffled list). Without ``--distinct`` every visitor asks for the live page's default
experiment (``--steps`` changes it for everyone); with it, visitor i asks for ``?seed=i``.

Each page records, with ``performance.now()`` in the page (no polling delay): the click, the first
drawn mark of a live chart, whether it was ever told its place in the queue (and the largest place
it saw), and when its script went idle. A visitor *got results* when its page shows the run's
metrics and its one-line title with the asked settings; *refused* when it says the server is busy;
anything else (an error element, a timeout, no result and no message) is *failed*.

Reported: those counts; each visitor's click-to-results time and, for those whose browser drew a
live point (a chart mark while the run's progress bar shows; how many: ``drew_a_live_point``),
click-to-first-point (median and max); the time until each browser received the first curve data (the driver stamps the websocket
frames carrying the curves' Arrow streams: what the server delivered, before a busy renderer draws
it; how many: ``received_curve_data``); the server's CPU seconds from opening the room's pages to the
last result, page loads included (its process and its children, /proc); its peak RSS; its threads before the room and after it (``--rest`` seconds after the last
visitor left), its job threads then (core.studies.jobs names them for the operating system) and its CPU
seconds in the 3 s after; tracebacks in its log. From the server's log of jobs (core.studies.jobs): how
many trainings the room started and, for distinct experiments, the order in which the server
received them (arrival), the order in which they started, and the order of the clicks (clicks a few
milliseconds apart may arrive in either order: the network and two busy cores decide). ``--baseline`` first measures one visitor alone on the same server
(a different seed, so nothing is recalled), for the side-by-side comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

from benchmarks import server
from core.studies import jobs

PAGE_TIMEOUT_MS = 180_000
RUN_TIMEOUT_MS = 600_000
SLOTS = jobs.env_number("BNLN_MAX_RUNS", jobs.DEFAULT_SLOTS, 1, 64, int)  # the server's, from the same environment

# Records in the page when Run was clicked, the first drawn chart mark (any), the first drawn while the
# progress bar shows (a live point), queue places seen, and when the script went idle again after running.
TIMING_JS = """
() => {
  const t = window.__timing = {places: []};
  const app = document.querySelector('[data-testid="stApp"]');
  document.addEventListener('click', e => {
    if (e.target.closest('[data-testid="stBaseButton-primaryFormSubmit"]')) t.click = performance.now();
  }, true);
  new MutationObserver(() => {
    const now = performance.now();
    if (t.click === undefined) return;
    const mark = document.querySelector('[data-testid="stVegaLiteChart"] svg g.role-mark path');
    if (t.first === undefined && mark) t.first = now;
    // a live point: a chart mark drawn while the run's progress bar is shown (the live charts)
    if (t.live === undefined && mark && document.querySelector('[data-testid="stProgress"]')) t.live = now;
    const bar = document.querySelector('[data-testid="stProgress"]');
    if (t.step === undefined && bar && /step \\d+ of/.test(bar.innerText)) t.step = now;
    const m = bar && bar.innerText.match(/in the queue: (\\d+) of/);
    if (m) t.places.push(Number(m[1]));
    if (app.getAttribute('data-test-script-state') === 'running') t.running = true;
    if (t.running && t.done === undefined && app.getAttribute('data-test-script-state') === 'notRunning') t.done = now;
  }).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
}
"""


async def open_visitor(browser, url: str):
    context = await browser.new_context(viewport={"width": 1300, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    # When the driver receives each websocket frame carrying a chart's data (Arrow streams; the live
    # page sends none before the first point): the server's first point reaching the browser, before
    # the page's busy renderer draws it.
    page.data_frames = []

    def on_socket(ws):
        ws.on("framereceived", lambda payload: _frame(page, payload))

    page.on("websocket", on_socket)
    await page.goto(url)
    await page.wait_for_selector('[data-testid="stForm"]', timeout=PAGE_TIMEOUT_MS)
    await page.wait_for_selector(server.IDLE, timeout=PAGE_TIMEOUT_MS)
    await page.evaluate(TIMING_JS)
    return context, page


ARROW_STREAM = b"\xff\xff\xff\xff"  # an Arrow IPC stream message's continuation marker (Streamlit's chart data)


def _frame(page, payload) -> None:
    """Stamps a websocket frame carrying curve data: an Arrow stream with the history's columns."""
    if isinstance(payload, bytes) and ARROW_STREAM in payload and b"metric" in payload and b"value" in payload:
        page.data_frames.append(time.monotonic())


async def press_and_wait(page, delay: float, steps: int, seed: int | None) -> dict:
    """Press Run after ``delay`` seconds, wait for the outcome and classify it."""
    await asyncio.sleep(delay)
    clicked = time.monotonic()
    await page.locator('[data-testid="stBaseButton-primaryFormSubmit"]').click()
    out: dict = {"clicked": clicked}
    try:
        await page.wait_for_function("window.__timing.done !== undefined", timeout=RUN_TIMEOUT_MS, polling=200)
        await page.wait_for_selector(server.IDLE, timeout=RUN_TIMEOUT_MS)
    except Exception as e:  # never went idle: failed
        out.update(result="failed", why=f"no end: {type(e).__name__}")
        return out
    await server.settled(page)  # the script has ended; its last elements may still be on their way to the page
    timing = await page.evaluate("window.__timing")
    errors = await page.locator(server.ERRORS).count()
    notes = " ".join(await page.locator(server.WARNINGS).all_inner_texts())
    captions = " ".join(await page.locator('[data-testid="stCaptionContainer"]').all_inner_texts())
    metrics = await page.locator(server.METRIC).count()
    asked = f"{steps} steps" in captions and (seed is None or f"seed {seed}" in captions)
    if errors:
        result, why = "failed", (await page.locator(server.ERRORS).first.inner_text())[:200]
    elif "busy" in notes:
        result, why = "refused", ""
    elif metrics and asked:
        result, why = "results", ""
    else:
        result, why = "failed", f"no result, no notice: {' '.join((notes + captions).split())[:200]}"
    if result == "failed":  # evidence: artifacts/workshop/failed_<seed or time>.png
        shots = server.ROOT / "artifacts" / "workshop"
        shots.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(shots / f"failed_{seed if seed is not None else int(clicked * 1000)}.png"))
    out.update(
        result=result,
        why=why,
        first_s=(timing["live"] - timing["click"]) / 1000 if "live" in timing else None,  # a live point
        first_data_s=next((t - clicked for t in page.data_frames if t > clicked), None),
        step_line_s=(timing["step"] - timing["click"]) / 1000 if "step" in timing else None,
        job_s=float(m.group(1)) if (m := re.search(r"· ([\d.]+) s\b", captions)) else None,
        results_s=(timing["done"] - timing["click"]) / 1000,
        queued=bool(timing["places"]),
        max_place=max(timing["places"], default=0),
    )
    return out


async def room(base: str, n: int, distinct: bool, steps: int, seed0: int, rng: random.Random) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=server.CHROMIUM, args=server.CHROMIUM_ARGS)
        try:
            seeds = [seed0 + i if distinct else None for i in range(n)]
            query = [f"?steps={steps}" + (f"&seed={s}" if s is not None else "") for s in seeds]
            opened = await asyncio.gather(*(open_visitor(browser, f"{base}/live{q}") for q in query))
            browsers0 = server.browsers_cpu_seconds()
            delays = sorted(rng.uniform(0.0, 1.0) for _ in range(n))
            order = list(range(n))
            rng.shuffle(order)  # who presses first
            wait = {v: delays[k] for k, v in enumerate(order)}
            results = await asyncio.gather(*(press_and_wait(opened[i][1], wait[i], steps, seeds[i]) for i in range(n)))
            browsers_cpu = server.browsers_cpu_seconds() - browsers0
            for i, r in enumerate(results):
                r["visitor"], r["seed"], r["browsers_cpu_s"] = i, seeds[i], browsers_cpu
            for context, _ in opened:
                await context.close()
        finally:
            await browser.close()
    return results


def summarize(results: list[dict], cpu_s: float, distinct: bool) -> dict:
    got = [r for r in results if r["result"] == "results"]
    firsts = [r["first_s"] for r in got if r.get("first_s") is not None]  # those whose browser drew one live
    ends = [r["results_s"] for r in got]
    lines = [r["step_line_s"] for r in got if r.get("step_line_s") is not None]
    datas = [r["first_data_s"] for r in got if r.get("first_data_s") is not None]
    jobs_s = [r["job_s"] for r in got if r.get("job_s") is not None]
    report = {
        "visitors": len(results),
        "results": len(got),
        "refused": sum(r["result"] == "refused" for r in results),
        "failed": sum(r["result"] == "failed" for r in results),
        "click_to_first_point_s": {"median": _r(firsts, statistics.median), "max": _r(firsts, max)},
        "drew_a_live_point": len(firsts),  # before the results; a starved browser may draw only the final chart
        "click_to_results_s": {"median": _r(ends, statistics.median), "max": _r(ends, max)},
        # the first live chart data received by the browser (driver's clock, from pressing Run)
        "click_to_first_data_s": {"median": _r(datas, statistics.median), "max": _r(datas, max)},
        "received_curve_data": len(datas),  # of those with results: how many browsers the figure above covers
        # the first progress line saying "step N of M": the server's first word on the training
        "click_to_first_step_line_s": {"median": _r(lines, statistics.median), "max": _r(lines, max)},
        "job_s": {"median": _r(jobs_s, statistics.median), "max": _r(jobs_s, max)},  # as its title says
        "server_cpu_s": round(cpu_s, 2),
        "browsers_cpu_s": round(results[0]["browsers_cpu_s"], 2) if results else None,  # all of them, same span
        "saw_queue_place": sum(r.get("queued", False) for r in results),
        "largest_place_seen": max((r.get("max_place", 0) for r in results), default=0),
        "problems": [f"visitor {r['visitor']}: {r['why']}" for r in results if r["result"] == "failed"][:10],
    }
    if distinct and got:
        # First come, first served: the order of the first live points follows the order of the clicks.
        report["_click_order"] = [r["visitor"] for r in sorted(results, key=lambda r: r["clicked"])]
        # With every click in before a run ends, all but the server's slots (BNLN_MAX_RUNS) wait.
        report["expected_to_wait"] = max(0, len(results) - SLOTS)
        report["saw_their_place"] = sum(r["queued"] for r in results)
    return report


BASELINE_SEED = 900  # the visitor alone asks for its own seed: nothing of the room recalled


def _r(values, f):
    return round(f(values), 2) if values else None


def workshop(args) -> dict:
    if not os.path.exists(server.CHROMIUM):
        raise SystemExit(f"no Chromium at {server.CHROMIUM}: apt-get install -y chromium")
    port = server.free_port()
    log_path = Path(args.log)
    proc = server.start_server(port, log_path, {})
    if args.pin:  # the server on the first core (every thread, and those it makes later), browsers on the rest
        for tid in os.listdir(f"/proc/{proc.pid}/task"):
            os.sched_setaffinity(int(tid), {0})
        os.sched_setaffinity(0, set(range(1, os.cpu_count() or 2)))  # this driver, and the browsers it starts
    sampler = server.Sampler(proc.pid)
    sampler.start()
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(args.seed)
    report: dict = {"visitors": args.visitors, "distinct": args.distinct, "steps": args.steps, "cpus": os.cpu_count()}
    report["pinned"] = args.pin
    try:
        if args.baseline:  # one visitor alone, its own experiment (nothing recalled)
            before = server.cpu_seconds(proc.pid)
            alone = asyncio.run(room(base, 1, True, args.steps, BASELINE_SEED, rng))
            report["alone"] = summarize(alone, server.cpu_seconds(proc.pid) - before, False)
            time.sleep(2)
        threads_before, before = server.threads(proc.pid), server.cpu_seconds(proc.pid)
        results = asyncio.run(room(base, args.visitors, args.distinct, args.steps, 100, rng))
        report.update(summarize(results, server.cpu_seconds(proc.pid) - before, args.distinct))
        time.sleep(args.rest)  # the visitors have gone: their sessions' scripts end
        # Threads after the room, against before it (after the baseline's warm-up, if any: torch's
        # pool of intra-op threads is made by the first run and stays).
        report["server_threads"] = {"before": threads_before, "after": server.threads(proc.pid)}
        report["job_threads_after"] = server.job_threads(proc.pid)
        report["server_cpu_s_in_3_s_after"] = server.idle_cpu_seconds(proc.pid)  # a job left training: ~3 s
    finally:
        sampler.stop()
        server.stop_server(proc)
    report["rss_peak_mb"] = round(max(r for _, r in sampler.samples) / 2**20, 1)
    text = log_path.read_text(errors="replace")
    report["tracebacks_in_log"] = text.count("Traceback")
    # What the server did: the room's trainings (one for a room asking for the same experiment), and
    # for distinct ones whether they started in the order they arrived (first come, first served).
    arrived, started = (server.live_seeds(text, e, leave_out=BASELINE_SEED) for e in ("queued", "started"))
    report["trainings_started"] = len(started)
    if args.distinct:
        report["started_in_arrival_order"] = arrived == started
        report["arrival_order"], report["start_order"] = arrived, started
        report["click_order"] = [100 + v for v in report.pop("_click_order")]
    report.pop("_click_order", None)
    return report


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.workshop", description=__doc__.split("\n\n")[0])
    p.add_argument("--visitors", type=int, default=12)
    p.add_argument("--distinct", action="store_true", help="each visitor its own experiment (?seed=i)")
    p.add_argument("--steps", type=int, default=300, help="training steps of the run (300: the live default)")
    p.add_argument("--baseline", action="store_true", help="first measure one visitor alone")
    p.add_argument(
        "--pin",
        action="store_true",
        help="server on core 0, browsers on the others (as if they had their own machines)",
    )
    p.add_argument("--seed", type=int, default=0, help="of the click order and delays")
    p.add_argument("--rest", type=float, default=3.0, help="seconds after the room before counting server.threads")
    server.output_flags(p, "workshop_server.log")
    a = p.parse_args(argv)
    if not 1 <= a.visitors <= 64 or not 1 <= a.steps <= 3000:
        p.error("--visitors must be 1-64 and --steps 1-3000")
    return a


if __name__ == "__main__":
    sys.exit(server.report_main(parse_args, workshop))
