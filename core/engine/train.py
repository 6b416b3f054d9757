"""Paired trainer: several norm variants, same initial weights, same batches, in lockstep.

Knows nothing of any UI: progress leaves through a ``core.engine.report.Reporter`` (the app's shared job
is one), which is also asked before every step whether to stop early, keeping what was done.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd
import torch

from core.engine.data import BatchStream
from core.engine.metrics import (
    HISTORY_COLUMNS,
    RUN_COLUMNS,
    GradNorms,
    Step,
    batch_stats_twin,
    eval_loss,
    eval_loss_batch_stats,
    loss_fn,
    step_metrics,
)
from core.engine.model import TinyTransformer, build_models
from core.engine.probes import batch_dependence, grad_batch_dependence
from core.engine.report import QUIET, Progress, Reporter, Row
from core.settings.config import RunConfig


@dataclass
class RunResult:
    config: RunConfig
    history: pd.DataFrame  # HISTORY_COLUMNS + RUN_COLUMNS
    summary: pd.DataFrame  # one row per norm, core.engine.metrics.SUMMARY_COLUMNS
    models: dict[str, TinyTransformer] = field(repr=False)
    seconds: float = 0.0
    steps_done: int = 0
    stopped: bool = False
    extra: dict[str, pd.DataFrame] = field(
        default_factory=dict
    )  # frames computed on the models (core.studies.sweep.run_cell)

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


class AdamW:
    """AdamW as ``torch.optim.AdamW(fused=True)`` computes it, without the optimizer's Python layer.

    The update is the same fused kernel (``torch._fused_adamw_``) on the same state (first and
    second moments, a float32 step count per tensor), so the numbers are bitwise those of
    torch.optim.AdamW (tests/test_core.py checks this). What is dropped is per-step Python work:
    grouping, profiler hooks, and the first construction's one-off import of torch._dynamo (about
    1 s). Python work matters here because it holds the GIL while the other model's thread waits.

    Weight decay applies to tensors with dim >= 2 only, decided by rank so every norm is alike.
    """

    BETAS, EPS = (0.9, 0.99), 1e-8

    def __init__(self, model: torch.nn.Module, cfg: RunConfig):
        self.params = list(model.parameters())
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = [torch.tensor(0.0) for p in self.params]
        self.decay = cfg.weight_decay
        self.groups = [[i for i, p in enumerate(self.params) if (p.dim() >= 2) == decayed] for decayed in (True, False)]
        self.group_state = [
            [[state[i] for i in g] for state in (self.params, self.exp_avg, self.exp_avg_sq, self.steps)]
            for g in self.groups
        ]

    def zero_grad(self):
        for p in self.params:
            p.grad = None  # backward then writes grads instead of adding

    def step(self, grads: list[torch.Tensor], lr: float):
        """One update with ``grads`` aligned with ``self.params`` (``model.parameters()`` order, as
        GradNorms.grads()). Every parameter of these models is used, so each has a gradient."""
        with torch.no_grad():
            for g, (params, exp_avg, exp_avg_sq, steps), wd in zip(
                self.groups, self.group_state, (self.decay, 0.0), strict=True
            ):
                torch._foreach_add_(steps, 1)
                torch._fused_adamw_(
                    params, [grads[i] for i in g], exp_avg, exp_avg_sq, [], steps, lr=lr, beta1=self.BETAS[0],
                    beta2=self.BETAS[1], weight_decay=wd, eps=self.EPS, amsgrad=False, maximize=False,
                )  # fmt: skip


class _Member:
    """One model of the paired run with its optimizer, metric keys and bookkeeping."""

    def __init__(self, name: str, model: TinyTransformer, cfg: RunConfig):
        self.name, self.model, self.cfg = name, model, cfg
        self.opt = AdamW(model, cfg)
        self.grad_norms = GradNorms(model)
        assert all(a is b for a, b in zip(self.opt.params, self.grad_norms.params, strict=True))
        self.metrics = step_metrics(model, self.grad_norms)
        self.keys = [key for metric in self.metrics for key in metric.keys]
        self.seconds = 0.0
        self.diverged_at: int | None = None
        self.last_eval: tuple[float, float] = (math.nan, math.nan)
        # A norm that does not use the batch in training normalises every token on its own, so batch
        # statistics and running statistics are the same computation: the eval-mode score is
        # reported for both, and only the others get a batch-statistics pass (tests check the
        # skipped one would agree).
        self.twin = batch_stats_twin(model) if model.spec.batch_in_training else None

    def step(self, batch, lr: float) -> list[float] | None:
        """One update. Returns the metric values (aligned with self.keys), or None if diverged."""
        t0 = time.perf_counter()
        model, cfg = self.model, self.cfg
        if not model.training:
            model.train()
        loss = loss_fn(model(batch.tokens, batch.valid), batch.targets)
        self.opt.zero_grad()
        loss.backward()
        grads = self.grad_norms.grads()
        done = Step(loss.detach().view(1), *self.grad_norms(grads))
        parts = [metric.values(done) for metric in self.metrics]
        values = torch.cat(parts).tolist()  # the step's one host read
        if not (math.isfinite(values[0]) and math.isfinite(values[1]) and values[1] <= cfg.diverge_grad_norm):
            self.seconds += time.perf_counter() - t0
            return None
        if cfg.grad_clip > 0 and values[1] > cfg.grad_clip:
            torch._foreach_mul_(grads, cfg.grad_clip / (values[1] + 1e-6))
        self.opt.step(grads, lr)
        self.seconds += time.perf_counter() - t0
        return values

    def held_out(self, pass_: str) -> tuple[float, float]:
        """One held-out pass, "eval" (eval mode) or "batch_stats" (on the twin): (loss, seconds).
        The two passes of a BN model can run at once on different threads (see batch_stats_twin)."""
        t0 = time.perf_counter()
        if pass_ == "eval":
            value = eval_loss(self.model, self.cfg)
        else:
            value = eval_loss_batch_stats(self.twin, self.cfg)
        return value, time.perf_counter() - t0


def train_paired(
    cfg: RunConfig,
    report: Reporter = QUIET,
    workers: int | None = None,
    score_at_start: bool = True,
    gradient_probe: bool = False,
) -> RunResult:
    """Train one model per norm in ``cfg.norms`` in lockstep and return their metrics.

        All models start from the same weights (``build_models``) and see the same batches in the same
        order (one ``BatchStream`` per run, seeded from cfg.seed). A model whose loss or gradient norm
        becomes non-finite, or whose gradient norm exceeds cfg.diverge_grad_norm, is marked diverged at
        that step and no longer trained; the others go on. ``report.step`` hears each step and
    ``report.should_stop()`` is asked before every
        step; a stopped run still returns everything measured so far (``stopped=True``).

        ``workers``: threads that step the models of a step concurrently (default: one per model, up to
        the CPU count); the held-out passes are spread over the same threads, longest first, and this
        thread draws the next batch while the models train. Each model's arithmetic is the same
        whichever thread runs it, so the numbers do not depend on it; the pool lives only as long as
        the run. ``score_at_start=False`` skips the held-out score at initialization (step 0), which
        only the curves show; no number of the training changes. ``gradient_probe``: also measure each
        model's ``grad_batch_dependence`` after training (core.engine.metrics; about 45 ms a model at batch 2, so
        only where it is reported: the CLI and the sweeps); otherwise that column is NaN.
    """
    workers = workers or min(len(cfg.norms), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="paired") as pool:
        return _train(cfg, report, pool, score_at_start, gradient_probe)


def _train(
    cfg, report: Reporter, pool: ThreadPoolExecutor, score_at_start: bool = True, gradient_probe: bool = False
) -> RunResult:
    t_start = time.perf_counter()
    models = build_models(cfg)
    members = [_Member(n, m, cfg) for n, m in models.items()]
    stream = BatchStream.for_run(cfg)
    rows: list[Row] = []
    pad_fractions: list[float] = []
    tokens = 0

    def eval_rows(step: int) -> list[Row]:
        alive = [m for m in members if m.diverged_at is None]
        passes = [(m, "batch_stats") for m in alive if m.twin is not None] + [(m, "eval") for m in alive]
        futures = [pool.submit(m.held_out, p) for m, p in passes]  # the longer batch-stats passes first
        scores = {}
        for (m, p), fut in zip(passes, futures, strict=True):
            scores[m.name, p], seconds = fut.result()
            m.seconds += seconds
        out = []
        for m in alive:
            ev = scores[m.name, "eval"]
            m.last_eval = ev, evb = ev, scores.get((m.name, "batch_stats"), ev)
            out += [
                (m.name, step, tokens, "eval_loss", "all", ev),
                (m.name, step, tokens, "eval_loss_batch_stats", "all", evb),
            ]
        return out

    def tell(step: int, new: list[Row]):
        diverged = {m.name: m.diverged_at for m in members if m.diverged_at is not None}
        report.step(Progress(step, cfg.steps, new, diverged, time.perf_counter() - t_start, rows))

    rows += (new := eval_rows(0) if score_at_start else [])
    tell(0, new)
    steps_done, stopped = 0, False
    batch = next(stream)
    for step in range(cfg.steps):
        if report.should_stop():
            stopped = True
            break
        alive = [m for m in members if m.diverged_at is None]
        if not alive:
            break
        lr = lr_at(step, cfg)
        futures = [pool.submit(m.step, batch, lr) for m in alive]
        upcoming = next(stream) if step + 1 < cfg.steps else None  # drawn while the models train
        pad = batch.pad_fraction
        pad_fractions.append(pad)
        new = []
        for m, values in zip(alive, (f.result() for f in futures), strict=True):
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
        tell(steps_done, new)
        batch = upcoming

    if stopped and steps_done % cfg.eval_every != 0 and steps_done > 0:
        rows += eval_rows(steps_done)  # a stopped run still ends on a held-out score
    history = history_frame(rows, cfg)
    alive = [m for m in members if m.diverged_at is None]
    kinds = (batch_dependence, grad_batch_dependence) if gradient_probe else (batch_dependence,)

    def probed(model) -> tuple[float, ...]:  # one model's probes in turn: each sets the model's modes
        return tuple(probe(model, cfg) for probe in kinds)

    probes = [pool.submit(probed, m.model) for m in alive]  # the models side by side
    dependence = {m.name: fut.result() for m, fut in zip(alive, probes, strict=True)}
    summary = _summary(members, cfg, steps_done, pad_fractions, history, dependence)
    return RunResult(cfg, history, summary, models, time.perf_counter() - t_start, steps_done, stopped)


def history_frame(rows: list[Row], cfg: RunConfig) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    for col in RUN_COLUMNS:
        df[col] = cfg.config_id if col == "config_id" else getattr(cfg, col)
    return df


def _summary(
    members: list[_Member], cfg: RunConfig, steps_done: int, pads: list[float], history, dependence
) -> pd.DataFrame:
    recs = []
    tail = max(1, min(cfg.eval_every, steps_done))
    for m in members:
        train = history[(history.norm == m.name) & (history.metric == "train_loss")].value
        clipped = history[(history.norm == m.name) & (history.metric == "renorm_clipped")].value
        forward, gradient = (*dependence.get(m.name, (math.nan,)), math.nan)[:2]
        recs.append({
            "norm": m.name,
            "batch_size": cfg.batch_size,
            "seed": cfg.seed,
            "steps": steps_done if m.diverged_at is None else m.diverged_at,
            # mean over the last eval_every steps: single-batch losses are noisy at small batches
            "final_train_loss": float(train.tail(tail).mean()) if len(train) else math.nan,
            "final_eval_loss": m.last_eval[0],
            "final_eval_loss_batch_stats": m.last_eval[1],
            "batch_dependence": forward,
            "grad_batch_dependence": gradient,
            "clipped_share": float(clipped.mean()) if len(clipped) else math.nan,
            "pad_fraction": sum(pads) / len(pads) if pads else math.nan,
            "diverged": m.diverged_at is not None,
            "diverged_at": m.diverged_at,
            "seconds": m.seconds,
        })  # fmt: skip
    return pd.DataFrame(recs)
