"""From Run to chart: a page asks for its experiment, and the visitor watches the shared job.

A page calls ``experiment(page, request, hint, chart)``, where ``request`` is the form's
``(config, extras)`` when it was submitted. The experiment's record (core.studies.experiments) keys and
titles the job; the server's one ``JOBS`` manager (core.studies.jobs) returns the stored outcome of the same
key, or lets the visitor join the job already running, or queues a new one. Training runs in the
job's own thread, never in the visitor's script; the script *watches*: it polls the job twice a
second (that poll is its heartbeat), draws the queue position or the progress line and the live
charts, and when the job completes keeps the outcome in ``st.session_state``, so the page shows it
on every rerun and when the visitor comes back.

Stop ends this visitor's watching (the job stops when nobody watches any more) and keeps the partial
results. A rerun (a display option, a second look at the page) goes on watching; leaving the page or
the app ends the heartbeat, and a job nobody polls for ``watch_timeout_s`` stops.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import altair as alt
import pandas as pd
import pyarrow as pa
import streamlit as st

from core import charts
from core.engine.metrics import HISTORY_COLUMNS
from core.settings.config import NORM_LABELS, RunConfig
from core.studies import experiments, jobs
from ui import controls, show
from ui.i18n import lang, t

JOBS = jobs.from_environment()  # one per server process: every session's jobs and their queue
jobs.log_to_stderr()  # the jobs' start and end in the server's log, beside Streamlit's
# At most two redraws a second. A redraw costs the browser about 0.1 s of CPU (two charts
# re-rendered, whatever their size): at 7 a second, a browser on the same two cores as the server
# spent about one core on them, taken from training. At 2 a second a default run completes as fast
# as with no live redraws at all (python -m benchmarks.app_vs_cli).
REDRAW_S = 0.5
# A room watching one job: each watcher's charts redraw every REDRAW_S up to this many watchers on
# the server, and less often beyond (every REDRAW_S x watchers / WATCHERS_AT_FULL_RATE seconds), so
# the redraws a room costs (the server's, and its browsers' where they share its cores) stay what
# this many visitors cost. The progress line still moves every REDRAW_S.
WATCHERS_AT_FULL_RATE = 4
LIVE_CURVES = {"loss": charts.LOSS_SERIES, "grad": charts.GRAD_SERIES}  # the live charts of one paired run
Request = tuple[RunConfig, dict]  # a submitted form: its config and the page's other settings

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


@dataclass(frozen=True)
class Watching:
    """What a visitor watches on a page: the job, as which watcher, and how to title its outcome."""

    job: jobs.Job
    watcher: str
    title: Title
    config: RunConfig | None  # for a paired run: its partial history's run columns and the exports


def _key(page: str, what: str) -> str:
    return f"{page}.{what}"


# ---------------------------------------------------------------- asking
LABELS = {
    "lengths": controls.LENGTH_LABELS,
    "batching": controls.BATCHING_LABELS,
    "attentions": controls.ATTENTION_LABELS,
}


def title(page: str, cfg: RunConfig, extras: dict) -> str:
    """The record's one line for this run, in the visitor's language: its settings, then its
    other settings (named choices in their canonical order, batch sizes sorted)."""
    exp = experiments.EXPERIMENTS[page]
    values = {}
    for name, value in extras.items():
        if name in LABELS:
            values[name] = ", ".join(t(label) for key, label in LABELS[name].items() if key in value)
        else:
            values[name] = sorted(value) if isinstance(value, list | tuple) else value
    return t(exp.title, settings=controls.describe(cfg, omit=exp.title_omit), **values)


def ask(page: str, cfg: RunConfig, extras: dict) -> None:
    """Join (or start, or recall) the job of ``page``'s experiment for these settings."""
    st.session_state.pop(_key(page, "refused"), None)  # a new attempt
    exp = experiments.EXPERIMENTS[page]
    if (old := st.session_state.pop(_key(page, "watching"), None)) is not None:
        JOBS.leave(old.job, old.watcher)  # a new request replaces what this visitor watched here
    watcher = uuid.uuid4().hex
    try:
        job = JOBS.join(
            exp.job_key(cfg, extras),
            lambda j: experiments.compute(page, cfg, extras, report=j),
            watcher,
            label=f"{page} seed {cfg.seed} steps {cfg.steps}",
        )
    except jobs.QueueFull as full:
        st.session_state[_key(page, "refused")] = full.limit
        return
    watching = Watching(job, watcher, lambda: title(page, cfg, extras), cfg if exp.single_run else None)
    if job.finished:
        _settle(page, watching)
    else:
        st.session_state[_key(page, "watching")] = watching


def _stop(page: str) -> None:
    """The Stop button's callback (run before the rerun it causes): stop watching, keep what the job
    has computed so far, and leave it (it stops if nobody else watches)."""
    watching = st.session_state.pop(_key(page, "watching"), None)
    if watching is None:
        return
    JOBS.leave(watching.job, watching.watcher)
    _keep_partial(page, watching)


def _keep_partial(page: str, watching: Watching) -> None:
    partial = watching.job.partial(watching.config)
    if any(len(df) for df in partial.values()):
        st.session_state[_key(page, "outcome")] = Outcome(
            watching.title,
            partial,
            watching.job.seconds or watching.job.ran_s,
            stopped=True,
            reached=status_line(watching.job),
            config=watching.config,
        )
    else:  # stopped while queued, or before the first step: the earlier outcome stays
        st.session_state[_key(page, "nothing")] = True


def _settle(page: str, watching: Watching) -> None:
    """A finished job's outcome for this visitor: complete, partial (everyone left it), or failed."""
    job = watching.job
    st.session_state.pop(_key(page, "watching"), None)
    if job.state == jobs.DONE:
        st.session_state[_key(page, "outcome")] = Outcome(
            watching.title, job.result, job.seconds, config=watching.config
        )
    elif job.state == jobs.FAILED:
        st.session_state[_key(page, "failed")] = job.error
    else:
        _keep_partial(page, watching)


