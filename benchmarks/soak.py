"""Soak test: many visitors on one ``streamlit run`` server, with its memory sampled.

Run from the repository root::

    python -m benchmarks.soak --visitors 4 --minutes 3            # the long form
    python -m benchmarks.soak --visitors 3 --rounds 2 --max-runs 1 --watch-timeout 2 --json out.json

What it does: starts ``streamlit run streamlit_app.py`` headless on a free localhost port (no usage
statistics), then drives ``--visitors`` simulated visitors at once, each a Chromium browser context
(Debian's /usr/bin/chromium through Playwright; never a downloaded browser). Each round a visitor
opens two pages by URL (the overview and one other page, each a fresh session), then opens the live
page by a link that sets a small experiment and presses Run. In odd rounds the experiment is the
visitor's own (``?steps=S&seed=N``, a seed no one else uses); in even rounds every visitor asks for
the same one (a seed of the round, three times as long), so they share one job (core/studies/jobs.py). In
each round one visitor in four presses Stop a second after the run starts, and one in four *leaves*
then (opens the overview instead): ten times as long for a run of its own, so it is under way.
A run ends as *completed* (results shown, titled with the link's steps and seed), *stopped* (the
"Stopped" notice with partial results, or "Stopped before training began" when still queued),
*left*, *refused* (the "server is busy" notice: the queue is full) or *failed* (anything else, e.g. a
timeout; a run's outcome is read once its metrics or a notice have reached the page). Every page is
checked for an exception or error element. After the last visitor and a rest longer than the jobs'
watch timeout, the server's job threads (core.studies.jobs names them for the operating system) and its CPU
time over three seconds say whether any run was left running, and the server's log of jobs says how
many it queued, started and ended (done, stopped, failed) and how many it never ended (lost).

Memory: the server process's resident set size plus its children's, read from /proc every 0.5 s.
Reported: the peak, the RSS when warm-up ended (every visitor finished its first round: imports,
torch, caches and the store of recent results are loaded by then), the final RSS (all visitors
gone, after a short rest), ``growth_after_warmup_mb`` = final - after warm-up, and the RSS at the end
of each quarter of the time after warm-up. A leak (sessions, models, caches that never empty) shows
as growth that keeps climbing; the shared store of recent results (ui/runner.py, 24 entries of a
few MB) fills during the first couple of dozen runs and then holds steady. The server's log is
scanned for tracebacks.

Flags: ``--visitors N`` (4); ``--minutes M`` run rounds until M minutes have passed, or ``--rounds R``
rounds per visitor; ``--steps S`` (100) training steps per run; ``--max-runs K`` and
``--watch-timeout S`` set BNLN_MAX_RUNS / BNLN_WATCH_TIMEOUT_S for the server (default: its own);
``--json [PATH]`` print (or write) the report as JSON; ``--log PATH`` the server's log
(artifacts/soak_server.log).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.server import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ERRORS,
    IDLE,
    METRIC,
    ROOT,
    WARNINGS,
    Sampler,
    free_port,
    idle_cpu_seconds,
    job_tally,
    job_threads,
    output_flags,
    report_main,
    rss_bytes,
    settled,
    start_server,
    stop_server,
)

TOUR = ["batch_size", "padding", "per_token", "train_vs_inference", "gradients"]  # one per round, in turn
RUN_TIMEOUT_MS = 300_000  # one small run on a crowded 2-core machine
PAGE_TIMEOUT_MS = 120_000


# ---------------------------------------------------------------- visitors
@dataclass
class Tally:
    page_views: int = 0
    runs_started: int = 0
    completed: int = 0
    stopped: int = 0
    refused: int = 0
    failed: int = 0
    error_elements: int = 0
    stop_clicks: int = 0
    left: int = 0
    run_seconds: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def _idle(page, timeout=PAGE_TIMEOUT_MS):
    await page.wait_for_selector(IDLE, timeout=timeout)


async def _evidence(page, name: str) -> str:
    """A screenshot (artifacts/soak/NAME.png) and the start of the page's text, for a problem report."""
    shots = ROOT / "artifacts" / "soak"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        text = await page.locator('[data-testid="stMain"]').inner_text()
    except Exception as e:  # the evidence is a courtesy: never let it hide the problem itself
        return f"(no evidence: {type(e).__name__})"
    return " ".join(text.split())[:400]


async def _check_errors(page, tally: Tally, where: str):
    n = await page.locator(ERRORS).count()
    if n:
        tally.error_elements += n
        text = (await page.locator(ERRORS).first.inner_text())[:300]
        tally.problems.append(f"{where}: {text} | {await _evidence(page, f'error_{len(tally.problems)}')}")


