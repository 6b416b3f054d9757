"""Benchmark: the project's paired trainer against an idiomatic PyTorch training loop.

Run from the repository root::

    python -m benchmarks.bench                      # full run: --steps 300 --repeats 3 --warmup 5 (~10 min)
    python -m benchmarks.bench --quick              # smoke run: --steps 10 --repeats 1 --warmup 2
    python -m benchmarks.bench --steps 100 --json bench.json --only default,issue-ref

Flags: ``--steps N`` training steps per timed run (default 300: the default RunConfig's run, the
length of the dashboard's live comparison, so (b)'s fixed per-run costs weigh as they do there); ``--repeats R`` timed runs per side (the median
is reported); ``--warmup W`` untimed warm-up steps per side and size; ``--json PATH`` also write all
results (every repeat, the configs, the machine) as JSON; ``--only a,b`` measure only these sizes;
``--no-scaling`` skip the scaling table; ``--a-threads N`` torch threads for (a) (default: one per
core, torch's own default, as an idiomatic script runs); ``--threads N`` torch threads for (b)
(default: the project's choice, 1, set when ``core`` is imported); ``--b-workers N`` pass ``workers=N`` to ``train_paired`` (default: not passed,
as the dashboard calls it).

What is compared, on identical ``RunConfig``s and the identical sequence of batches:

(a) reference: what an idiomatic PyTorch script does. ``nn.TransformerEncoder`` of
    ``nn.TransformerEncoderLayer`` blocks (batch_first, norm_first for Pre-norm, GELU,
    dim_feedforward = 4 * d_model, dropout 0) with a causal mask and ``src_key_padding_mask``,
    token + position embeddings, a final norm (Pre-norm) and a linear head. For BatchNorm the
    layer's norms are replaced by ``nn.BatchNorm1d`` applied to ``x.transpose(1, 2)``. AdamW with
    torch's defaults for everything but lr and weight decay, cross-entropy with ``ignore_index`` on
    pads. Each step: forward, loss, backward, ``clip_grad_norm_``, ``optimizer.step()``,
    ``loss.item()``; nothing else. The models train one after the other: LN for N steps, then BN
    for N steps (then any other norm in cfg.norms).
(b) project: ``core.engine.train.train_paired(cfg)``, called exactly as the dashboard calls it: all models
    in lockstep with every per-step metric (losses, global / per-block / per-group gradient norms,
    BN statistics distances), a held-out evaluation (eval-mode and batch-statistics losses) at
    step 0, every ``cfg.eval_every`` (25) steps and at the last step, and the end-of-run summary
    (including the batch-dependence probe) and history DataFrame. Its time is the wall time of the
    whole call, so its fixed per-run costs (model building, step-0 eval, summary) are spread over N.
    Whatever parallelism train_paired uses is part of (b): e.g. stepping its models concurrently
    from a thread pool (each Python thread then runs torch ops with the same intra-op thread
    count). The ``cores`` columns show what each side actually used; ``--b-workers 1`` makes (b)
    sequential like (a) where train_paired supports it.

Fairness:

* Data generation is timed for BOTH sides, equally: ``train_paired`` draws its batches inside the
  call, so the reference draws the same N batches from a ``core.engine.data.BatchStream`` seeded exactly as
  ``train_paired`` seeds its own, inside its timed region, once (both of its models reuse them, as
  both models of (b) do). The ``data ms`` column shows how much of (a) that is.
* The batches are checked, not assumed, to be the same: during (b)'s warm-up the benchmark records
  the batches ``train_paired`` actually draws and compares them with the reference's; a mismatch
  (e.g. core changed how it seeds its stream) stops the benchmark.
* Warm-up: ``--warmup`` steps of each side (untimed) before any timed run of a size.
* Repeats alternate the order (a, b, b, a, a, ...) so slow drift in the machine's load hits both
  sides alike. Each entry is the median over repeats. ``gc.collect()`` runs before each timed run.
* Each side runs with its own best-practice threads: (a) with torch's default (one intra-op thread
  per core), (b) as the app runs it (1 intra-op thread, its models stepped concurrently by
  train_paired's workers). ``--a-threads 1`` times the reference on one thread instead; the
  thread count of (b) is checked after every run (if ``train_paired`` changed it, the benchmark
  restores it and says so).

Columns of the main table:

  size       name of the setting; config: d_model, layers, heads, batch size, max sentence length
  a ms/step  reference: wall ms per *paired* step, i.e. (LN step + BN step [+ data]) / N
  b ms/step  project: wall ms of train_paired(cfg) / N; one paired step trains both models
  a st/s, b st/s   paired steps per second (1000 / ms per step)
  a/b        a_time / b_time: the speed-up of (b) over (a); < 1 means (b) is slower
  data ms    ms per step of (a) spent drawing batches (included in a ms/step; (b) pays the same)
  a %pk, b %pk     useful training FLOP/s as a share of the machine's fp32 matmul peak (below)
  a cores, b cores CPU seconds per wall second of the process (all threads, median over repeats):
             how many cores the side kept busy; idle threads that spin count as busy
  spread     slowest / fastest repeat of the row (worse side): 1.0x is a quiet machine; above
             1.5 the report flags the row as noisy

Peak and FLOPs. The peak is measured in the same run: ``torch.mm`` of two 1024 x 1024 fp32
matrices with one torch thread per core, 5 per timing, 10 timings; the best rate (2 * 1024^3 FLOP
per mm) is the peak. All cores, whatever ``--threads`` says, so that %pk means the same under
every setting (the peak at the benchmark's thread count is printed and stored too).
Training FLOPs per model and step, for a batch of B sentences padded to T positions (pads are
computed, so they count)::

    6 * P_mm * B * T  +  12 * n_layers * B * T^2 * d_model
    P_mm = n_layers * 12 * d_model^2  +  d_model * vocab    (qkv 3d^2, attn out d^2, MLP 8d^2; head)

6 = 2 FLOP per multiply-add x (forward + 2 x backward). The attention term is QK^T and AV, each
2 * B * T^2 * d_model forward, x3 for training, with the full T^2 since the masked kernels compute
the masked half too. Embedding lookups, norms, softmax, biases and the optimizer are not counted.
A paired step is the sum over the models (x2 for bn+ln), averaged over the N batches actually
drawn. The same useful FLOPs are credited to (a) and (b): (b)'s evaluation and metric work are
overhead, not useful FLOPs.

Scaling table: (b) alone, varying one of batch size, max sentence length and d_model from the
default RunConfig (points already in the main table are reused, not re-run). ``x time`` and
``x FLOPs`` are relative to the default point; x time well below x FLOPs means per-step overhead
(Python, kernel launches, evaluation) rather than arithmetic dominates.

Timings are wall-clock on a shared machine: the load average at start and end is printed and
stored; a load above the core count means other processes competed for the CPU. With torch's
default of one thread per core, a competing process makes torch's worker threads wait for each
other, and single runs can be 10-60x slower (seen on the 2-core dev machine): check the spread
column, and rerun on a quiet machine. The JSON also records
the git commit and whether core/ had uncommitted changes, since core/ is being optimised
concurrently.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import core.engine.train as core_train
from core.engine.data import IGNORE, Batch, BatchStream, vocab_of
from core.engine.train import RunResult, train_paired
from core.settings.config import RunConfig

# The reference draws its batches from BatchStream.for_run(cfg), as train_paired does, inside its
# timed region; every warm-up verifies (``warm_up_and_verify``) that they are the batches
# train_paired really trained on, so a change in core cannot silently break the pairing.

SIZES: dict[str, RunConfig] = {
    "default": RunConfig(),  # d_model 64, 2 layers, 4 heads, batch 8, max_len 32, bn+ln
    "batch2": RunConfig(batch_size=2),  # the batch-size sweep's smallest point
    "issue-ref": RunConfig(batch_size=32),  # the quoted reference: d64, 2L, 4H, B32, T<=32
    "large": RunConfig(d_model=128, n_layers=4, batch_size=32),
}

# One axis at a time from the default RunConfig; the default value of each axis is in the list so
# that every axis has its own baseline row.
SCALING_AXES: dict[str, tuple[int, ...]] = {
    "batch_size": (2, 8, 32),
    "max_len": (16, 32, 64),
    "d_model": (32, 64, 128),
}

PEAK_N = 1024
SPREAD_WARN = 1.5  # slowest / fastest repeat above this: the entry is flagged as noisy
REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- (a) the idiomatic reference
class TransposedBatchNorm1d(nn.Module):
    """``nn.BatchNorm1d`` over the channels of (B, T, C) features: the usual transpose trick.
    Statistics pool all B * T positions, pads included (the project's naive "bn")."""

    def __init__(self, num_features: int, eps: float, momentum: float):
        super().__init__()
        self.bn = nn.BatchNorm1d(num_features, eps=eps, momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x.transpose(1, 2)).transpose(1, 2)


def reference_norm(kind: str, cfg: RunConfig) -> nn.Module:
    """The torch.nn module an idiomatic script would use for the project's norm ``kind``."""
    C = cfg.d_model
    if kind == "ln":
        return nn.LayerNorm(C, eps=cfg.eps)
    if kind == "bn":
        return TransposedBatchNorm1d(C, cfg.eps, cfg.bn_momentum)
    if kind == "rms":
        return nn.RMSNorm(C, eps=cfg.eps)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"no idiomatic torch.nn reference for norm {kind!r} (masked BN has none)")


