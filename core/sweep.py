"""Grids of paired runs (batch sizes x seeds x length settings) into one tidy summary, and the
gradient profile at initialization for Pre vs Post placement."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd
import torch

from core.config import ConfigError, RunConfig
from core.data import BatchStream
from core.metrics import GradNorms, loss_fn
from core.model import build_models
from core.train import RunResult, train_paired

MAX_SWEEP_RUNS = 60  # paired runs in one sweep: a cap for shared hosts


@dataclass
class SweepProgress:
    done: int  # paired runs finished
    total: int
    result: RunResult  # the paired run just finished
    summary: pd.DataFrame  # all summary rows so far


def sweep_configs(
    base: RunConfig, batch_sizes: Sequence[int] = (), seeds: Sequence[int] = (), lengths: Sequence[str] = ()
) -> list[RunConfig]:
    """The grid, each cell a validated RunConfig; an empty axis keeps base's value."""
    grid = itertools.product(lengths or [base.lengths], batch_sizes or [base.batch_size], seeds or [base.seed])
    cfgs = [base.replace(lengths=ln, batch_size=bs, seed=s) for ln, bs, s in grid]
    if len(cfgs) > MAX_SWEEP_RUNS:
        raise ConfigError("sweep", f"at most {MAX_SWEEP_RUNS} paired runs, got {len(cfgs)}")
    return cfgs


def run_sweep(
    cfgs: Sequence[RunConfig],
    on_run: Callable[[SweepProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    parallel: int | None = None,
) -> pd.DataFrame:
    """Run each config (a paired run over its norms); one summary row per (config, norm), with
    the varying settings (lengths, batching, task, placement) and the config id as columns.

    ``parallel`` paired runs train at once (default: one per core, at most 2), each stepping its
    models one after the other: whole runs share the cores more evenly than the models of one run
    (three norms on two cores leave one core idle half the time). The numbers do not depend on it.
    ``on_run`` is called from this thread, in config order; the summary keeps config order."""
    parallel = max(1, parallel or min(2, os.cpu_count() or 1))
    frames: list[pd.DataFrame] = []
    abandoned = threading.Event()  # set when this call ends early: runs still training stop too

    def stop() -> bool:
        return abandoned.is_set() or (should_stop is not None and should_stop())

    def run(cfg: RunConfig) -> RunResult | None:
        if stop():
            return None
        return train_paired(cfg, should_stop=stop, workers=1 if parallel > 1 else None)

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="sweep") as pool:
        pending = [pool.submit(run, cfg) for cfg in cfgs]
        try:
            for i, (cfg, fut) in enumerate(zip(cfgs, pending, strict=True)):
                res = fut.result()
                if res is None or res.stopped:
                    break
                s = res.summary.assign(
                    lengths=cfg.lengths,
                    batching=cfg.batching,
                    task=cfg.task,
                    placement=cfg.placement,
                    config_id=cfg.config_id,
                )
                frames.append(s)
                if on_run:
                    on_run(SweepProgress(i + 1, len(cfgs), res, pd.concat(frames, ignore_index=True)))
        finally:  # a Stop, an error or an exception from on_run: nothing trains on
            abandoned.set()
            for fut in pending:
                fut.cancel()
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


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
