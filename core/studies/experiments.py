"""What each experiment page computes, without Streamlit: the frames behind its charts.

A page runs ``compute`` as a shared job (core.studies.jobs), whose ``Reporter`` hears each step and each
finished paired run and tells the engine when nobody watches any more; ``python -m core.precompute``
runs the very same function with no reporter for the guided scenarios. So a precomputed result and
a live one of the same settings are the same numbers.

Each page's experiment is one record (``Experiment``, in ``EXPERIMENTS``): its setup, the frames its
charts read, and how it computes them, one paired run or a grid; the pages, the tour, the stored
results and the tests read it, and nothing dispatches on a page's name.

``extras`` are a page's settings beyond its RunConfig (the sweep's batch sizes and seeds, the
depth of the gradient profile), by the names the page and its URL use.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pandas as pd

from core.engine.model import build_models
from core.engine.report import QUIET, Reporter, Stopped
from core.engine.train import RunResult, train_paired
from core.settings.config import ATTENTIONS, BATCHING, LENGTHS, LIMITS, ConfigError, RunConfig, lengths_for
from core.settings.records import by_key
from core.settings.tasks import TASKS
from core.studies.analysis import (
    comparability,
    pad_probe,
    pad_probe_batch,
    position_profile,
    probe_probabilities,
    token_statistics,
)
from core.studies.deploy import deployment
from core.studies.generate import generations
from core.studies.leak import leaks
from core.studies.sweep import After, init_grad_profile, run_sweep, sweep_configs

Frames = dict[str, pd.DataFrame]
# What the progress line says after training (English; a page shows it translated).
WRITING = "writing: every model continues the same prompts…"
PROFILING = "gradients at initialization, Pre and Post…"
PROBING = "probing: what moves each prediction, both ways…"
DEPLOYING = "scoring: the held-out loss with four kinds of statistics…"


def train(cfg: RunConfig, report: Reporter) -> RunResult:
    """``train_paired`` reporting to ``report``; told to stop, nothing more is computed (Stopped)."""
    res = train_paired(cfg, report)
    if res.stopped:
        raise Stopped
    return res


def sweep(cfgs: list[RunConfig], report: Reporter, after: After | None = None) -> pd.DataFrame:
    """``run_sweep`` reporting each finished paired run to ``report``; told to stop, Stopped."""
    summary = run_sweep(cfgs, report, after=after)
    if report.should_stop():
        raise Stopped
    return summary


@dataclass(frozen=True)
class Setup:
    """A page's starting point: the config its form starts from, the form's settings (RunConfig
    fields; ``length_range`` stands for min_len and max_len), and its other settings' defaults."""

    base: RunConfig
    fields: tuple[str, ...]
    extras: dict[str, Any] = field(default_factory=dict)


# Training steps in one sweep, summed over its paired runs: a shared host's cap on one request
# (about seven runs of the longest length a page allows; the largest scenario needs 3000).
MAX_SWEEP_STEPS = 20_000


def _capped(cfgs: list[RunConfig]) -> list[RunConfig]:
    total = sum(c.steps for c in cfgs)
    if total > MAX_SWEEP_STEPS:
        raise ConfigError(
            "sweep",
            f"at most {MAX_SWEEP_STEPS} training steps in one sweep (paired runs × steps), got {total}: "
            "choose fewer batch sizes, seeds or steps",
        )
    return cfgs


# ---------------------------------------------------------------- one paired run
def comparison(cfg: RunConfig, report: Reporter = QUIET) -> Frames:
    """The run's history and summary, and what each model writes (core.studies.generate)."""
    res = train(cfg, report)
    frames = {"history": res.history, "summary": res.summary}
    if cfg.attention == "causal":  # an encoder does not write
        report.phase(WRITING)
        frames["generations"] = generations(trained(res), cfg)
    return frames


def trained(res: RunResult) -> dict:
    """The run's models that did not diverge (a diverged model's weights are no longer numbers)."""
    gone = set(res.summary.loc[res.summary["diverged"].astype(bool), "norm"])
    return {norm: model for norm, model in res.models.items() if norm not in gone}


def per_token(cfg: RunConfig, report: Reporter = QUIET) -> Frames:
    """Per-token statistics of every norm layer at initialization and after training."""
    res = train(cfg, report)
    stats_init, split_init = token_statistics(build_models(cfg), cfg, "init")
    stats_trained, split_trained = token_statistics(res.models, cfg, "trained")
    return {
        "history": res.history,
        "stats": pd.concat([stats_init, stats_trained], ignore_index=True),
        "splits": pd.concat([split_init, split_trained], ignore_index=True),
    }