async def _view(page, url: str, tally: Tally):
    await page.goto(url)
    await page.wait_for_selector('[data-testid="stApp"]', timeout=PAGE_TIMEOUT_MS)
    await _idle(page)
    tally.page_views += 1
    await _check_errors(page, tally, url)


async def _run_live(page, base: str, n: int, seed: int, stop: bool, tally: Tally, leave: bool = False):
    await _view(page, f"{base}/live?steps={n}&seed={seed}", tally)  # the settings come in by link
    await page.wait_for_selector('[data-testid="stForm"]', timeout=PAGE_TIMEOUT_MS)
    t0 = time.monotonic()
    tally.runs_started += 1
    await page.locator('[data-testid="stBaseButton-primaryFormSubmit"]').click()
    try:
        await page.wait_for_selector('[data-testid="stApp"][data-test-script-state="running"]', timeout=20_000)
    except Exception:  # a run that ended (or was refused) before we looked
        pass
    if leave:  # once the run is under way, go elsewhere: the page's script stops, its heartbeat ends
        await page.wait_for_timeout(1000)
        tally.left += 1
        await _view(page, f"{base}/", tally)
        return
    if stop:  # once the run is under way (its Stop button drawn, a moment of training), press Stop
        try:  # the Stop button, or the run already over (refused, or done before we looked)
            await page.wait_for_selector(f".st-key-live-stop button, {IDLE}", timeout=RUN_TIMEOUT_MS)
            await page.wait_for_timeout(1000)
            button = page.locator(".st-key-live-stop button")
            if await button.count():
                await button.first.click(timeout=5_000)  # gone meanwhile (the run ended): classified below
                tally.stop_clicks += 1
        except Exception as e:  # the run ended (or was refused) before the click: it is classified below
            tally.problems.append(f"stop seed {seed}: {type(e).__name__}")
    try:
        await page.wait_for_selector(".st-key-live-stop", state="detached", timeout=RUN_TIMEOUT_MS)
        await _idle(page, RUN_TIMEOUT_MS)
    except Exception as e:
        tally.failed += 1
        tally.problems.append(f"run seed {seed} did not end: {type(e).__name__}")
        return
    await page.wait_for_timeout(300)
    await _idle(page, RUN_TIMEOUT_MS)
    await settled(page)  # its metrics (or a notice) may still be on their way to the page
    tally.run_seconds.append(time.monotonic() - t0)
    await _check_errors(page, tally, f"live seed {seed}")
    notes = " ".join(await page.locator(WARNINGS).all_inner_texts())
    said = notes + " " + " ".join(await page.locator('[data-testid="stCaptionContainer"]').all_inner_texts())
    if "busy" in notes:
        tally.refused += 1
    elif "before training began" in notes:  # stopped while queued for a slot, or before the first step
        tally.stopped += 1
    elif f"{n} steps" not in said or f"seed {seed}" not in said:  # the run's one-line title: the link's settings
        tally.failed += 1
        tally.problems.append(f"run seed {seed}: not the link's settings | {await _evidence(page, f'seed_{seed}')}")
    elif "Stopped" in notes:
        tally.stopped += 1
    elif await page.locator(METRIC).count():
        tally.completed += 1
    else:
        tally.failed += 1
        tally.problems.append(f"run seed {seed}: no result, no notice | {await _evidence(page, f'seed_{seed}')}")


