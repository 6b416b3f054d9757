"""Grids of paired runs (batch sizes x seeds x length settings) into one tidy summary, and the
gradient profile at initialization for Pre vs Post placement."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

import pandas as pd
import torch

from core.engine.data import BatchStream
from core.engine.metrics import GradNorms, loss_fn
from core.engine.model import build_models
from core.engine.report import QUIET, Listen, Reporter
from core.engine.train import RunResult, train_paired
from core.engine.uploads import Corpus, register_corpus
from core.settings.config import EXECUTORS, MAX_SWEEP_RUNS, ConfigError, RunConfig, sweep_configs  # noqa: F401 (re-exported)


@dataclass
class SweepProgress:
    done: int  # paired runs finished
    total: int
    result: RunResult  # the paired run just finished
    summary: pd.DataFrame  # all summary rows so far, in config order


def run_cell(
    cfg: RunConfig,
    after: After | None = None,
    corpus: Corpus | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunResult:
    """One cell of a grid, trained as ``train_paired(cfg)`` trains it alone (its models stepped one
    after the other in one thread): the same numbers. The held-out set is not scored before the
    first step (a grid's summary is scored at the end), which changes no number. ``after(result)``
    computes frames on the trained models where the cell trained (``RunResult.extra``); the models
    themselves stay there (``models`` is empty). ``corpus``: an uploaded text, which lives in the
    memory of the process that parsed it, travels with its cell to a Ray worker."""
    if corpus is not None:
        register_corpus(corpus)
    report = Listen(stop=should_stop)
    res = train_paired(cfg, report, workers=1, score_at_start=False, gradient_probe=True)
    return replace(res, models={}, extra=after(res) if after else {})


After = Callable[[RunResult], dict]  # a top-level function (or a partial of one): Ray sends it to its workers


def run_sweep(
    cfgs: Sequence[RunConfig],
    report: Reporter = QUIET,
    parallel: int | None = None,
    executor: str = "local",
    address: str | None = None,
    after: After | None = None,
) -> pd.DataFrame:
    """Run each config (a paired run over its norms); one summary row per (config, norm), with
    the varying settings (lengths, batching, task, placement, attention) and the config id as
    columns, in config order.

    Each cell is trained exactly as ``train_paired`` trains it alone (``run_cell``), so the numbers
    do not depend on how: ``executor="local"``, ``parallel`` cells at once in threads of this
    process (default: one per core, at most 2; measured: worker processes instead were no faster,
    the cells being bound by arithmetic on both cores, and took twice the memory); ``"ray"``, as
    Ray tasks (core/studies/ray_executor.py: a local Ray instance, or the cluster at ``address``).
    ``report.cell`` is called from this thread as each cell finishes, whatever its order, so a chart
    draws the first points while the rest train. ``report.should_stop()`` ends the sweep: cells not started are dropped, local cells in flight
    stop at their next step, and the cells finished so far are returned."""
    parallel = max(1, parallel or min(2, os.cpu_count() or 1))
    if executor not in EXECUTORS:
        raise ConfigError("executor", f"must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    done: dict[int, pd.DataFrame] = {}
    abandoned = threading.Event()  # set when this call ends early: local cells still training stop too

    def stop() -> bool:
        return abandoned.is_set() or report.should_stop()

    def finished(i: int, res: RunResult):
        if res.stopped:
            return
        cfg = cfgs[i]
        done[i] = res.summary.assign(
            lengths=cfg.lengths,
            batching=cfg.batching,
            task=cfg.task,
            placement=cfg.placement,
            attention=cfg.attention,
            config_id=cfg.config_id,
        )
        report.cell(SweepProgress(len(done), len(cfgs), res, _in_order(done)))

    if executor == "ray":
        from core.studies import ray_executor

        for i, res in ray_executor.run(cfgs, run_cell, after, address, report.should_stop):
            finished(i, res)
        return _in_order(done)
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="sweep") as pool:
        futures = {pool.submit(run_cell, cfg, after, None, stop): i for i, cfg in enumerate(cfgs)}
        try:
            pending = set(futures)
            while pending and not stop():
                ready, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in sorted(ready, key=futures.get):
                    finished(futures[fut], fut.result())
        finally:  # a Stop, an error or an exception from on_run: nothing trains on
            abandoned.set()
            for fut in futures:
                fut.cancel()
    return _in_order(done)


def _in_order(done: dict[int, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([done[i] for i in sorted(done)], ignore_index=True) if done else pd.DataFrame()


def init_grad_profile(cfg: RunConfig, placements: Sequence[str] = ("pre", "post"), batches: int = 4) -> pd.DataFrame:
    """Gradient norms at initialization per block and parameter group, for each placement and norm
    (Xiong et al. 2020: Post-LN's gradients grow towards the output layer, Pre-LN's do not).
    Averaged over ``batches`` training batches. Columns: placement, norm, block, layer_index, grad_norm."""
    rows = []
    for placement in placements:
        pc = cfg.replace(placement=placement)
        models = build_models(pc)
        stream = BatchStream.for_run(pc)
        data = [next(stream) for _ in range(batches)]
        for norm, model in models.items():
            gn = GradNorms(model)
            acc = torch.zeros(len(gn.blocks))
            model.train()
            for b in data:
                model.zero_grad(set_to_none=False)
                loss_fn(model(b.tokens, b.valid), b.targets).backward()
                acc += gn(gn.grads())[1]
            for i, block in enumerate(gn.blocks):
                rows.append(
                    {
                        "placement": placement,
                        "norm": norm,
                        "block": block,
                        "layer_index": i,
                        "grad_norm": float(acc[i] / batches),
                    }
                )
    return pd.DataFrame(rows)
