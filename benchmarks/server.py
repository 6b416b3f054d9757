"""The app's server as the browser benchmarks and tests see it: started headless on a free localhost
port, and measured from outside through /proc (its memory, CPU time, threads and job threads) and
its log (the jobs core.studies.jobs queued, started and ended). Read by benchmarks.soak, benchmarks.workshop,
benchmarks.first_paint, benchmarks.screenshots, benchmarks.app_vs_cli and the browser tests."""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
SAMPLE_S = 0.5
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'
WARNINGS = '[data-testid="stAlertContentWarning"]'
METRIC = '[data-testid="stMetric"]'
NOTICES_WITHOUT_RESULTS = ("busy", "before training began")  # the app's notices that no results follow
TICKS = os.sysconf("SC_CLK_TCK")
JOB_THREAD = "bnln-job"  # core.studies.jobs.THREAD_NAME (checked by tests/test_jobs.py), without importing torch


# ---------------------------------------------------------------- starting and stopping
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log_path: Path, env_extra: dict[str, str], root: Path = ROOT) -> subprocess.Popen:
    """``streamlit run streamlit_app.py`` of the checkout ``root`` on ``port``, once healthy."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")  # noqa: SIM115 - owned by the process, closed in stop_server
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true"]
    cmd += ["--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    cmd += ["--server.fileWatcherType", "none"]  # as deployed: edits to the tree mid-soak must not reload modules
    proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env_extra})
    proc.log = log  # type: ignore[attr-defined]
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    raise TimeoutError("streamlit did not become healthy in 120 s")


def stop_server(proc: subprocess.Popen):
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    proc.log.close()  # type: ignore[attr-defined]


# ---------------------------------------------------------------- /proc
def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4, after the (comm)
                kids.append(int(entry))
    return kids


def _tree(pid: int):
    """``pid`` and all its descendants."""
    todo = [pid]
    while todo:
        p = todo.pop()
        yield p
        todo += _children(p)


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` and all its descendants, from /proc/<pid>/status."""
    total = 0
    for p in _tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        total += int(m.group(1)) * 1024 if m else 0
    return total


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of ``pid`` and its descendants."""
    total = 0.0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)
    return total


def browsers_cpu_seconds() -> float:
    """CPU time of every Chromium process on the machine (the visitors' browsers share its cores)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                comm, rest = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)
            except OSError:
                continue
            if "chrom" in comm.lower():
                fields = rest.split()
                total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def threads(pid: int) -> int:
    """The server process's threads now (/proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return -1


def job_threads(pid: int) -> int:
    """The server's job threads now: those the operating system calls core.studies.jobs.THREAD_NAME."""
    count = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            count += Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip() == JOB_THREAD
        except OSError:  # ended meanwhile
            pass
    return count


def idle_cpu_seconds(pid: int, seconds: float = 3.0) -> float:
    """The server's CPU time over the next ``seconds``: a job left training takes about a core."""
    cpu0 = cpu_seconds(pid)
    time.sleep(seconds)
    return round(cpu_seconds(pid) - cpu0, 2)


class Sampler(threading.Thread):
    """Samples the server's RSS every SAMPLE_S seconds until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True, name="rss-sampler")
        self.pid = pid
        self.samples: list[tuple[float, int]] = []
        self.t0 = time.monotonic()
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            self.samples.append((time.monotonic() - self.t0, rss_bytes(self.pid)))
            self._stop_event.wait(SAMPLE_S)

    def stop(self):
        self._stop_event.set()
        self.join(5)

    def at(self, t: float) -> int:
        """The RSS at time ``t`` (median of the samples within a second of it)."""
        near = [r for s, r in self.samples if abs(s - t) <= 1.0] or [self.samples[-1][1]]
        return int(statistics.median(near))


# ---------------------------------------------------------------- the server's log of jobs
JOB_LINE = re.compile(
    r"core\.studies\.jobs: job (\S+) (queued at place \d+|started after [\d.]+ s queued|\w+): (.*)$", re.M
)


def job_events(text: str) -> list[tuple[str, str, str]]:
    """The jobs' lines in the server's log, in order: (key, event, label); event is "queued",
    "started" or the state it ended in (done, stopped, failed)."""
    return [(m.group(1), m.group(2).split()[0], m.group(3)) for m in JOB_LINE.finditer(text)]


def job_tally(text: str) -> dict:
    """How many jobs the server queued and started, how they ended, and how many it queued and never
    ended (lost, or still running when the log was read): by key, each queuing opens a job of that key
    and each end closes one (a key is queued again after its earlier job stopped)."""
    events = job_events(text)
    ended = Counter(e for _, e, _ in events if e not in ("queued", "started"))
    balance: Counter = Counter()
    for key, event, _ in events:
        if event != "started":
            balance[key] += 1 if event == "queued" else -1
    return {
        "queued": sum(e == "queued" for _, e, _ in events),
        "started": sum(e == "started" for _, e, _ in events),
        "ended": dict(sorted(ended.items())),
        "open": sum(n for n in balance.values() if n > 0),
    }


def live_seeds(text: str, event: str, leave_out: int | None = None) -> list[int]:
    """The seeds of the live page's jobs (labelled "live seed N ...") at ``event``, in log order."""
    seeds = []
    for _, e, label in job_events(text):
        if e == event and (m := re.match(r"live seed (\d+) ", label)) and int(m.group(1)) != leave_out:
            seeds.append(int(m.group(1)))
    return seeds


# ---------------------------------------------------------------- a page and the report
async def settled(page, timeout_ms: int = 60_000) -> None:
    """After a run's script went idle its last elements may still be on their way to the page: wait
    for its metrics, an error or a notice (or the timeout; the caller classifies what is there). A
    notice that comes with results (a Stop's partial run, an auto-stop as diverged) is drawn before
    them: then wait for the metrics too. Nothing else follows a refusal or a stop before training."""
    try:
        await page.wait_for_selector(f"{METRIC}, {ERRORS}, {WARNINGS}", timeout=timeout_ms)
        notes = " ".join(await page.locator(WARNINGS).all_inner_texts())
        if (
            notes
            and not await page.locator(f"{METRIC}, {ERRORS}").count()
            and not any(alone in notes for alone in NOTICES_WITHOUT_RESULTS)
        ):
            await page.wait_for_selector(METRIC, timeout=timeout_ms)
    except Exception:  # noqa: BLE001 - whatever is there is classified by the caller
        pass


def output_flags(parser, log_name: str) -> None:
    """``--log PATH`` (the server's log, artifacts/LOG_NAME) and ``--json [PATH]``."""
    parser.add_argument("--log", default=str(ROOT / "artifacts" / log_name), help="the server's log")
    parser.add_argument("--json", nargs="?", const="-", help="print the report as JSON, or write it to PATH")


def print_report(report: dict, json_to: str | None) -> None:
    """``--json``: the report as JSON on stdout ("-") or in a file; else (and with a file) a table."""
    if json_to == "-":
        print(json.dumps(report))
        return
    if json_to:
        Path(json_to).write_text(json.dumps(report, indent=2) + "\n")
    width = max(len(k) for k in report)
    for k, v in report.items():
        print(f"{k:<{width}}  {v}")


def report_main(parse_args, measure, argv=None) -> int:
    """A benchmark's command: parse its flags, measure, print (or write) the report."""
    args = parse_args(argv)
    print_report(measure(args), args.json)
    return 0
