"""Running an experiment from a page: live progress, a Stop button, partial results, caching.

A page calls ``experiment(page, Job(key, title, work), hint)``. ``work(live)`` does the heavy
part, reports through ``live`` (progress bar, live charts) and returns a dict of DataFrames, the
data behind the page's charts. The outcome goes into ``st.session_state`` (the page shows it on every rerun and
when the visitor comes back to the page) and, if the job ran to the end, into a shared bounded
store, so the same settings come back instantly, for this visitor and the next.

Stop: the button is drawn before the work starts. A click makes Streamlit rerun the page, which
interrupts this script at its next Streamlit call (the throttled redraws). What ``work`` registered
with ``live.keep`` is then turned into a partial outcome by ``outcome(page)`` on that rerun.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import altair as alt
import pandas as pd
import streamlit as st

from core import charts, experiments
from core.config import NORM_LABELS, RunConfig
from core.metrics import HISTORY_COLUMNS, RUN_COLUMNS
from core.sweep import After, SweepProgress, run_sweep
from core.train import Progress, RunResult, train_paired
from ui import show, slots
from ui.controls import DEFAULT_SMOOTH
from ui.i18n import lang, t

STORE_ENTRIES = 24  # completed outcomes kept for everyone (a few MB each)
STORE_TTL_S = 6 * 3600
# At most two redraws a second. A redraw costs the browser about 0.1 s of CPU (two charts
# re-rendered, whatever their size): at 7 a second, a browser on the same two cores as the server
# spent about one core on them, taken from training. At 2 a second a default run completes as fast
# as with no live redraws at all (python -m benchmarks.app_vs_cli).
REDRAW_S = 0.5


# A title, or a function making it: made when shown, it is in the language of whoever sees it (an
# outcome in the shared store is shown to every visitor who asks for the same settings).
Title = str | Callable[[], str]


def text(title: Title) -> str:
    return title() if callable(title) else title


@dataclass(frozen=True)
class Outcome:
    """What a job left: the frames behind the page's charts and how the job went."""

    title: Title  # one line saying what ran, shown above the results
    data: dict[str, pd.DataFrame]
    seconds: float
    stopped: bool = False
    reached: str = ""  # for a stopped job, its last progress line ("step 72 of 3000 · ...")
    config: RunConfig | None = None  # the run's config, for exports, when the job is one paired run


@st.cache_resource(max_entries=STORE_ENTRIES, ttl=STORE_TTL_S, show_spinner=False)
def _shared_slot(key: str) -> dict:
    """A box per job key, shared by all sessions, bounded and expiring. st.cache_data cannot hold
    these results: they are produced while drawing live, and a cached function that draws breaks
    on a cache hit; so the live run fills the box and later runs read it."""
    return {}


class Live:
    """The live area of a running job: Stop button, progress bar, live charts, and the partial
    results a Stop would leave (``keep``). All of it disappears when the job completes."""

    def __init__(self, page: str):
        self._box = st.empty()
        self.area = self._box.container()
        self.area.button(
            t("Stop"), key=f"{page}.stop", icon=":material/stop_circle:", help=t("Keeps what has been done so far")
        )
        self._bar = self.area.progress(0.0, text=t("starting…"))
        self._kept: dict[str, Callable[[], pd.DataFrame]] = {}
        self.cancelled = False  # set once the partial results are taken: the work stops at its next step
        self.queued = True  # until the job holds one of the server's run slots (ui.slots)
        self.reached = ""
        self._last_draw = float("-inf")
        self.started = time.perf_counter()

    def keep(self, name: str, make: Callable[[], pd.DataFrame]):
        """Register how to build the frame ``name`` from what has been done so far. ``make`` may run
        while the work goes on in another thread: it must read a snapshot, not a growing list."""
        self._kept[name] = make

    def partial(self) -> dict[str, pd.DataFrame]:
        """What the interrupted work had done. Streamlit starts the rerun that follows a Stop (or a
        page change) before the old script thread has reached its next Streamlit call and died, so
        the work may still be running: tell it to stop, and build from snapshots (see ``keep``)."""
        self.cancelled = True
        return {name: make() for name, make in self._kept.items()}

    def due(self) -> bool:
        """True at most every REDRAW_S seconds: the moment to redraw (and to be interruptible)."""
        now = time.perf_counter()
        if now - self._last_draw < REDRAW_S:
            return False
        self._last_draw = now
        return True

    def progress(self, fraction: float, text: str):
        self.reached = text
        self._bar.progress(min(max(fraction, 0.0), 1.0), text=text)

    def close(self):
        self._box.empty()