# ---------------------------------------------------------------- watching
def status_line(job: jobs.Job) -> str:
    """Where the job is, in the visitor's language."""
    if job.state == jobs.QUEUED:
        return t(
            "in the queue: {position} of {queued} · about {wait:.0f} s to wait (the server is training other "
            "experiments; Stop leaves the queue)",
            position=JOBS.position(job),
            queued=JOBS.counts()["queued"],
            wait=JOBS.wait_s(job),
        )
    line = t("starting…")
    if job.cells is not None:
        p = job.cells
        line = t("{done} of {total} paired runs done · {seconds:.0f} s", done=p.done, total=p.total, seconds=job.ran_s)
    elif job.phase_text:
        line = t(job.phase_text)
    elif (p := job.progress) is not None:
        rate = p.step / p.elapsed if p.elapsed > 0 else 0.0
        line = t("step {step} of {total} · {rate:.0f} steps/s", step=p.step, total=p.total, rate=rate)
        line += "".join(
            t(" · {norm} diverged at step {step}, stopped", norm=t(NORM_LABELS[n]), step=s)
            for n, s in p.diverged.items()
        )
    if (n := len(job.watchers)) > 1:
        line += t(" · {n} visitors watching", n=n)
    return line


def fixed_spec(chart: alt.TopLevelMixin) -> dict:
    """The chart's Vega-Lite spec without its data: redrawn with new data only, a live chart
    updates in place instead of being rebuilt (no flicker)."""
    spec = chart.to_dict()
    spec.pop("datasets", None)
    spec.pop("data", None)
    return spec


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


def redraw_s() -> float:
    """How often a watcher's live charts redraw now (see WATCHERS_AT_FULL_RATE)."""
    return REDRAW_S * max(1.0, JOBS.counts()["watchers"] / WATCHERS_AT_FULL_RATE)


def _arrow(frame: pd.DataFrame) -> pa.Table:
    """A live chart's frame in the visitor's language, as the Arrow table Streamlit sends: made once
    per build and language for every watcher (see jobs.Job.curves)."""
    return pa.Table.from_pandas(show.localized_frame(frame), preserve_index=False)


def watch(page: str, watching: Watching, chart: Callable[[pd.DataFrame], alt.TopLevelMixin] | None) -> None:
    """Show the job until it finishes: Stop, the queue position or the progress line, and the live
    charts (a paired run's loss and gradient norm; a grid's ``chart`` of its summary so far). Each
    poll is this watcher's heartbeat; a Stop click or leaving interrupts it at its next redraw."""
    job = watching.job
    box = st.empty()
    area = box.container()
    area.button(
        t("Stop"),
        key=_key(page, "stop"),
        icon=":material/stop_circle:",
        help=t("Keeps what has been done so far"),
        on_click=_stop,
        args=(page,),
    )
    bar = area.progress(0.0, text=t("starting…"))
    cfg, smooth, drawn = watching.config, controls.smoothing(page), -1
    if cfg is not None:
        panes = [col.empty() for col in area.columns(2)]
        titles = (t("Loss"), t("Global gradient norm (before clipping)"))
        specs = live_specs(cfg.norms, cfg.steps, smooth, titles, lang())
    else:
        slot = area.empty()
    next_draw = 0.0
    while not job.finished:
        JOBS.seen(job, watching.watcher)
        bar.progress(job.fraction, text=status_line(job))
        now = time.monotonic()
        if cfg is not None and job.progress is not None and job.progress.step != drawn and now >= next_draw:
            drawn, every = job.progress.step, redraw_s()
            next_draw = now + every
            for pane, spec, (name, metrics) in zip(panes, specs, LIVE_CURVES.items(), strict=True):
                data = job.curves(name, metrics, smooth, every / 2, shown=_arrow, lang=lang())
                pane.vega_lite_chart(data, spec, width="stretch")
        elif cfg is None and chart is not None and job.cells is not None and job.cells.done != drawn:
            drawn = job.cells.done
            show.draw(chart(job.cells.summary), slot)
        job.wait(REDRAW_S)
    box.empty()
    _settle(page, watching)


# ---------------------------------------------------------------- a page's run cycle
def outcome(page: str) -> Outcome | None:
    return st.session_state.get(_key(page, "outcome"))


def experiment(
    page: str,
    request: Request | None,
    hint: str,
    chart: Callable[[pd.DataFrame], alt.TopLevelMixin] | None = None,
) -> Outcome | None:
    """A page's run cycle: ask for ``request``'s job if the form was submitted, watch the job this
    visitor watches (if any) to its end, then return the outcome to show, with a line saying what
    ran (a warning if it was stopped), or show ``hint``. ``chart`` draws a grid's summary so far."""
    if request is not None:
        ask(page, *request)
    if (limit := st.session_state.get(_key(page, "refused"))) is not None:
        st.warning(
            t(
                "The server is busy: {limit} experiments are already waiting in the queue. "
                "Please press Run again in a minute; your settings are kept.",
                limit=limit,
            ),
            icon=":material/hourglass_top:",
        )
    if (watching := st.session_state.get(_key(page, "watching"))) is not None:
        watch(page, watching, chart)
    if st.session_state.pop(_key(page, "nothing"), False):
        st.warning(
            t("Stopped before training began: nothing was trained. Press Run to try again."),
            icon=":material/pause:",
        )
    if (error := st.session_state.pop(_key(page, "failed"), None)) is not None:
        st.error(t("The run failed: {error}. Your settings and earlier results are kept.", error=error))
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