def train_vs_inference(cfg: RunConfig, report: Reporter = QUIET) -> Frames:
    """The run, the batch-dependence probe, the held-out loss with each kind of statistics
    (core.studies.deploy) and, in a causal model, the leak channels and the causality map in both modes
    (core.studies.leak) and the generations."""
    res = train(cfg, report)
    models = trained(res)
    frames = {"history": res.history, "summary": res.summary}
    if not models:  # every model diverged: nothing to probe or to write with
        return frames
    report.phase(PROBING)
    frames["probe"] = probe_probabilities(models, cfg)
    if cfg.attention == "causal":  # in an encoder every output may read every input: nothing to leak
        frames["leak"], frames["causality"] = leaks(models, cfg)
    report.phase(DEPLOYING)
    frames["deploy"] = deployment(models, cfg)
    if cfg.attention == "causal":
        report.phase(WRITING)
        frames["generations"] = generations(models, cfg)
    return frames


def gradients(cfg: RunConfig, layers: int, report: Reporter = QUIET) -> Frames:
    """The run's gradient norms, and the per-layer profile at initialization of a ``layers``-deep
    model for Pre and Post placement."""
    res = train(cfg, report)
    report.phase(PROFILING)
    return {"history": res.history, "profile": init_grad_profile(cfg.replace(n_layers=layers))}


# ---------------------------------------------------------------- sweeps
def scored_at_end(cfg: RunConfig) -> RunConfig:
    """A sweep needs each run's final score only: held-out scoring at the last step (and, past
    the largest evaluation interval allowed, every that many steps)."""
    return cfg.replace(eval_every=min(cfg.steps, int(LIMITS["eval_every"][1])))


def batch_size_grid(cfg: RunConfig, batch_sizes: Sequence[int], seeds: int) -> list[RunConfig]:
    """Batch sizes x seeds 0..seeds-1, each run scored once, at its end."""
    cfg = scored_at_end(cfg)
    return _capped(sweep_configs(cfg, batch_sizes=sorted(batch_sizes), seeds=range(seeds)))


def padding_grid(cfg: RunConfig, lengths: Sequence[str], batching: Sequence[str], seeds: int) -> list[RunConfig]:
    """The lengths x batching x seeds grid, in the order of LENGTHS and BATCHING whatever order the
    choices came in; fixed lengths have no pads, so bucketing them is skipped."""
    cfg = scored_at_end(cfg)
    cfgs = []
    for b in (b for b in BATCHING if b in batching):
        kept = [ln for ln in LENGTHS if ln in lengths and (b == "random" or ln != "fixed")]
        if kept:
            cfgs += sweep_configs(cfg.replace(batching=b), lengths=kept, seeds=range(seeds))
    return _capped(cfgs)


def fixes_grid(cfg: RunConfig, batch_sizes: Sequence[int], attentions: Sequence[str], seeds: int) -> list[RunConfig]:
    """Attention settings x batch sizes x seeds 0..seeds-1, each run scored once, at its end."""
    cfg = scored_at_end(cfg)
    kept = [a for a in ATTENTIONS if a in attentions]  # in ATTENTIONS order, whatever order they came in
    return _capped(sweep_configs(cfg, batch_sizes=sorted(batch_sizes), seeds=range(seeds), attentions=kept))


def probe_config(cfgs: Sequence[RunConfig]) -> RunConfig | None:
    """The paired run whose models the pad-length probe uses: the first with variable lengths
    (uniform lengths, random batching by default), so its batches hold real pads."""
    return next((c for c in cfgs if c.lengths != "fixed"), None)


def summary_only(cfgs: list[RunConfig], report: Reporter = QUIET) -> Frames:
    """The sweep's summary, one row per model per paired run (the batch-size and fixes pages)."""
    return {"summary": sweep(cfgs, report)}


def padding(cfgs: list[RunConfig], report: Reporter = QUIET) -> Frames:
    """The sweep's summary, and the pad-length probe on the models of ``probe_config(cfgs)``,
    computed where that cell trained (its models stay in its worker)."""
    probe_cfg, probe = probe_config(cfgs), {}

    class KeepProbe(Reporter):  # the probe's frames arrive with its cell's result
        def cell(self, progress):
            probe.update(progress.result.extra)
            report.cell(progress)

        def should_stop(self) -> bool:
            return report.should_stop()

    summary = sweep(cfgs, KeepProbe(), partial(pad_probe_of, probe_cfg) if probe_cfg else None)
    return {"summary": summary, **probe}  # no probe: no run with pads


def pad_probe_of(cfg: RunConfig, result: RunResult) -> Frames:
    """The pad-length probe on ``result``'s models if it is the run of ``cfg`` (a sweep's ``after``)."""
    if result.config != cfg or (batch := pad_probe_batch(cfg)) is None:
        return {}
    return {"probe": pad_probe(result.models, batch, cfg.max_len)}