def _running_key(page: str) -> str:
    return f"{page}.running"


def _outcome_key(page: str) -> str:
    return f"{page}.outcome"


@dataclass(frozen=True)
class Job:
    """Heavy work a page asks for: ``key`` identifies its result (equal keys, equal results)."""

    key: str
    title: Title  # one line saying what runs
    work: Callable[[Live], dict[str, pd.DataFrame]]
    config: RunConfig | None = None


def paired_job(cfg: RunConfig, submitted: bool, work: Callable[[Live, RunConfig], dict], describe) -> Job | None:
    """The job of a page that trains one paired run, when its form was submitted: ``work(live, cfg)``,
    keyed by the config and titled ``describe(cfg)`` (made when shown, in the viewer's language)."""
    if not submitted:
        return None
    return Job(cfg.config_id, lambda: describe(cfg), lambda live: work(live, cfg), cfg)


def run_job(page: str, job: Job) -> None:
    """Run ``job`` live (or recall its stored outcome) and leave the outcome in session state."""
    st.session_state.pop(_refused_key(page), None)  # a new attempt
    slot = _shared_slot(f"{page}:{job.key}")
    if "outcome" in slot:
        st.session_state[_outcome_key(page)] = slot["outcome"]
        return
    live = Live(page)
    st.session_state[_running_key(page)] = (job, live)  # from now on a Stop finds it (see outcome)
    if not _take_slot(page, live):
        if st.session_state.get(_running_key(page), (None, None))[1] is live:
            del st.session_state[_running_key(page)]
        return
    try:
        data = job.work(live)
    except Exception:  # a bug, not a Stop (Streamlit's interrupts are BaseExceptions): no partial
        del st.session_state[_running_key(page)]
        raise
    finally:  # also on a Stop or when the visitor leaves: Streamlit's interrupt passes through here
        slots.SLOTS.release()
    done = Outcome(job.title, data, time.perf_counter() - live.started, config=job.config)
    del st.session_state[_running_key(page)]
    st.session_state[_outcome_key(page)] = slot["outcome"] = done
    live.close()


def _refused_key(page: str) -> str:
    return f"{page}.refused"


def _take_slot(page: str, live: Live) -> bool:
    """A slot among the server's concurrent runs (see ui.slots), waiting a little if all are taken.
    Refused, the visitor is told to retry (``experiment`` says so until the next attempt, also on a
    rerun); their settings and earlier results stay as they were. Stopped while waiting (the rerun
    that follows cancels ``live``), the slot is handed back."""
    try:
        slots.SLOTS.acquire(
            on_wait=lambda left: live.progress(
                0.0, t("waiting for a free slot: the server is training for other visitors ({left:.0f} s)…", left=left)
            )
        )
    except slots.Busy as busy:
        st.session_state[_refused_key(page)] = busy.limit
        live.close()
        return False
    live.queued = False
    if live.cancelled:  # Stop was pressed while waiting, and the rerun has said so: hand the slot back
        slots.SLOTS.release()
        return False
    return True


def outcome(page: str) -> Outcome | None:
    """The page's latest outcome; a job interrupted by Stop (or by leaving the page) becomes a
    partial outcome here, on the rerun that followed the interruption."""
    running = st.session_state.pop(_running_key(page), None)
    if running is None:
        return st.session_state.get(_outcome_key(page))
    job, live = running
    partial = {} if live.queued else live.partial()
    live.cancelled = True  # a job still waiting for a run slot hands it back as soon as it gets it
    if any(len(df) for df in partial.values()):
        st.session_state[_outcome_key(page)] = Outcome(
            job.title,
            partial,
            time.perf_counter() - live.started,
            stopped=True,
            reached=live.reached,
            config=job.config,
        )
    else:  # stopped while waiting for a run slot, or before the first step: the earlier outcome stays
        st.warning(
            t("Stopped before training began: nothing was trained. Press Run to try again."),
            icon=":material/pause:",
        )
    return st.session_state.get(_outcome_key(page))


# ---------------------------------------------------------------- the two kinds of heavy work
def history_frame(rows: list[tuple], cfg: RunConfig) -> pd.DataFrame:
    """Progress rows as a history frame with the run columns, as train_paired's own."""
    df = pd.DataFrame(list(rows), columns=HISTORY_COLUMNS)  # a snapshot: another thread may append
    return df.assign(**{c: cfg.config_id if c == "config_id" else getattr(cfg, c) for c in RUN_COLUMNS})


