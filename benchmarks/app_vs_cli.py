"""Benchmark: the live page's default comparison in a real browser against the same run from the CLI.

Run from the repository root::

    python -m benchmarks.app_vs_cli                      # 3 repeats per side, after one warm-up run each
    python -m benchmarks.app_vs_cli --repeats 5 --json artifacts/app_vs_cli.json
    python -m benchmarks.app_vs_cli --warm-tab           # time each tab's second run instead of its first

What it measures: how much the dashboard adds to a training run (the live charts and progress line
redrawn while it trains, the results drawn afterwards, the browser's work), against the issue's
promise that "the default live comparison in the app completes within 1.2x of the same run from
the CLI".

App side: ``streamlit run streamlit_app.py`` headless on a free localhost port (benchmarks.server's
``start_server``: no usage statistics, no file watcher), driven by Debian's /usr/bin/chromium
through Playwright (never a downloaded browser). Each repeat gets a fresh browser context, opens
the live page by ``/live?seed=N`` (every other setting the page's default: LayerNorm and BatchNorm,
batch 2, long-tailed lengths, 300 steps) and clicks Run. A script injected in the page records,
with ``performance.now()`` (no polling delay): the click; ``first``, the first mark drawn in the
live area (the live charts beside the Stop button: the first point); ``idle``, the script no
longer running; and ``complete``: idle, with this run's results shown (the caption naming its
seed, the metrics, two charts drawn). Each repeat uses its own seed, so it really trains: the app
keeps a shared store of recent results by config (ui/runner.py), and the same config would be
recalled from it. Afterwards (untimed) the run's history CSV is downloaded from the page's Export
expander and its ``config_id`` checked against the CLI's.

A fresh tab's first run also pays for loading and compiling Streamlit's chart and table scripts
(the browser fetches them when an element first needs them): about 0.5 s of the browser's CPU on
the development machine. ``--warm-tab`` times a second run instead: the tab first runs another
seed (untimed), then the timed seed is typed into the form and Run pressed, as a visitor trying a
second setting does.

CLI side: ``python -m core compare`` with the flags that give the live page's default config with
the same seed (derived from ``core.studies.experiments.SETUPS["live"]``; the page's norm toggles list the
norms in NORMS order, ``ln,bn``, which is part of the config id), checked by building the config
through the CLI's own parser. Reported: the whole command's wall time (interpreter start, imports,
training, the printed table) and train_paired's own seconds from the command's last line
(``1 paired run(s), 2.7 s``: 0.1 s resolution).

Ratios: ``app/train`` = app click-to-complete / CLI training seconds (the strict comparison: the
issue's 1.2x), ``app/wall`` = app click-to-complete / CLI whole command. The ``median`` row holds
each column's median and the ratios of those medians; the ``paired`` row the median of each
repeat's own ratio (its app and CLI runs are neighbours in time, so drift in the machine's speed
cancels): the verdict uses that one. The app side has no
interpreter start or imports to pay (the server is warm after the warm-up), but it pays the live
redraws, the browser's work on the same cores, and drawing the results.

Fairness: one untimed warm-up run per side first (the server's first run imports torch and the
pages); then the sides alternate, in the order app, CLI, CLI, app, app, ... so slow drift in the
machine's load hits both alike. The browser runs on the same machine as the server, as on a
laptop at a workshop: on two cores its rendering takes CPU from training (the ``srv cpu`` column
is the server's CPU seconds, all threads, during each app run). The 1-minute load average is
recorded with every repeat; the benchmark's own runs keep it near 2-3 on two cores.

Flags: ``--repeats N`` timed runs per side (default 3; medians reported); ``--warmup W`` untimed
runs per side first (default 1); ``--seed S`` the first seed (default 9000; repeat i uses S+i,
the warm-up S-1-i; with ``--warm-tab`` a tab first runs seed + 100000); ``--warm-tab`` as above;
``--json PATH`` also write every repeat, the config and the medians as JSON; ``--log PATH`` the
server's log (artifacts/app_vs_cli_server.log).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

from benchmarks.server import CHROMIUM, CHROMIUM_ARGS, IDLE, ROOT, free_port, start_server, stop_server
from core import cli
from core.settings.config import NORMS, RunConfig
from core.studies.experiments import SETUPS

# The config the live page runs by default: its form starts from SETUPS["live"].base, and its
# norm toggles list the chosen norms in NORMS order (ln before bn), which is part of the config id.
BASE = SETUPS["live"].base.replace(norms=tuple(n for n in NORMS if n in SETUPS["live"].base.norms))
RUN_TIMEOUT_MS = 300_000
PAGE_TIMEOUT_MS = 120_000
VIEWPORT = {"width": 1400, "height": 1000}
TARGET = 1.2  # the bound on app / CLI

# Records, in the page, the Run click; the first mark drawn in the live area (the charts beside the
# Stop button); and the moment the run is complete: the script idle after running, with the results
# of this run (its caption names the seed, metrics and two charts drawn). With performance.now().
TIMING_JS = """
seed => {
  const t = window.__timing = {};
  const app = document.querySelector('[data-testid="stApp"]');
  const mark = 'svg g.role-mark path';
  const drawn = () => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
    .filter(e => e.querySelector(mark)).length;
  const live = () => {
    const stop = document.querySelector('.st-key-live-stop');
    const area = stop && stop.closest('[data-testid="stVerticalBlock"]');
    return area && area.querySelector(`[data-testid="stVegaLiteChart"] ${mark}`);
  };
  const captioned = () => [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
    .some(e => e.innerText.includes(`seed ${seed} ·`));
  document.addEventListener('click', e => {
    if (e.target.closest('[data-testid="stBaseButton-primaryFormSubmit"]')) t.click = performance.now();
  }, true);
  new MutationObserver(() => {
    const now = performance.now();
    if (t.click === undefined || t.complete !== undefined) return;
    if (t.first === undefined && live()) t.first = now;
    const state = app.getAttribute('data-test-script-state');
    if (state === 'running') t.running = true;
    if (t.running && t.idle === undefined && state === 'notRunning') t.idle = now;
    if (t.idle !== undefined && captioned() && document.querySelector('[data-testid="stMetric"]') && drawn() >= 2)
      t.complete = now;
  }).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
}
"""


def cli_flags(cfg: RunConfig) -> list[str]:
    """``python -m core compare`` flags giving ``cfg``: every setting that differs from the CLI's
    defaults, by its flag name."""
    flags = []
    for f in fields(RunConfig):
        value, default = getattr(cfg, f.name), getattr(cli.DEFAULTS, f.name)
        if value != default:
            text = ",".join(value) if isinstance(value, tuple) else str(value)
            flags += [cli.FLAG_OF[f.name], text]
    return flags


def cli_config(flags: list[str]) -> RunConfig:
    """The config the CLI builds from ``flags``, through its own parser."""
    return cli._base_config(cli.build_parser().parse_args(["compare", *flags]), sweep=False)


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) of process ``pid`` so far, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # fields 14, 15: utime, stime


# ---------------------------------------------------------------- the two sides
def time_cli(cfg: RunConfig) -> dict:
    flags = cli_flags(cfg)
    cmd = [sys.executable, "-m", "core", "compare", *flags]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr[-2000:]}")
    m = re.search(r"(\d+) paired run\(s\), ([\d.]+) s\s*$", done.stdout)
    if not m:
        raise RuntimeError(f"no 'paired run(s), X s' line in the CLI's output:\n{done.stdout[-2000:]}")
    return {
        "command": "python -m core compare " + " ".join(flags),
        "config_id": cli_config(flags).config_id,
        "wall_s": round(wall, 3),
        "train_s": float(m.group(2)),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def history_config_id(page) -> str:
    """The config_id of the run on the page, from its full-history CSV (the Export expander)."""
    page.locator('[data-testid="stExpander"] summary').filter(has_text="Export").click()
    button = page.locator(".st-key-csv-live_history button")
    for attempt in range(3):  # a click while the page still settles can start no download: click again
        try:
            button.wait_for(state="visible", timeout=PAGE_TIMEOUT_MS)
            with page.expect_download(timeout=20_000) as download:
                button.click()
            break
        except Exception:
            if attempt == 2:
                page.screenshot(path=str(ROOT / "artifacts" / "app_vs_cli_no_download.png"), full_page=True)
                raise
    rows = csv.DictReader(io.StringIO(Path(download.value.path()).read_text()))
    ids = {row["config_id"] for row in rows}
    if len(ids) != 1:
        raise RuntimeError(f"the history CSV holds config ids {sorted(ids)}")
    return ids.pop()


def time_app(browser, base_url: str, cfg: RunConfig, server_pid: int, warm_seed: int | None = None) -> dict:
    """One run of ``cfg`` on the live page in a fresh browser context; with ``warm_seed``, the tab
    first runs that seed (untimed), so the timed run finds the page's scripts and charts loaded."""
    context = browser.new_context(viewport=VIEWPORT)  # a fresh visitor: no earlier outcome on the page
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        page.goto(f"{base_url}/live?seed={cfg.seed if warm_seed is None else warm_seed}")
        page.wait_for_selector('[data-testid="stForm"]')
        page.wait_for_selector(IDLE)
        if warm_seed is not None:
            _run(page, warm_seed)
            page.locator(".st-key-live-seed input").fill(str(cfg.seed))  # the form's settings, changed in place
        cpu0 = server_cpu_s(server_pid)
        t = _run(page, cfg.seed)
        cpu = server_cpu_s(server_pid) - cpu0
        caption = " ".join(page.locator('[data-testid="stCaptionContainer"]').all_inner_texts())
        if f"{cfg.steps} steps" not in caption:
            raise RuntimeError(f"the page did not run {cfg.steps} steps: {caption[:300]}")
        if page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count():
            raise RuntimeError("the page shows an error")
        return {
            "click_to_first_point_s": round((t["first"] - t["click"]) / 1000, 3),
            "click_to_idle_s": round((t["idle"] - t["click"]) / 1000, 3),
            "click_to_complete_s": round((t["complete"] - t["click"]) / 1000, 3),
            "server_cpu_s": round(cpu, 2),
            "config_id": history_config_id(page),
            "load_1min": round(os.getloadavg()[0], 2),
        }
    finally:
        context.close()


def _run(page, seed: int) -> dict:
    """Click Run and wait until the run of ``seed`` is complete; the page's timings (ms)."""
    page.evaluate(TIMING_JS, seed)
    page.locator('[data-testid="stBaseButton-primaryFormSubmit"]').click()
    page.wait_for_function("window.__timing.complete !== undefined", timeout=RUN_TIMEOUT_MS, polling=100)
    return page.evaluate("window.__timing")


def warm_seed(args, cfg: RunConfig) -> int | None:
    """With --warm-tab, the seed the tab runs first (one no timed run uses), else None."""
    return cfg.seed + 100_000 if args.warm_tab else None


# ---------------------------------------------------------------- the report
def _median(rows: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in rows), 3)


