"""Grid cells as Ray tasks: ``python -m core sweep ... --executor ray [--address ADDR]``.

Ray is optional (``requirements-dev.txt`` installs it; the app and the default executor never
import it). Each cell is ``core.studies.sweep.run_cell`` (handed in by core.studies.sweep) run as a task of one CPU, on an existing cluster
(``address``, e.g. ``ray://head:10001`` or ``auto``) or on a Ray instance started here with one
CPU per core. The project's code and data travel with the job (Ray's ``working_dir`` runtime
environment, without what no cell needs), so the cluster's nodes need only Python 3.11 with the
packages of ``requirements.txt`` that a cell imports (torch 2.13.0, numpy, pandas) and Ray.
A cell's numbers are those of ``train_paired`` on the node that trains it: identical to the local
executor's on the same kind of machine, and equal within the reproducibility contract
(core/studies/reproduce.py) on another processor.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import ray

from core.engine.train import RunResult
from core.engine.uploads import get_corpus
from core.settings.config import RunConfig

ROOT = Path(__file__).resolve().parents[2]
# What a cell does not need: the app, the tests, the stored results, benchmarks, artifacts.
EXCLUDES = [
    ".git",
    ".venv",
    "artifacts",
    "tests",
    "app_pages",
    "ui",
    "benchmarks",
    "data/precomputed",
    "**/__pycache__",
]


def connect(address: str | None = None) -> None:
    """Join the cluster at ``address``, or start a local Ray instance (one CPU per core), once."""
    if ray.is_initialized():
        return
    ray.init(
        address=address,
        num_cpus=None if address else (os.cpu_count() or 1),
        runtime_env={"working_dir": str(ROOT), "excludes": EXCLUDES},
        include_dashboard=False,
        log_to_driver=False,
    )


def run(
    cfgs: Sequence[RunConfig],
    cell: Callable[..., RunResult],
    after: Callable[[RunResult], dict] | None = None,
    address: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[tuple[int, RunResult]]:
    """(index, result) of each cell as it finishes, each ``cell(cfg, after, corpus)`` run as a Ray
    task (``core.studies.sweep.run_cell``, passed in so this module needs nothing of core.studies.sweep); a stop
    cancels the cells not finished."""
    connect(address)
    task = ray.remote(num_cpus=1)(cell)
    refs = {task.remote(cfg, after, get_corpus(cfg.corpus) if cfg.corpus else None): i for i, cfg in enumerate(cfgs)}
    pending = list(refs)
    try:
        while pending:
            if should_stop is not None and should_stop():
                break
            ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            for ref in ready:
                yield refs[ref], ray.get(ref)
    finally:
        for ref in pending:
            ray.cancel(ref)