def fixed_spec(chart: alt.TopLevelMixin) -> dict:
    """The chart's Vega-Lite spec without its data: redrawn with new data only, a live chart
    updates in place instead of being rebuilt (no flicker)."""
    spec = chart.to_dict()
    spec.pop("datasets", None)
    spec.pop("data", None)
    return spec


LIVE_CURVES = (charts.LOSS_SERIES, charts.GRAD_SERIES)  # the two live charts' metrics
CURVE_COLUMNS = ["norm", "label", "series", "metric", "layer", "step", "tokens", "sparse", "value", "smoothed"]


class LiveCurves:
    """One live chart's data, as ``charts.curve_data`` makes it from a history, but built step by
    step: each step's points are appended with their smoothed value carried forward (one running
    EMA per curve, the debiased EMA of ``charts.ema``), so a redraw only turns a list into a frame.
    Recomputing every curve from the whole history on each redraw held the GIL the training threads
    need for about 25 ms a time."""

    def __init__(self, metrics: Mapping[str, str], smooth: float):
        self.metrics = metrics
        self.smooth = smooth
        self._ema: dict[tuple[str, str], tuple[float, float]] = {}  # (norm, metric) -> (weighted sum, sum of weights)
        self._rows: list[tuple] = []

    def add(self, rows: Iterable[tuple]):
        for norm, step, tokens, metric, layer, value in rows:
            if metric in self.metrics and layer == "all":
                sparse = metric in charts.SPARSE_METRICS  # held-out losses: dots, never smoothed
                smoothed = value if sparse else self._smoothed(norm, metric, value)
                label, series = NORM_LABELS[norm], self.metrics[metric]
                self._rows.append((norm, label, series, metric, layer, step, tokens, sparse, value, smoothed))

    def _smoothed(self, norm: str, metric: str, value: float) -> float:
        if self.smooth <= 0:
            return float(value)
        total, weights = (w * self.smooth for w in self._ema.get((norm, metric), (0.0, 0.0)))
        if not math.isnan(value):  # as pandas' ewm: a missing value adds nothing, the older ones still decay
            total, weights = total + value, weights + 1.0
        self._ema[norm, metric] = total, weights
        return total / weights if weights else math.nan

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self._rows, columns=CURVE_COLUMNS)
        return charts.thin(df.sort_values("step", kind="stable", ignore_index=True))


@st.cache_data(max_entries=32, show_spinner=False)
def live_specs(norms: tuple[str, ...], steps: int, smooth: float, titles: tuple[str, str], lang: str) -> list[dict]:
    """The two live charts' specs, without data: redraws send data only, so the charts update in
    place. Cached: altair builds and validates them in about 0.1 s, on the way to the first point."""
    empty = pd.DataFrame(columns=HISTORY_COLUMNS)
    kw = {"smooth": smooth, "max_step": steps, "norms": norms}
    return [
        show.localized(fixed_spec(charts.loss_curves(empty, title=titles[0], **kw))),
        show.localized(fixed_spec(charts.grad_norm_curves(empty, title=titles[1], log_y=True, **kw))),
    ]


def train(live: Live, cfg: RunConfig, smooth: float) -> RunResult:
    """train_paired with a live loss chart and gradient-norm chart, redrawn twice a second (REDRAW_S).
    A Stop keeps the rows so far as the partial ``history``."""
    rows: list[tuple] = []
    live.keep("history", lambda: history_frame(rows, cfg))
    curves = [LiveCurves(metrics, smooth) for metrics in LIVE_CURVES]  # only what the live charts draw
    panes = [col.empty() for col in live.area.columns(2)]
    specs = live_specs(cfg.norms, cfg.steps, smooth, (t("Loss"), t("Global gradient norm (before clipping)")), lang())

    def on_step(p: Progress):
        rows.extend(p.rows)
        for curve in curves:
            curve.add(p.rows)
        if not (p.step in (0, p.total) or live.due()):
            return
        rate = p.step / p.elapsed if p.elapsed > 0 else 0.0
        gone = "".join(
            t(" · {norm} diverged at step {step}, stopped", norm=t(NORM_LABELS[n]), step=s)
            for n, s in p.diverged.items()
        )
        live.progress(
            p.step / p.total,
            t("step {step} of {total} · {rate:.0f} steps/s", step=p.step, total=p.total, rate=rate) + gone,
        )
        for pane, spec, curve in zip(panes, specs, curves, strict=True):
            pane.vega_lite_chart(show.localized_frame(curve.frame()), spec, width="stretch")

    return train_paired(cfg, on_step=on_step, should_stop=lambda: live.cancelled)