class ReferenceTransformer(nn.Module):
    """Token + position embeddings, ``nn.TransformerEncoder``, linear head; (B, T) -> (B, T, V)."""

    def __init__(self, cfg: RunConfig, norm: str):
        vocab_size = vocab_of(cfg).size
        super().__init__()
        C, pre = cfg.d_model, cfg.placement == "pre"
        self.tok_emb = nn.Embedding(vocab_size, C)
        self.pos_emb = nn.Embedding(cfg.max_len, C)
        layer = nn.TransformerEncoderLayer(
            C, cfg.n_heads, dim_feedforward=4 * C, dropout=0.0, activation="gelu",
            layer_norm_eps=cfg.eps, batch_first=True, norm_first=pre,
        )  # fmt: skip
        layer.norm1, layer.norm2 = reference_norm(norm, cfg), reference_norm(norm, cfg)
        # TransformerEncoder deep-copies ``layer`` n_layers times, so every block has its own norms.
        # Nested tensors are a no-op for norm_first layers (and only used in inference): off.
        self.encoder = nn.TransformerEncoder(
            layer, cfg.n_layers, norm=reference_norm(norm, cfg) if pre else None, enable_nested_tensor=False
        )
        self.head = nn.Linear(C, vocab_size)

    def forward(self, tokens: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        T = tokens.shape[1]
        x = self.tok_emb(tokens) + self.pos_emb.weight[:T]
        # Boolean like the padding mask (True = may not attend): torch deprecates mixing mask types.
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)  # (T, T)
        x = self.encoder(x, mask=causal, src_key_padding_mask=pad_mask, is_causal=True)
        return self.head(x)


