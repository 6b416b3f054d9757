"""Paired trainer: several norm variants, same initial weights, same batches, in lockstep.

Knows nothing of any UI: progress leaves through ``on_step`` (the dashboard's live chart is one
such callback) and a ``should_stop`` callable ends the run early, keeping what was done.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd
import torch

from core.config import RunConfig
from core.data import VOCAB_SIZE, BatchStream
from core.metrics import (
    BN_METRICS,
    GROUPS,
    HISTORY_COLUMNS,
    RUN_COLUMNS,
    GradNorms,
    batch_dependence,
    bn_stat_metrics,
    held_out_losses,
    loss_fn,
)
from core.model import TinyTransformer, build_models

Row = tuple  # (norm, step, tokens, metric, layer, value), see core.metrics.HISTORY_COLUMNS


@dataclass
class Progress:
    """What ``on_step`` receives after each step: the rows that step added, and where we are."""

    step: int  # steps completed
    total: int
    rows: list[Row]
    diverged: dict[str, int]
    elapsed: float


@dataclass
class RunResult:
    config: RunConfig
    history: pd.DataFrame  # HISTORY_COLUMNS + RUN_COLUMNS
    summary: pd.DataFrame  # one row per norm, core.metrics.SUMMARY_COLUMNS
    models: dict[str, TinyTransformer] = field(repr=False)
    seconds: float = 0.0
    steps_done: int = 0
    stopped: bool = False

    def runs_json(self) -> list[dict]:
        """The CLI's ``--json`` entries: the summary rows, each with the full config."""
        out = []
        for rec in self.summary.to_dict("records"):
            rec = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in rec.items()}
            rec["config"] = self.config.to_dict()
            out.append(rec)
        return out