def compute(page: str, live: Live, cfg: RunConfig, extras: dict | None = None) -> dict[str, pd.DataFrame]:
    """The page's experiment (core.experiments.compute) for one paired run, trained with the live
    charts (``train``) and the progress line saying what runs after training."""
    return experiments.compute(
        page,
        cfg,
        extras or {},
        train=lambda c: train(live, c, smooth=st.session_state.get(f"{page}.smooth", DEFAULT_SMOOTH)),
        progress=lambda text: live.progress(1.0, t(text)),
    )


def live_sweep(live: Live, chart: Callable[[pd.DataFrame], alt.TopLevelMixin]) -> experiments.Sweep:
    """A page's sweep (core.experiments.Sweep) with progress and ``chart`` redrawn as cells finish."""
    return lambda cfgs, after, on_result: sweep(live, cfgs, chart, after, on_result)


def sweep(
    live: Live,
    cfgs: list[RunConfig],
    chart: Callable[[pd.DataFrame], alt.TopLevelMixin],
    after: After | None = None,
    on_result: Callable[[RunResult], None] | None = None,
) -> pd.DataFrame:
    """run_sweep with progress and the chart redrawn as each paired run finishes (in whatever
    order the workers finish them); ``after`` and ``on_result`` as run_sweep's. A Stop keeps the
    paired runs finished so far as the partial ``summary``; the progress line ticks while the
    workers train, so a Stop is seen within half a second."""
    latest = {"summary": pd.DataFrame(), "done": 0}  # run_sweep's summary so far, for a Stop
    live.keep("summary", lambda: latest["summary"])
    slot = live.area.empty()

    def line():
        live.progress(
            latest["done"] / len(cfgs),
            t(
                "{done} of {total} paired runs done · {seconds:.0f} s",
                done=latest["done"],
                total=len(cfgs),
                seconds=time.perf_counter() - live.started,
            ),
        )

    def on_run(p: SweepProgress):
        latest.update(summary=p.summary, done=p.done)
        if on_result:
            on_result(p.result)
        line()
        show.draw(chart(p.summary), slot)

    line()
    return run_sweep(cfgs, on_run=on_run, should_stop=lambda: live.cancelled, after=after, on_wait=line)


def experiment(page: str, job: Job | None, hint: str) -> Outcome | None:
    """A page's run cycle: run ``job`` if there is one (the form was submitted), then return the
    outcome to show, with a line saying what ran (a warning if it was stopped), or show ``hint``."""
    if job is not None:
        run_job(page, job)
    if (limit := st.session_state.get(_refused_key(page))) is not None:
        st.warning(
            t(
                "The server is busy: {limit} experiments are already training for other visitors. "
                "Please press Run again in a minute; your settings are kept.",
                limit=limit,
            ),
            icon=":material/hourglass_top:",
        )
    out = outcome(page)
    if out is None:
        st.info(hint, icon=":material/touch_app:")
    elif out.stopped:
        st.warning(
            t(
                "Stopped after {seconds:.1f} s ({reached}): showing the partial results. {title}",
                seconds=out.seconds,
                reached=out.reached or t("before the first step"),
                title=text(out.title),
            ),
            icon=":material/pause:",
        )
    else:
        st.caption(f"{text(out.title)} · {out.seconds:.1f} s")
    if out is not None and (lines := diverged_lines(out.data)):
        st.warning(
            t(
                "**Auto-stopped as diverged** (the loss or the gradient norm blew up; its curves end there, the other "
                "models trained on): {models}.",
                models="; ".join(lines),
            ),
            icon=":material/warning:",
        )
    return out


def diverged_lines(data: dict[str, pd.DataFrame]) -> list[str]:
    """One phrase per diverged model: from a paired run's history ("diverged" rows, their value the
    step) or a sweep's summary (its ``diverged`` and ``diverged_at`` columns)."""
    history, summary = data.get("history"), data.get("summary")
    if history is not None and len(history) and "metric" in history:
        rows = history[history["metric"] == "diverged"]
        return [
            t("{norm} at step {step}", norm=t(NORM_LABELS.get(n, n)), step=int(s))
            for n, s in zip(rows["norm"], rows["value"], strict=True)
        ]
    if summary is not None and len(summary) and "diverged" in summary:
        gone = summary[summary["diverged"].astype(bool)]
        return [
            t(
                "{norm} in {n} of {total} paired runs (first at step {step})",
                norm=t(NORM_LABELS.get(norm, norm)),
                n=len(rows),
                total=int((summary["norm"] == norm).sum()),
                step=int(rows["diverged_at"].min()),
            )
            for norm, rows in gone.groupby("norm", sort=False)
        ]
    return []