def reference_order(norms: tuple[str, ...]) -> list[str]:
    """LN first, then the rest in cfg order: 'LN model for N steps, then BN model for N steps'."""
    return sorted(norms, key=lambda n: n != "ln")


@dataclass
class ReferenceRun:
    losses: dict[str, list[float]]  # norm -> loss.item() of every step
    seconds: dict[str, float]  # norm -> wall seconds of its N steps (model building included)


def train_reference(cfg: RunConfig, batches: list[Batch]) -> ReferenceRun:
    """The idiomatic loop, one model after the other, each on all of ``batches``."""
    losses, seconds = {}, {}
    for norm in reference_order(cfg.norms):
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[]):  # seeded default init, caller's RNG untouched
            torch.manual_seed(cfg.seed)
            model = ReferenceTransformer(cfg, norm)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        model.train()
        out = []
        for b in batches:
            logits = model(b.tokens, ~b.valid)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), b.targets.view(-1), ignore_index=IGNORE)
            opt.zero_grad()
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            out.append(loss.item())
        losses[norm], seconds[norm] = out, time.perf_counter() - t0
    return ReferenceRun(losses, seconds)


# ---------------------------------------------------------------- batches shared by both sides
def draw_batches(cfg: RunConfig, n: int) -> list[Batch]:
    """The first ``n`` batches of the stream train_paired(cfg) trains on."""
    stream = BatchStream.for_run(cfg)
    return [next(stream) for _ in range(n)]