# ---------------------------------------------------------------- the experiments: one record per page
def batch_size_cells(cfg: RunConfig, extras: dict) -> list[RunConfig]:
    if not extras["sizes"]:
        raise ConfigError("sweep", "choose at least one batch size")
    return batch_size_grid(cfg, extras["sizes"], extras["seeds"])


def fixes_cells(cfg: RunConfig, extras: dict) -> list[RunConfig]:
    if not (extras["sizes"] and extras["attentions"]):
        raise ConfigError("sweep", "choose at least one batch size and one attention setting")
    return fixes_grid(cfg, extras["sizes"], extras["attentions"], extras["seeds"])


def padding_cells(cfg: RunConfig, extras: dict) -> list[RunConfig]:
    if not (extras["lengths"] and extras["batching"]):
        raise ConfigError("sweep", "choose at least one length distribution and one batching")
    return padding_grid(cfg, extras["lengths"], extras["batching"], extras["seeds"])


PairedRun = Callable[[RunConfig, dict, Reporter], Frames]  # (cfg, extras, report) -> frames


@dataclass(frozen=True)
class Experiment:
    """What one page computes, which everything else reads (its page, the tour, the stored results,
    the shared jobs, the tests): its key (the page's name), its setup (form and other settings), the
    frames its charts read, and either ``paired`` (one paired run: the form's config) or ``cells``
    (a grid: the paired runs the settings ask for, raising ConfigError for an empty or too large
    one) and ``swept`` (their frames). ``title`` names a run of it in one line (English, translated
    where shown): ``{settings}`` is the config without ``title_omit``, the other fields its extras."""

    key: str
    setup: Setup
    frames: tuple[str, ...]  # a bidirectional run has no generations, leak or causality map
    paired: PairedRun | None = None
    cells: Callable[[RunConfig, dict], list[RunConfig]] | None = None
    swept: Callable[[list[RunConfig], Reporter], Frames] | None = None
    title: str = "{settings}"
    title_omit: tuple[str, ...] = ()

    @property
    def single_run(self) -> bool:
        return self.cells is None

    def grid(self, cfg: RunConfig, extras: dict) -> list[RunConfig]:
        """The paired runs it trains."""
        return [cfg] if self.cells is None else self.cells(cfg, extras)

    def job_key(self, cfg: RunConfig, extras: dict) -> str:
        """Equal keys, equal frames: the experiment, the configs of the paired runs it trains (an
        upload's content hash among them) and its other settings, whatever order they were chosen in."""
        settings = {
            k: sorted(v) if isinstance(v, list | tuple) else v for k, v in extras.items() if k in self.setup.extras
        }
        blob = json.dumps([self.key, [c.config_id for c in self.grid(cfg, extras)], settings], sort_keys=True)
        return f"{self.key}:{hashlib.sha1(blob.encode()).hexdigest()[:16]}"

    def compute(self, cfg: RunConfig, extras: dict, report: Reporter = QUIET) -> Frames:
        """The frames behind its charts for the form's ``cfg`` and the page's ``extras``; told to
        stop by ``report``, it raises Stopped."""
        if self.paired is not None:
            return self.paired(cfg, extras, report)
        return self.swept(self.grid(cfg, extras), report)


LIVE_FIELDS = ("task", "norms", "batch_size", "lengths", "length_range", "batching", "placement", "attention",
               "steps", "lr", "seed")  # fmt: skip