def measure(args) -> dict:
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    proc = start_server(port := free_port(), Path(args.log), {})
    url = f"http://127.0.0.1:{port}"
    pairs, warmups = [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for i in range(args.warmup):
                    cfg = BASE.replace(seed=args.seed - 1 - i)
                    warmups.append(
                        {"seed": cfg.seed, "app": time_app(browser, url, cfg, proc.pid), "cli": time_cli(cfg)}
                    )
                for i in range(args.repeats):
                    cfg = BASE.replace(seed=args.seed + i)
                    row: dict = {"seed": cfg.seed, "config_id": cfg.config_id}
                    order = ("app", "cli") if i % 2 == 0 else ("cli", "app")  # app, cli, cli, app, ...
                    for side in order:
                        if side == "app":
                            row[side] = time_app(browser, url, cfg, proc.pid, warm_seed(args, cfg))
                        else:
                            row[side] = time_cli(cfg)
                    if not row["app"]["config_id"] == row["cli"]["config_id"] == cfg.config_id:
                        raise RuntimeError(f"config ids differ: {row}")
                    row["app_over_train"] = round(row["app"]["click_to_complete_s"] / row["cli"]["train_s"], 3)
                    row["app_over_wall"] = round(row["app"]["click_to_complete_s"] / row["cli"]["wall_s"], 3)
                    pairs.append(row)
                    print(_line(row), flush=True)
            finally:
                browser.close()
    finally:
        stop_server(proc)
    apps, clis = [r["app"] for r in pairs], [r["cli"] for r in pairs]
    medians = {
        "app_click_to_first_point_s": _median(apps, "click_to_first_point_s"),
        "app_click_to_idle_s": _median(apps, "click_to_idle_s"),
        "app_click_to_complete_s": _median(apps, "click_to_complete_s"),
        "app_server_cpu_s": _median(apps, "server_cpu_s"),
        "cli_train_s": _median(clis, "train_s"),
        "cli_wall_s": _median(clis, "wall_s"),
    }
    medians["app_over_train"] = round(medians["app_click_to_complete_s"] / medians["cli_train_s"], 3)
    medians["app_over_wall"] = round(medians["app_click_to_complete_s"] / medians["cli_wall_s"], 3)
    # each repeat's own ratio (its app and CLI runs are neighbours in time), then their median
    medians["app_over_train_paired"] = _median(pairs, "app_over_train")
    medians["app_over_wall_paired"] = _median(pairs, "app_over_wall")
    return {
        "what": "live page, default settings (BatchNorm vs LayerNorm, batch 2, long-tail lengths, 300 steps), "
        "app in headless Chromium vs python -m core compare",
        "config": {k: v for k, v in BASE.to_dict().items() if k != "seed"},
        "cli_command": clis[0]["command"].replace(f"--seed {pairs[0]['seed']}", "--seed N") if pairs else None,
        "tab": "warm: the timed run is the tab's second"
        if args.warm_tab
        else "fresh: the timed run is the tab's first",
        "target_ratio": TARGET,
        "medians": medians,
        "within_target": medians["app_over_train_paired"] <= TARGET,
        "repeats": pairs,
        "warmups": warmups,
        "cpus": os.cpu_count(),
        "commit": _commit(),
    }


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return out.stdout.strip() + ("+changes" if dirty.strip() else "")
    except OSError:
        return "unknown"


HEADER = f"{'seed':>6} {'first s':>8} {'done s':>8} {'srv cpu':>8} {'cli train':>9} {'cli wall':>9} {'app/train':>9} {'app/wall':>9} {'load':>5}"


def _line(row: dict) -> str:
    a, c = row["app"], row["cli"]
    load = max(a["load_1min"], c["load_1min"])
    return (
        f"{row['seed']:>6} {a['click_to_first_point_s']:>8.2f} {a['click_to_complete_s']:>8.2f} {a['server_cpu_s']:>8.2f} "
        f"{c['train_s']:>9.2f} {c['wall_s']:>9.2f} {row['app_over_train']:>9.2f} {row['app_over_wall']:>9.2f} {load:>5.2f}"
    )


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.app_vs_cli", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="timed runs per side (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per side first (default 1)")
    p.add_argument("--seed", type=int, default=9000, help="seed of the first repeat; repeat i uses seed+i")
    p.add_argument(
        "--warm-tab",
        action="store_true",
        help="time a second run in the tab: the first (untimed) loads the page's scripts",
    )
    p.add_argument("--json", type=Path, help="also write the report (every repeat) to this JSON file")
    p.add_argument("--log", default=str(ROOT / "artifacts" / "app_vs_cli_server.log"))
    a = p.parse_args(argv)
    if a.repeats < 1 or a.warmup < 0 or a.seed - a.warmup < 0:
        p.error("--repeats must be >= 1, --warmup >= 0, --seed >= --warmup")
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    print(f"app: click to first point / to complete (s), server CPU s; CLI: {' '.join(cli_flags(BASE))}")
    print(HEADER, flush=True)
    report = measure(args)
    m = report["medians"]
    print(
        f"{'median':>6} {m['app_click_to_first_point_s']:>8.2f} {m['app_click_to_complete_s']:>8.2f} "
        f"{m['app_server_cpu_s']:>8.2f} {m['cli_train_s']:>9.2f} {m['cli_wall_s']:>9.2f} "
        f"{m['app_over_train']:>9.2f} {m['app_over_wall']:>9.2f}"
    )
    print(
        f"{'paired':>6} {'':>8} {'':>8} {'':>8} {'':>9} {'':>9} {m['app_over_train_paired']:>9.2f} "
        f"{m['app_over_wall_paired']:>9.2f}   (median of each repeat's own ratio)"
    )
    verdict = "within" if report["within_target"] else "NOT within"
    print(
        f"app click-to-complete / CLI training: {m['app_over_train_paired']:.2f}x (median of the repeats' ratios), "
        f"{verdict} the target of {TARGET}x"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