@contextmanager
def recording_project_batches() -> Iterator[list[Batch]]:
    """Within the block, every batch ``train_paired`` draws is appended to the yielded list.

    Swaps core.engine.train's ``BatchStream`` for a recording subclass (a runtime patch of the module
    attribute; no file in core/ is touched). Only used in untimed runs.
    """
    record: list[Batch] = []
    original = core_train.BatchStream

    class RecordingStream(original):
        def __next__(self) -> Batch:
            batch = super().__next__()
            record.append(batch)
            return batch

    core_train.BatchStream = RecordingStream
    try:
        yield record
    finally:
        core_train.BatchStream = original


def run_project_recorded(cfg: RunConfig, workers: int | None = None) -> tuple[RunResult, list[Batch]]:
    """train_paired(cfg) and the batches it trained on, in order."""
    with recording_project_batches() as record:
        result = call_project(cfg, workers)
    return result, record


def same_batches(xs: list[Batch], ys: list[Batch]) -> bool:
    return len(xs) == len(ys) and all(
        torch.equal(x.tokens, y.tokens) and torch.equal(x.targets, y.targets) and torch.equal(x.valid, y.valid)
        for x, y in zip(xs, ys, strict=True)
    )


# ---------------------------------------------------------------- FLOPs and peak
def matmul_params(cfg: RunConfig) -> int:
    """Weights that take part in matmuls: per layer qkv 3d^2 + attn out d^2 + MLP 8d^2; head dV."""
    return cfg.n_layers * 12 * cfg.d_model**2 + cfg.d_model * vocab_of(cfg).size


def train_flops_per_paired_step(cfg: RunConfig, batches: list[Batch]) -> float:
    """Mean useful training FLOPs of one paired step (all models) over ``batches``; see docstring."""
    P, L, d = matmul_params(cfg), cfg.n_layers, cfg.d_model
    per_model = [6 * P * B * T + 12 * L * B * T * T * d for B, T in (b.tokens.shape for b in batches)]
    return len(cfg.norms) * statistics.fmean(per_model)


def measure_matmul_peak(n: int = PEAK_N, threads: int | None = None, timings: int = 10, per_timing: int = 5) -> dict:
    """fp32 torch.mm GFLOP/s with ``threads`` torch threads (default: the current count; restored
    afterwards). The best timing is the peak; the median shows how much contention there was."""
    before = torch.get_num_threads()
    threads = threads or before
    torch.set_num_threads(threads)
    try:
        a, b, out = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
        for _ in range(3):
            torch.mm(a, b, out=out)
        rates = []
        for _ in range(timings):
            t0 = time.perf_counter()
            for _ in range(per_timing):
                torch.mm(a, b, out=out)
            rates.append(2 * n**3 * per_timing / (time.perf_counter() - t0) / 1e9)
    finally:
        torch.set_num_threads(before)
    return {"n": n, "threads": threads, "gflops_peak": max(rates), "gflops_median": statistics.median(rates)}


# ---------------------------------------------------------------- timing
# (a) runs with torch's own default thread count, one per core, as an idiomatic script does
# (importing core sets the process to 1 intra-op thread, the project's choice for (b)).
A_THREADS = os.cpu_count() or 1


@contextmanager
def torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_reference(cfg: RunConfig) -> dict:
    """One timed run of (a): draw cfg.steps batches (timed, as (b) draws its own), then train."""
    gc.collect()
    with torch_threads(A_THREADS):
        c0, t0 = time.process_time(), time.perf_counter()
        batches = draw_batches(cfg, cfg.steps)
        t_data = time.perf_counter() - t0
        run = train_reference(cfg, batches)
    return {
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,  # all threads of the process
        "data_seconds": t_data,
        "norm_seconds": run.seconds,
        "steps": {n: len(v) for n, v in run.losses.items()},
    }


def call_project(cfg: RunConfig, workers: int | None = None) -> RunResult:
    """train_paired(cfg) as the dashboard calls it, or with ``workers`` threads (--b-workers)."""
    return train_paired(cfg) if workers is None else train_paired(cfg, workers=workers)


