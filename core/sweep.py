"""Grids of paired runs (batch sizes x seeds x length settings) into one tidy summary, and the
gradient profile at initialization for Pre vs Post placement."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from core.config import ConfigError, RunConfig
from core.data import VOCAB_SIZE, BatchStream
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
) -> pd.DataFrame:
    """Run each config (a paired run over its norms); one summary row per (config, norm), with
    the varying settings (lengths, batching, task, placement) and the config id as columns."""
    frames: list[pd.DataFrame] = []
    for i, cfg in enumerate(cfgs):
        if should_stop is not None and should_stop():
            break
        res = train_paired(cfg, should_stop=should_stop)
        if res.stopped:
            break
        s = res.summary.assign(
            lengths=cfg.lengths, batching=cfg.batching, task=cfg.task, placement=cfg.placement, config_id=cfg.config_id
        )
        frames.append(s)
        if on_run:
            on_run(SweepProgress(i + 1, len(cfgs), res, pd.concat(frames, ignore_index=True)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def init_grad_profile(cfg: RunConfig, placements: Sequence[str] = ("pre", "post"), batches: int = 4) -> pd.DataFrame:
    """Gradient norms at initialization per block and parameter group, for each placement and norm
    (Xiong et al. 2020: Post-LN's gradients grow towards the output layer, Pre-LN's do not).
    Averaged over ``batches`` training batches. Columns: placement, norm, block, layer_index, grad_norm."""
    rows = []
    for placement in placements:
        pc = cfg.replace(placement=placement)
        models = build_models(pc, VOCAB_SIZE)
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