async def visitor(i: int, browser, base: str, args, deadline: float, warm: list, tally: Tally):
    context = await browser.new_context(viewport={"width": 1300, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        round_ = 0
        while True:
            if args.rounds and round_ >= args.rounds:
                break
            if not args.rounds and round_ > 0 and time.monotonic() >= deadline:
                break
            try:
                await _view(page, f"{base}/", tally)
                await _view(page, f"{base}/{TOUR[(i + round_) % len(TOUR)]}", tally)
                what = (i + round_) % 4  # 2: Stop, 3: leave
                if round_ % 2 == 0:  # the same experiment for everyone in this round: one shared job
                    seed, n = 500 + round_ + 1000 * args.salt, args.steps * 3
                else:  # the visitor's own (a seed no one else uses: trained for real, not recalled)
                    seed, n = 1000 + 100 * i + round_ + 100_000 * args.salt, args.steps * (10 if what >= 2 else 1)
                await _run_live(page, base, n, seed, stop=what == 2, tally=tally, leave=what == 3)
            except Exception as e:
                tally.failed += 1
                tally.problems.append(f"visitor {i} round {round_}: {type(e).__name__}: {str(e)[:200]}")
            if round_ == 0:
                warm.append(time.monotonic())
            round_ += 1
    finally:
        await context.close()


async def drive(base: str, args, sampler: Sampler) -> tuple[list[Tally], float]:
    from playwright.async_api import async_playwright

    tallies = [Tally() for _ in range(args.visitors)]
    warm: list[float] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        deadline = time.monotonic() + args.minutes * 60
        try:
            await asyncio.gather(
                *(visitor(i, browser, base, args, deadline, warm, tallies[i]) for i in range(args.visitors))
            )
        finally:
            await browser.close()
    warm_end = (max(warm) if len(warm) == args.visitors else time.monotonic()) - sampler.t0
    return tallies, warm_end


# ---------------------------------------------------------------- the report
def soak(args) -> dict:
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    env = {}
    if args.max_runs is not None:
        env["BNLN_MAX_RUNS"] = str(args.max_runs)
    if args.watch_timeout is not None:
        env["BNLN_WATCH_TIMEOUT_S"] = str(args.watch_timeout)
    port = free_port()
    log_path = Path(args.log)
    t_start = time.monotonic()
    proc = start_server(port, log_path, env)
    sampler = Sampler(proc.pid)
    sampler.start()
    try:
        rss_idle = rss_bytes(proc.pid)
        tallies, warm_end = asyncio.run(drive(f"http://127.0.0.1:{port}", args, sampler))
        time.sleep(args.rest)  # sessions of the last visitors close, jobs nobody watches stop
        final_t = time.monotonic() - sampler.t0
        left_threads = job_threads(proc.pid)  # a job's thread is named for the OS (core.studies.jobs)
        idle_cpu = idle_cpu_seconds(proc.pid)  # a run left training would take a core: about 3 s
    finally:
        sampler.stop()
        stop_server(proc)
    log = log_path.read_text(errors="replace")
    mb = 1 / 2**20
    total = Tally()
    for t in tallies:
        for k, v in asdict(t).items():
            setattr(total, k, getattr(total, k) + v)
    rss = [r for _, r in sampler.samples]
    after_warm = sampler.at(warm_end)
    final = sampler.at(final_t)
    report = {
        "visitors": args.visitors,
        "rounds": args.rounds or None,
        "minutes": round((time.monotonic() - t_start) / 60, 2),
        "steps_per_run": args.steps,
        "max_runs": args.max_runs,
        "watch_timeout_s": args.watch_timeout,
        "page_views": total.page_views,
        "runs_started": total.runs_started,
        "runs_completed": total.completed,
        "runs_stopped": total.stopped,
        "runs_refused": total.refused,
        "runs_failed": total.failed,
        "stop_clicks": total.stop_clicks,
        "runs_left_mid_run": total.left,
        "server_cpu_s_in_3_s_after_rest": idle_cpu,
        "job_threads_after_rest": left_threads,
        # the server's own account (core.studies.jobs' log): jobs queued, started, how they ended, never ended
        "jobs": job_tally(log),
        "error_elements": total.error_elements,
        "tracebacks_in_log": log.count("Traceback"),
        "run_seconds_median": round(statistics.median(total.run_seconds), 2) if total.run_seconds else None,
        "run_seconds_max": round(max(total.run_seconds), 2) if total.run_seconds else None,
        "rss_idle_mb": round(rss_idle * mb, 1),
        "rss_after_warmup_mb": round(after_warm * mb, 1),
        "rss_peak_mb": round(max(rss) * mb, 1),
        "rss_final_mb": round(final * mb, 1),
        "growth_after_warmup_mb": round((final - after_warm) * mb, 1),
        # RSS at the end of each quarter of the time after warm-up: flattening, or still climbing?
        "rss_quarters_mb": [round(sampler.at(warm_end + (final_t - warm_end) * q / 4) * mb, 1) for q in (1, 2, 3, 4)],
        "warmup_s": round(warm_end, 1),
        "rss_samples": len(rss),
        "problems": total.problems[:20],
        "cpus": os.cpu_count(),
    }
    return report


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--visitors", type=int, default=4)
    p.add_argument("--minutes", type=float, default=3.0, help="run rounds until this many minutes have passed")
    p.add_argument("--rounds", type=int, default=0, help="rounds per visitor instead of --minutes")
    p.add_argument("--steps", type=int, default=100, help="training steps per run")
    p.add_argument("--max-runs", type=int, help="BNLN_MAX_RUNS for the server")
    p.add_argument("--watch-timeout", type=float, help="BNLN_WATCH_TIMEOUT_S for the server")
    p.add_argument(
        "--salt", type=int, default=0, help="shifts every seed: a second soak on the same server trains anew"
    )
    p.add_argument(
        "--rest", type=float, default=15.0, help="seconds to wait after the last visitor before the final RSS"
    )
    output_flags(p, "soak_server.log")
    a = p.parse_args(argv)
    if a.visitors < 1 or a.steps < 1 or a.minutes <= 0 or a.rounds < 0:
        p.error("--visitors and --steps must be >= 1, --minutes > 0, --rounds >= 0")
    return a


if __name__ == "__main__":
    sys.exit(report_main(parse_args, soak))