def time_project(cfg: RunConfig, workers: int | None = None) -> dict:
    """One timed run of (b): the whole train_paired(cfg) call."""
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    result = call_project(cfg, workers)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    summary = result.summary.set_index("norm")
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,  # all threads of the process
        "steps_done": result.steps_done,
        # per-model steps (fewer than steps_done if a model diverged and stopped training)
        "steps": {n: int(s) for n, s in summary["steps"].items()},
        # time inside the models' step() and evaluate() as core measures it (no setup, no summary)
        "member_seconds": {n: float(s) for n, s in summary["seconds"].items()} if "seconds" in summary else {},
    }


class ThreadGuard:
    """Keeps both sides on one torch thread count: call ``check()`` after every run of (b)."""

    def __init__(self):
        self.threads = torch.get_num_threads()
        self.changes: list[int] = []

    def check(self):
        now = torch.get_num_threads()
        if now != self.threads:
            self.changes.append(now)
            torch.set_num_threads(self.threads)


def warm_up_and_verify(
    cfg: RunConfig, warmup: int, reference: bool, guard: ThreadGuard, workers: int | None = None
) -> None:
    """Untimed: ``warmup`` steps of each side; checks (b) drew exactly the batches (a) will use."""
    wcfg = cfg.replace(steps=warmup)
    result, used = run_project_recorded(wcfg, workers)
    guard.check()
    drawn = draw_batches(wcfg, warmup)
    if result.steps_done != warmup or not same_batches(used, drawn):
        raise RuntimeError(
            f"train_paired trained {result.steps_done} steps on {len(used)} recorded batches that differ from "
            "draw_batches(): core.engine.train no longer trains on BatchStream.for_run(cfg); make draw_batches match it"
        )
    if reference:
        with torch_threads(A_THREADS):
            train_reference(wcfg, drawn)


def summarize_runs(runs: list[dict], steps: int) -> dict:
    seconds = [r["seconds"] for r in runs]
    ms = statistics.median(seconds) * 1000 / steps
    # min alongside the median: on a shared machine the fastest run is the least disturbed one
    return {
        "ms_per_step": ms,
        "ms_per_step_min": min(seconds) * 1000 / steps,
        "spread": max(seconds) / min(seconds),  # slowest / fastest repeat: how noisy this entry is
        # CPU seconds per wall second, all threads: ~1 for one busy thread; more if a side runs
        # work in parallel (or its idle threads spin), less if other processes took the CPU
        "cores": statistics.median(r["cpu_seconds"] / r["seconds"] for r in runs),
        "steps_per_s": 1000 / ms,
        "runs": runs,
    }


def measure_size(
    label: str, cfg: RunConfig, steps: int, repeats: int, warmup: int, peak_gflops: float,
    reference: bool = True, guard: ThreadGuard | None = None, workers: int | None = None,
) -> dict:  # fmt: skip
    """Time (a) (if ``reference``) and (b) on ``cfg`` with ``steps`` steps; one result row.
    ``workers``: passed to train_paired (None: its default, as the dashboard uses it)."""
    guard = guard or ThreadGuard()
    cfg = cfg.replace(steps=steps)
    warm_up_and_verify(cfg, warmup, reference, guard, workers)
    a_runs, b_runs = [], []
    for r in range(repeats):
        for side in "ab" if r % 2 == 0 else "ba":
            if side == "a" and reference:
                a_runs.append(time_reference(cfg))
            elif side == "b":
                b_runs.append(time_project(cfg, workers))
                guard.check()

    batches = draw_batches(cfg, steps)  # untimed: the shapes for the FLOP count
    flops = train_flops_per_paired_step(cfg, batches)
    b = summarize_runs(b_runs, steps)
    row = {
        "label": label,
        "shape": shape_label(cfg),
        "config": cfg.to_dict(),
        "config_id": cfg.config_id,
        "steps": steps,
        "repeats": repeats,
        "mean_padded_len": statistics.fmean(bt.tokens.shape[1] for bt in batches),
        "real_tokens_per_step": statistics.fmean(int(bt.lengths.sum()) for bt in batches),
        "flops_per_paired_step": flops,
        "b": b | {"peak_fraction": flops / (b["ms_per_step"] / 1000) / (peak_gflops * 1e9)},
        # (b) trained every model for `steps` steps (no divergence) and on the checked batches
        "b_all_steps": all(s == steps for run in b_runs for s in run["steps"].values()),
        "same_batches_checked": True,
    }
    if reference:
        a = summarize_runs(a_runs, steps)
        a["data_ms_per_step"] = statistics.median(r["data_seconds"] for r in a_runs) * 1000 / steps
        a["peak_fraction"] = flops / (a["ms_per_step"] / 1000) / (peak_gflops * 1e9)
        row["a"] = a
        row["a_all_steps"] = all(s == steps for run in a_runs for s in run["steps"].values())
        row["speedup_b_over_a"] = a["ms_per_step"] / b["ms_per_step"]
    return row


