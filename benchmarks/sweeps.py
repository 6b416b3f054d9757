"""Sweep speed against a baseline checkout, side by side in one run, in alternation.

    git worktree add /tmp/baseline 2589640                   # the engine before this round's sweep changes
    python -m benchmarks.sweeps --baseline /tmp/baseline     # both grids, 3 rounds (about 10 minutes)
    python -m benchmarks.sweeps --baseline /tmp/baseline --only page --rounds 5

Two grids, each run in a fresh Python process of each checkout, baseline and this one taking turns:

* ``page``: the batch-size page's default grid (5 batch sizes x 2 seeds x 100 steps, BN and LN)
  through the page's own compute path, headless: ``core.studies.experiments.compute("batch_size", ...)``
  with the page's setup. Timed from the call to its return (``seconds``) and as the whole process
  (``wall``: interpreter, imports and all). The process tree's peak resident memory is sampled
  from /proc every 0.1 s (``peak_mb``: the process and any children together).
Every run also reports its CPU time (``cpu``: user and system, all threads) and ``cores`` = cpu /
wall: how many of the machine's cores it kept busy.

* ``gn``: docs/findings.md's Group Norm sweep, ``python -m core sweep --norms ln,bn,masked_bn
  --batch-sizes 2,4,8,16,32 --seeds 0,1,2`` (15 paired runs of 300 steps), whole command.

Each checkout must have its own code importable from its root (a ``git worktree``). Run it on a
quiet machine: it reports medians and the speed-up baseline/this per grid.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.server import rss_bytes

ROOT = Path(__file__).resolve().parents[1]
PAGE_SCRIPT = """
import json, time
t0 = time.perf_counter()
from core.studies import experiments
setup = experiments.SETUPS["batch_size"]
t1 = time.perf_counter()
frames = experiments.compute("batch_size", setup.base, dict(setup.extras))
t2 = time.perf_counter()
print(json.dumps({"seconds": t2 - t1, "import": t1 - t0, "rows": len(frames["summary"])}))
"""
GN_ARGS = ["-m", "core", "sweep", "--norms", "ln,bn,masked_bn", "--batch-sizes", "2,4,8,16,32", "--seeds", "0,1,2"]


def timed(cmd: list[str], cwd: Path) -> dict:
    """Run ``cmd`` in ``cwd``: its wall time, its CPU time (user + system, every thread), its
    stdout's last line as JSON (if any), and the peak resident memory of its process tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak, started = [0], time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], rss_bytes(proc.pid))
            except OSError:
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"{cmd} in {cwd} exited with {proc.returncode}")
    last = out.strip().splitlines()[-1] if out.strip() else "{}"
    result = json.loads(last) if last.startswith("{") else {}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        **result,
        "wall": round(wall, 2),
        "cpu": round(cpu, 2),
        "cores": round(cpu / wall, 2),
        "peak_mb": round(peak[0] / 2**20),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweeps", description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the baseline commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help="page or gn (default: both)")
    parser.add_argument("--json", metavar="PATH")
    a = parser.parse_args(argv)
    grids = [a.only] if a.only else ["page", "gn"]
    apps = {"baseline": a.baseline.resolve(), "this": ROOT}
    samples: dict = {g: {k: [] for k in apps} for g in grids}
    for r in range(a.rounds):
        for grid in grids:
            for name in list(apps) if r % 2 == 0 else list(apps)[::-1]:
                cmd = [sys.executable, "-c", PAGE_SCRIPT] if grid == "page" else [sys.executable, *GN_ARGS]
                result = timed(cmd, apps[name])
                samples[grid][name].append(result)
                print(f"round {r + 1} {grid} {name}: {result}", file=sys.stderr, flush=True)
    report = {"rounds": a.rounds, "results": {}}
    for grid in grids:
        med = {
            name: {k: statistics.median(s[k] for s in runs) for k in runs[0] if isinstance(runs[0][k], int | float)}
            for name, runs in samples[grid].items()
        }
        key = "seconds" if grid == "page" else "wall"
        speedup = med["baseline"][key] / med["this"][key]
        report["results"][grid] = {"median": med, "speedup": round(speedup, 2), "samples": samples[grid]}
        print(f"{grid}: baseline {med['baseline']} | this {med['this']} | speed-up ({key}) {speedup:.2f}x")
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