def lr_at(step: int, cfg: RunConfig) -> float:
    """Linear warm-up over cfg.warmup steps, then cosine decay to 10% of cfg.lr at the last step."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    span = max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - cfg.warmup) / span)))


def make_optimizer(model: torch.nn.Module, cfg: RunConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on tensors with dim >= 2 only, decided by rank so every norm is alike."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99), fused=True)  # one kernel for all


class _Member:
    """One model of the paired run with its optimizer, metric keys and bookkeeping."""

    def __init__(self, name: str, model: TinyTransformer, cfg: RunConfig):
        self.name, self.model, self.cfg = name, model, cfg
        self.opt = make_optimizer(model, cfg)
        self.grad_norms = GradNorms(model)
        bn_layers = model.bn_layers()
        self.bns = list(bn_layers.values())
        self.keys = (
            [("train_loss", "all"), ("grad_norm", "all")]
            + [("grad_norm_block", b) for b in self.grad_norms.blocks]
            + [("grad_norm_group", g) for g in GROUPS]
            + [(m, layer) for layer in bn_layers for m in BN_METRICS]  # bn_stat_metrics' (L, 4) order
        )
        self.seconds = 0.0
        self.diverged_at: int | None = None
        self.last_eval: tuple[float, float] = (math.nan, math.nan)

    def step(self, batch, lr: float) -> list[float] | None:
        """One update. Returns the metric values (aligned with self.keys), or None if diverged."""
        t0 = time.perf_counter()
        model, cfg = self.model, self.cfg
        model.train()
        loss = loss_fn(model(batch.tokens, batch.valid), batch.targets)
        self.opt.zero_grad(set_to_none=True)  # backward then writes grads instead of adding
        loss.backward()
        grads = self.grad_norms.grads()
        total, blocks, groups = self.grad_norms(grads)
        parts = [loss.detach().view(1), total, blocks, groups]
        if self.bns:
            parts.append(bn_stat_metrics(self.bns).flatten())
        values = torch.cat(parts).tolist()  # the step's one host read
        if not (math.isfinite(values[0]) and math.isfinite(values[1]) and values[1] <= cfg.diverge_grad_norm):
            self.seconds += time.perf_counter() - t0
            return None
        if cfg.grad_clip > 0 and values[1] > cfg.grad_clip:
            torch._foreach_mul_(grads, cfg.grad_clip / (values[1] + 1e-6))
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.step()
        self.seconds += time.perf_counter() - t0
        return values

    def evaluate(self) -> tuple[float, float]:
        t0 = time.perf_counter()
        self.last_eval = held_out_losses(self.model, self.cfg)
        self.seconds += time.perf_counter() - t0
        return self.last_eval


def train_paired(
    cfg: RunConfig,
    on_step: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    workers: int | None = None,
) -> RunResult:
    """Train one model per norm in ``cfg.norms`` in lockstep and return their metrics.

    All models start from the same weights (``build_models``) and see the same batches in the same
    order (one ``BatchStream`` per run, seeded from cfg.seed). A model whose loss or gradient norm
    becomes non-finite, or whose gradient norm exceeds cfg.diverge_grad_norm, is marked diverged at
    that step and no longer trained; the others go on. ``should_stop()`` is checked before every
    step; a stopped run still returns everything measured so far (``stopped=True``).

    ``workers``: threads that step the models of a step concurrently (default: one per model, up to
    the CPU count). Each model's arithmetic is the same whichever thread runs it, so the numbers do
    not depend on it; the pool lives only as long as the run.
    """
    workers = workers or min(len(cfg.norms), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="paired") as pool:
        return _train(cfg, on_step, should_stop, lambda fn, items: list(pool.map(fn, items)))


def _train(cfg, on_step, should_stop, each) -> RunResult:
    t_start = time.perf_counter()
    models = build_models(cfg, VOCAB_SIZE)
    members = [_Member(n, m, cfg) for n, m in models.items()]
    stream = BatchStream.for_run(cfg)
    rows: list[Row] = []
    pad_fractions: list[float] = []
    tokens = 0

    def eval_rows(step: int) -> list[Row]:
        alive = [m for m in members if m.diverged_at is None]
        out = []
        for m, (ev, evb) in zip(alive, each(_Member.evaluate, alive), strict=True):
            out += [
                (m.name, step, tokens, "eval_loss", "all", ev),
                (m.name, step, tokens, "eval_loss_batch_stats", "all", evb),
            ]
        return out

    def report(step: int, new: list[Row]):
        if on_step:
            diverged = {m.name: m.diverged_at for m in members if m.diverged_at is not None}
            on_step(Progress(step, cfg.steps, new, diverged, time.perf_counter() - t_start))

    rows += (new := eval_rows(0))
    report(0, new)
    steps_done, stopped = 0, False
    for step in range(cfg.steps):
        if should_stop is not None and should_stop():
            stopped = True
            break
        alive = [m for m in members if m.diverged_at is None]
        if not alive:
            break
        batch = next(stream)
        pad = batch.pad_fraction
        pad_fractions.append(pad)
        lr = lr_at(step, cfg)
        new = []
        for m, values in zip(alive, each(lambda m, b=batch, lr=lr: m.step(b, lr), alive), strict=True):
            if values is None:
                m.diverged_at = step
                new.append((m.name, step, tokens, "diverged", "all", float(step)))
                continue
            new += [(m.name, step, tokens, metric, layer, v) for (metric, layer), v in zip(m.keys, values, strict=True)]
            new += [(m.name, step, tokens, "pad_fraction", "all", pad), (m.name, step, tokens, "lr", "all", lr)]
        tokens += int(batch.lengths.sum())
        steps_done = step + 1
        if steps_done % cfg.eval_every == 0 or steps_done == cfg.steps:
            new += eval_rows(steps_done)
        rows += new
        report(steps_done, new)

    if stopped and steps_done % cfg.eval_every != 0 and steps_done > 0:
        rows += eval_rows(steps_done)  # a stopped run still ends on a held-out score
    history = _history_frame(rows, cfg)
    dependence = each(lambda m: batch_dependence(m.model, cfg) if m.diverged_at is None else math.nan, members)
    summary = _summary(members, cfg, steps_done, pad_fractions, history, dependence)
    return RunResult(cfg, history, summary, models, time.perf_counter() - t_start, steps_done, stopped)


def _history_frame(rows: list[Row], cfg: RunConfig) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    for col in RUN_COLUMNS:
        df[col] = cfg.config_id if col == "config_id" else getattr(cfg, col)
    return df


def _summary(
    members: list[_Member], cfg: RunConfig, steps_done: int, pads: list[float], history, dependence
) -> pd.DataFrame:
    recs = []
    tail = max(1, min(cfg.eval_every, steps_done))
    for m, dep in zip(members, dependence, strict=True):
        train = history[(history.norm == m.name) & (history.metric == "train_loss")].value
        recs.append({
            "norm": m.name,
            "batch_size": cfg.batch_size,
            "seed": cfg.seed,
            "steps": steps_done if m.diverged_at is None else m.diverged_at,
            # mean over the last eval_every steps: single-batch losses are noisy at small batches
            "final_train_loss": float(train.tail(tail).mean()) if len(train) else math.nan,
            "final_eval_loss": m.last_eval[0],
            "final_eval_loss_batch_stats": m.last_eval[1],
            "batch_dependence": dep,
            "pad_fraction": sum(pads) / len(pads) if pads else math.nan,
            "diverged": m.diverged_at is not None,
            "diverged_at": m.diverged_at,
            "seconds": m.seconds,
        })  # fmt: skip
    return pd.DataFrame(recs)