def shape_label(cfg: RunConfig) -> str:
    return f"d{cfg.d_model} L{cfg.n_layers} H{cfg.n_heads} B{cfg.batch_size} T<={cfg.max_len}"


# ---------------------------------------------------------------- the whole benchmark
def run_benchmark(
    sizes: dict[str, RunConfig], scaling_axes: dict[str, tuple[int, ...]] | None,
    steps: int, repeats: int, warmup: int, base: RunConfig | None = None, peak_n: int = PEAK_N,
    workers: int | None = None, log=None,
) -> dict:  # fmt: skip
    """Measure every size ((a) and (b)) and the scaling points ((b) only); returns the JSON dict.

    ``base`` is the config the scaling axes vary from (default: RunConfig()); ``peak_n`` the size of
    the peak-measuring matmul (smaller only to keep tests fast); ``workers`` goes to train_paired
    (None: its default); ``log`` receives progress lines.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    guard = ThreadGuard()
    meta = machine_info(guard.threads)
    log(
        f"torch threads: {guard.threads} (interop {torch.get_num_interop_threads()}), load avg {meta['load_avg_start']}"
    )
    # The machine's peak uses every core, whatever --threads says, so that %pk is comparable
    # across thread settings and a side that uses more cores than torch's thread count (several
    # Python threads) stays below 100%. The peak at the benchmark's thread count is kept too.
    peak = measure_matmul_peak(peak_n, os.cpu_count() or 1)
    at_bench = peak if peak["threads"] == guard.threads else measure_matmul_peak(peak_n, guard.threads)
    log(f"fp32 matmul peak ({peak_n}x{peak_n} torch.mm, {peak['threads']} threads): {peak['gflops_peak']:.1f} GFLOP/s")

    rows = []
    by_id: dict[str, dict] = {}
    for label, cfg in sizes.items():
        log(f"[size {label}] {shape_label(cfg)}: {steps} steps x {repeats} repeats per side")
        row = measure_size(label, cfg, steps, repeats, warmup, peak["gflops_peak"], True, guard, workers)
        rows.append(row)
        by_id[row["config_id"]] = row

    scaling = []
    base = base or RunConfig()
    for axis, values in (scaling_axes or {}).items():
        for value in values:
            cfg = base.replace(**{axis: value}, steps=steps)
            row = by_id.get(cfg.config_id)
            if row is None:  # not in the main table: measure (b) alone
                log(f"[scaling {axis}={value}] {shape_label(cfg)}")
                label = f"{axis}={value}"
                row = measure_size(label, cfg, steps, repeats, warmup, peak["gflops_peak"], False, guard, workers)
                by_id[row["config_id"]] = row
            scaling.append(
                {"axis": axis, "value": value, "is_base": value == getattr(base, axis)} | _scaling_fields(row)
            )
    for axis in scaling_axes or {}:  # relative to the axis's base point
        pts = [s for s in scaling if s["axis"] == axis]
        ref = next((s for s in pts if s["is_base"]), pts[0])
        for s in pts:
            s["x_time"] = s["b"]["ms_per_step"] / ref["b"]["ms_per_step"]
            s["x_flops"] = s["flops_per_paired_step"] / ref["flops_per_paired_step"]
            s["x_positions"] = s["positions_per_step"] / ref["positions_per_step"]

    meta["load_avg_end"] = os.getloadavg()
    meta["thread_changes_by_train_paired"] = guard.changes
    return {
        "meta": meta
        | {"steps": steps, "repeats": repeats, "warmup": warmup, "b_workers": workers}
        | {"peak": peak, "peak_at_bench_threads": at_bench},
        "sizes": rows,
        "scaling": scaling,
    }


def _scaling_fields(row: dict) -> dict:
    cfg = row["config"]
    return {
        "shape": row["shape"],
        "config_id": row["config_id"],
        "b": {k: row["b"][k] for k in ("ms_per_step", "peak_fraction", "spread", "cores")},  # as in a size row
        "flops_per_paired_step": row["flops_per_paired_step"],
        "mean_padded_len": row["mean_padded_len"],
        "positions_per_step": cfg["batch_size"] * row["mean_padded_len"],
    }


def machine_info(threads: int) -> dict:
    def git(*args: str) -> str | None:  # read-only queries; None outside a git checkout
        try:
            done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True)
            return done.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = git("status", "--porcelain", "--", "core")
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "torch_interop_threads": torch.get_num_interop_threads(),
        "load_avg_start": os.getloadavg(),
        "git_head": git("rev-parse", "HEAD"),
        "core_uncommitted_changes": None if status is None else bool(status),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# ---------------------------------------------------------------- output
# (header, cell) per column of a table. A side's figures ("a": the idiomatic loop, "b": the project's
# trainer) have the same names in a size row and in a scaling point, so each is formatted once here.
SIDE_FIGURES = {
    "ms/step": lambda t: f"{t['ms_per_step']:.1f}",
    "st/s": lambda t: f"{t['steps_per_s']:.2f}",
    "%pk": lambda t: f"{100 * t['peak_fraction']:.2f}%",
    "cores": lambda t: f"{t['cores']:.2f}",
}


def side_columns(figure: str, *sides: str) -> list[tuple[str, Callable[[dict], str]]]:
    """One column per side of one figure of its timings: "a ms/step", "b ms/step"."""
    return [(f"{side} {figure}", lambda r, side=side: SIDE_FIGURES[figure](r[side])) for side in sides]


# The noisier side's spread (slowest / fastest repeat) of the sides a row has.
SPREAD = ("spread", lambda r: f"{max(r[side]['spread'] for side in ('a', 'b') if side in r):.2f}")
# The main table; a row is one size.
SIZE_COLUMNS = [
    ("size", lambda r: r["label"]),
    ("config", lambda r: r["shape"]),
    *side_columns("ms/step", "a", "b"),
    *side_columns("st/s", "a", "b"),
    ("a/b", lambda r: f"{r['speedup_b_over_a']:.2f}"),
    ("data ms", lambda r: f"{r['a']['data_ms_per_step']:.2f}"),
    *side_columns("%pk", "a", "b"),
    *side_columns("cores", "a", "b"),
    SPREAD,
]
# The scaling table; a row is one point of one axis, timed for (b) only.
SCALING_COLUMNS = [
    ("axis", lambda s: s["axis"]),
    ("value", lambda s: str(s["value"])),
    ("config", lambda s: s["shape"]),
    ("mean T", lambda s: f"{s['mean_padded_len']:.1f}"),
    *side_columns("ms/step", "b"),
    ("x time", lambda s: f"{s['x_time']:.2f}"),
    ("x positions", lambda s: f"{s['x_positions']:.2f}"),
    ("x FLOPs", lambda s: f"{s['x_flops']:.2f}"),
    *side_columns("%pk", "b"),
    *side_columns("cores", "b"),
    SPREAD,
]


def format_table(columns: list[tuple[str, Callable[[dict], str]]], records: list[dict]) -> str:
    """Fixed-width text table: first column left-aligned, the rest (numbers) right-aligned."""
    headers = [h for h, _ in columns]
    rows = [[cell(rec) for _, cell in columns] for rec in records]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def format_report(result: dict) -> str:
    meta, peak, bench_peak = result["meta"], result["meta"]["peak"], result["meta"]["peak_at_bench_threads"]
    out = [
        f"torch {meta['torch']}, {meta['cpu_count']} cores: (a) {A_THREADS} torch threads (torch's default), "
        f"(b) {meta['torch_threads']} torch thread(s) x train_paired workers: {meta['b_workers'] or 'its default'}",
        f"fp32 matmul peak {peak['gflops_peak']:.1f} GFLOP/s on {peak['threads']} threads (median "
        f"{peak['gflops_median']:.1f}; {bench_peak['gflops_peak']:.1f} on {bench_peak['threads']}); "
        f"{meta['steps']} steps, median of {meta['repeats']} repeats, {meta['warmup']} warm-up steps",
        f"load average start {_load(meta['load_avg_start'])}, end {_load(meta['load_avg_end'])}",
        "",
        format_table(SIZE_COLUMNS, result["sizes"]),
    ]
    if result["scaling"]:
        out += ["", "Scaling of (b), one axis at a time from the default (x = relative to the axis's default point):"]
        out.append(format_table(SCALING_COLUMNS, result["scaling"]))

    notes = []
    if any(not r["b_all_steps"] or not r.get("a_all_steps", True) for r in result["sizes"]):
        notes.append("a model stopped early (diverged) in some run: its time covers fewer steps")
    if meta["thread_changes_by_train_paired"]:
        notes.append(f"train_paired changed torch's thread count to {meta['thread_changes_by_train_paired']}; restored")
    spreads = [r[side]["spread"] for r in result["sizes"] for side in ("a", "b")]
    spreads += [s["b"]["spread"] for s in result["scaling"]]
    if max(spreads) > SPREAD_WARN:
        advice = "rerun when it is" + (
            ", or with --threads 1, which suffers far less" if meta["torch_threads"] > 1 else ""
        )
        notes.append(
            f"repeats of one entry differ by up to {max(spreads):.1f}x (spread column): the machine was not quiet; {advice}"
        )
    busy = max(meta["load_avg_start"][0], meta["load_avg_end"][0])
    if meta["cpu_count"] and busy > meta["cpu_count"]:
        notes.append(f"load average {busy:.1f} > {meta['cpu_count']} cores: other processes competed for the CPU")
    if meta["core_uncommitted_changes"]:
        notes.append("core/ had uncommitted changes: these numbers are for the working tree, not git HEAD")
    out += [f"note: {n}" for n in notes]
    return "\n".join(out)


def _load(avg) -> str:
    return "/".join(f"{x:.2f}" for x in avg)


def main(argv: list[str] | None = None) -> dict:
    global A_THREADS
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench",
        description="Time train_paired against an idiomatic PyTorch loop (see module docstring).",
    )
    p.add_argument("--steps", type=int, help="training steps per timed run (default 300, a default run; --quick: 10)")
    p.add_argument("--repeats", type=int, help="timed runs per side; the median is reported (default 3; --quick: 1)")
    p.add_argument("--warmup", type=int, help="untimed warm-up steps per side and size (default 5; --quick: 2)")
    p.add_argument("--quick", action="store_true", help="fast smoke run: fewer steps, one repeat")
    p.add_argument("--json", type=Path, help="also write all results to this JSON file")
    p.add_argument("--only", help=f"comma-separated sizes to measure, of: {', '.join(SIZES)}")
    p.add_argument("--no-scaling", action="store_true", help="skip the scaling table")
    p.add_argument("--threads", type=int, help="torch threads for (b) (default: core's choice, 1)")
    p.add_argument(
        "--a-threads", type=int, help=f"torch threads for (a) (default: one per core, torch's default: {A_THREADS})"
    )
    p.add_argument("--b-workers", type=int, help="pass workers=N to train_paired (default: its own default)")
    args = p.parse_args(argv)

    steps = args.steps or (10 if args.quick else RunConfig().steps)
    repeats = args.repeats or (1 if args.quick else 3)
    warmup = args.warmup if args.warmup is not None else (2 if args.quick else 5)
    if steps < 1 or repeats < 1 or warmup < 1:
        p.error("--steps, --repeats and --warmup must be >= 1")
    sizes = SIZES
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in SIZES]
        if unknown:
            p.error(f"unknown size {unknown[0]!r}; choose from {', '.join(SIZES)}")
        sizes = {n: SIZES[n] for n in names}
    if args.b_workers is not None and "workers" not in inspect.signature(train_paired).parameters:
        p.error("this train_paired takes no 'workers' argument")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.a_threads:
        A_THREADS = args.a_threads

    scaling = None if args.no_scaling else SCALING_AXES
    result = run_benchmark(sizes, scaling, steps, repeats, warmup, workers=args.b_workers)
    print(format_report(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return result


if __name__ == "__main__":
    main()