EXPERIMENTS: dict[str, Experiment] = by_key(
    Experiment(  # small batches of mostly short, padded sentences: where BN's troubles show, in a few seconds
        "live",
        Setup(RunConfig(batch_size=2, lengths="longtail"), LIVE_FIELDS),
        ("history", "summary", "generations"),
        paired=lambda cfg, extras, report: comparison(cfg, report),
    ),
    Experiment(  # short runs, scored once at the end: 5 batch sizes x 2 seeds in well under a minute
        "batch_size",
        Setup(
            RunConfig(steps=100, eval_every=100),
            ("task", "norms", "lengths", "batching", "attention", "steps", "lr"),
            {"sizes": (2, 4, 8, 16, 32), "seeds": 2},
        ),
        ("summary",),
        cells=batch_size_cells,
        swept=summary_only,
        title="{settings} · batch sizes {sizes} · {seeds} seed(s)",
        title_omit=("batch_size", "seed"),
    ),
    Experiment(
        "padding",
        Setup(
            RunConfig(norms=("bn", "masked_bn", "ln"), batch_size=4, steps=100, eval_every=100),
            ("norms", "batch_size", "length_range", "attention", "steps", "lr"),
            {"lengths": TASKS["text"].lengths, "batching": BATCHING, "seeds": 1},
        ),
        ("summary", "probe"),
        cells=padding_cells,
        swept=padding,
        title="{settings} · lengths {lengths} · batching {batching} · {seeds} seed(s)",
        title_omit=("lengths", "batching", "seed", "task"),
    ),
    Experiment(  # many pads to see
        "per_token",
        Setup(
            RunConfig(norms=("bn", "masked_bn", "ln"), lengths="longtail", steps=150),
            ("task", "norms", "batch_size", "lengths", "batching", "placement", "attention", "steps", "seed"),
        ),
        ("history", "stats", "splits"),
        paired=lambda cfg, extras, report: per_token(cfg, report),
    ),
    Experiment(  # the gap shows clearly
        "train_vs_inference",
        Setup(
            RunConfig(norms=("bn", "masked_bn", "ln"), batch_size=2, lengths="longtail", steps=200),
            ("task", "norms", "batch_size", "lengths", "batching", "attention", "steps", "lr", "seed"),
        ),
        ("history", "summary", "probe", "leak", "causality", "deploy", "generations"),
        paired=lambda cfg, extras, report: train_vs_inference(cfg, report),
    ),
    Experiment(  # the papers' fixes against LN and BN, decoder and encoder, small and large batches
        "fixes",
        Setup(
            RunConfig(norms=("ln", "bn", "batchrenorm", "powernorm", "groupnorm"), steps=150, eval_every=150),
            ("task", "norms", "lengths", "batching", "steps", "lr"),
            {"sizes": (2, 32), "attentions": ("causal", "bidirectional"), "seeds": 1},
        ),
        ("summary",),
        cells=fixes_cells,
        swept=summary_only,
        title="{settings} · batch sizes {sizes} · {attentions} · {seeds} seed(s)",
        title_omit=("batch_size", "seed"),
    ),
    Experiment(
        "gradients",
        Setup(
            RunConfig(steps=200),
            ("norms", "placement", "attention", "batch_size", "lengths", "steps", "lr", "seed"),
            {"layers": 6},  # deep enough for Post-norm's growth towards the output to show
        ),
        ("history", "profile"),
        paired=lambda cfg, extras, report: gradients(cfg, extras["layers"], report),
        title="{settings} · init profile with {layers} layers",
    ),
)
SETUPS = {key: e.setup for key, e in EXPERIMENTS.items()}  # what the pages' forms start from
FRAMES = {key: e.frames for key, e in EXPERIMENTS.items()}  # the frames each page's charts read


def grid(page: str, cfg: RunConfig, extras: dict) -> list[RunConfig]:
    """The paired runs ``page``'s experiment trains (its record's ``grid``)."""
    return EXPERIMENTS[page].grid(cfg, extras)


def compute(page: str, cfg: RunConfig, extras: dict, report: Reporter = QUIET) -> Frames:
    """The frames behind ``page``'s charts (its record's ``compute``)."""
    if page not in EXPERIMENTS:
        raise ValueError(f"no experiment on page {page!r}")
    return EXPERIMENTS[page].compute(cfg, extras, report)


# ---------------------------------------------------------------- comparability, for the overview
COMPARABILITY_CONFIGS = tuple(
    RunConfig(task=task, lengths=lengths_for(task), norms=("ln",))
    for task in ("control", "text", "shakespeare", "tangshi")
)  # the default run of each built-in task: batch 8, 300 steps, LayerNorm


def comparability_table(cfgs: Sequence[RunConfig] = COMPARABILITY_CONFIGS) -> Frames:
    """For each task, at every norm layer's input of its trained LayerNorm model, over the held-out
    set: the between-group share of a channel's variance for each grouping against its chance
    (core.studies.analysis.comparability), and each position's distribution of the first channels
    (core.studies.analysis.position_profile).
    Frames: comparability (task, layer, grouping, share, chance, values, groups) and positions
    (task, layer, channel, pos, mean, sd, count, pooled_mean, pooled_sd)."""
    tables, profiles = [], []
    for cfg in cfgs:
        model = train_paired(cfg).models[cfg.norms[0]]
        tables.append(comparability(model, cfg).assign(task=cfg.task))
        profiles.append(position_profile(model, cfg).assign(task=cfg.task))
    table, profile = pd.concat(tables, ignore_index=True), pd.concat(profiles, ignore_index=True)
    return {
        "comparability": table[["task", *[c for c in table if c != "task"]]],
        "positions": profile[["task", *[c for c in profile if c != "task"]]],
    }
