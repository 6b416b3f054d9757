"""Reliability of the app as a shared, public server: divergence, stopping, leaving mid-run,
concurrent sessions and the bound on concurrent runs, nonsense in the URL.

AppTest runs the real pages in this process, so the training threads they start are visible to
``threading.enumerate()`` (the paired trainer's pool threads are named ``paired_*``).
"""

from __future__ import annotations

import io
import math
import re
import threading
import time

import pandas as pd
import pytest
import streamlit.testing.v1.app_test as app_test
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from core.engine.report import Reporter
from core.engine.train import train_paired
from core.settings.config import LIMITS, RunConfig
from core.studies import experiments, jobs
from tests.helpers import CHARTS, TIMEOUT, open_page
from ui import runner

pytestmark = pytest.mark.usefixtures("empty_store")  # every Run trains

# 'none' blows up at this learning rate (non-finite loss within ~15 steps), LayerNorm does not.
DIVERGING = {"norms": ["none", "ln"], "lr": 0.1, "steps": 40}


@pytest.fixture
def downloads(monkeypatch) -> dict:
    """file name -> the callable a deferred download button would run on click (the exact bytes a
    visitor downloads), recorded as the script registers them."""
    seen: dict = {}
    real = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        seen[file_name] = data_callable
        return real(self, data_callable, mimetype, coordinates, file_name=file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return seen


@pytest.fixture
def script_runners(monkeypatch) -> list:
    """The AppTest script runners, newest last: a test can stop a script mid-run as the server does
    when a visitor closes the tab or leaves the app (``request_stop``)."""
    made: list = []

    class Recording(app_test.LocalScriptRunner):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(app_test, "LocalScriptRunner", Recording)
    return made


def training_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("paired")]


def open_live(**values) -> AppTest:
    at = open_page("live")
    set_form(at, **values)
    return at


def set_form(at: AppTest, steps=None, seed=None, norms=None, lr=None, batch_size=None):
    if steps is not None:
        at.number_input(key="live.steps").set_value(steps)
    if seed is not None:
        at.number_input(key="live.seed").set_value(seed)
    if norms is not None:
        at.pills(key="live.norms").set_value(norms)
    if lr is not None:
        at.select_slider(key="live.lr").set_value(lr)
    if batch_size is not None:
        at.select_slider(key="live.batch_size").set_value(batch_size)


def warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


def csv_is_clean(text: str) -> pd.DataFrame:
    """No inf and no 'nan' text in the CSV: missing numbers are empty cells."""
    bad = re.search(r"(?<![a-z_])-?(inf|infinity|nan)(?![a-z_])", text.lower())
    assert bad is None, text[max(0, bad.start() - 200) : bad.end() + 50]
    return pd.read_csv(io.StringIO(text))


# ---------------------------------------------------------------- divergence
def test_live_page_shows_a_diverged_model_auto_stopped_and_exports_clean_csv(downloads):
    at = open_live(**DIVERGING)
    at.button(key="live.run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]

    out = at.session_state["live.outcome"]
    s = out.data["summary"].set_index("norm")
    assert s.loc["none", "diverged"] and not s.loc["ln", "diverged"], s
    step = int(s.loc["none", "diverged_at"])
    assert 0 < step < DIVERGING["steps"]
    note = [w for w in warnings(at) if "diverged" in w]
    assert len(note) == 1 and "Auto-stopped as diverged" in note[0] and f"no norm at step {step}" in note[0], note
    assert "LayerNorm" not in note[0]

    h = out.data["history"]
    assert h[(h.norm == "none") & (h.metric == "train_loss")].step.max() < step  # its curves end there
    assert h[(h.norm == "ln") & (h.metric == "train_loss")].step.max() == DIVERGING["steps"] - 1  # LN went on
    assert len(at.get("vega_lite_chart")) == CHARTS["live"]  # both charts still render

    export = csv_is_clean(downloads["live_history.csv"]())
    assert set(export.norm) == {"none", "ln"} and export["value"].map(math.isfinite).all()
    assert (export[export.metric == "diverged"].value == step).all()
    for name in ("live_loss.csv", "live_grad_norm.csv"):
        chart_rows = csv_is_clean(downloads[name]())
        assert chart_rows["value"].map(math.isfinite).all()


# ---------------------------------------------------------------- stopping and leaving
def run_until_step(at: AppTest, script_runners, monkeypatch, step: int = 20) -> dict:
    """Press Run and, once training has passed ``step``, stop the visitor's script as the server
    does when the visitor leaves or clicks (AppTest's runner, from another thread): the script
    returns while the job trains on. Returns the step and the time reached when it was stopped."""
    started = threading.Event()
    real_train = experiments.train_paired
    latest = {"step": 0, "elapsed": 0.0}
    requested: dict = {}

    def watched(cfg, report):
        class Seen(Reporter):
            def step(self, p):
                latest.update(step=p.step, elapsed=p.elapsed)
                if p.step >= step:
                    started.set()
                report.step(p)

            def should_stop(self):
                return report.should_stop()

        return real_train(cfg, Seen())

    def leave():
        if started.wait(TIMEOUT):
            requested.update(latest)  # what had been trained when the visitor's script stopped
            script_runners[-1].request_stop()

    monkeypatch.setattr(experiments, "train_paired", watched)
    threading.Thread(target=leave, daemon=True).start()
    at.button(key="live.run").click().run()
    assert started.is_set(), f"training never reached step {step}"
    assert not at.exception, at.exception
    return requested


def until(condition, timeout: float = TIMEOUT) -> float:
    t0 = time.monotonic()
    while not condition():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic() - t0


def test_stop_keeps_partial_results_and_ends_the_job_nobody_else_watches(downloads, script_runners, monkeypatch):
    """A Stop keeps what was trained up to the click: the partial run is shown, its download holds
    exactly those steps, and the job (watched by nobody else) ends within about a step; the next run
    starts clean."""
    assert not training_threads()
    at = open_live(steps=3000, seed=11)  # far longer than the test: it must be cut short
    run_until_step(at, script_runners, monkeypatch)  # the script stops: the job trains on, watched
    job = at.session_state["live.watching"].job
    assert job.state == jobs.RUNNING
    at.button(key="live.stop").click().run()  # the Stop click
    assert not at.exception, at.exception
    until(lambda: job.finished and not training_threads(), 10)
    assert job.state == jobs.STOPPED and runner.JOBS.stored(job.key) is None
    out = at.session_state["live.outcome"]
    assert out.stopped and "live.watching" not in at.session_state
    assert any("Stopped" in w and "partial" in w for w in warnings(at)), warnings(at)
    assert len(at.get("vega_lite_chart")) == CHARTS["live"]
    trained = out.data["history"]
    last = int(trained[trained.metric == "train_loss"].step.max())
    # Everything reported before the click is kept, and the job ends within 2 s worth of steps.
    rate = job.progress.step / job.progress.elapsed
    assert last <= job.progress.step <= last + 2 + 2.0 * rate, (last, job.progress.step, rate)
    export = csv_is_clean(downloads["live_history.csv"]())
    assert int(export[export.metric == "train_loss"].step.max()) == last
    assert (export.cfg_steps == 3000).all() and (export.cfg_seed == 11).all()

    set_form(at, steps=8, seed=12)  # the next run starts clean: nothing of the stopped one
    at.button(key="live.run").click().run()
    assert not at.exception, at.exception
    fresh = at.session_state["live.outcome"]
    assert not fresh.stopped and not any("Stopped" in w for w in warnings(at))
    h = fresh.data["history"]
    assert h.step.max() == 8 and (h.seed == 12).all() and h.config_id.nunique() == 1
    export = csv_is_clean(downloads["live_history.csv"]())
    assert (export.cfg_seed == 12).all() and int(export.step.max()) == 8
    assert not training_threads()


def test_leaving_mid_run_ends_the_job_after_the_watch_timeout(script_runners, monkeypatch):
    """A visitor who leaves (the server stops their script; no Stop) stops polling the job: with
    nobody else watching, it ends about ``watch_timeout_s`` later and is not stored; coming back,
    the visitor finds the partial run."""
    monkeypatch.setattr(runner, "JOBS", jobs.JobManager(watch_timeout_s=1.0))
    at = open_live(steps=3000, seed=13)
    requested = run_until_step(at, script_runners, monkeypatch)
    left = time.monotonic()
    job = at.session_state["live.watching"].job
    until(lambda: job.finished and not training_threads(), 30)
    assert time.monotonic() - left < 1.0 + 3.0  # the timeout, a poll and a step
    assert job.state == jobs.STOPPED and runner.JOBS.stored(job.key) is None
    assert job.progress.step > requested["step"]  # it trained on while nobody had yet given up on it
    at.run()  # back on the page
    assert not at.exception, at.exception
    out = at.session_state["live.outcome"]
    assert out.stopped and int(out.data["history"].step.max()) == job.progress.step
    assert any("Stopped" in w and "partial" in w for w in warnings(at)), warnings(at)


def test_a_rerun_while_training_goes_on_watching(script_runners, monkeypatch):
    """A rerun mid-run is not a Stop: the page watches the same job to its
    end, trained once."""
    at = open_live(steps=60, seed=14)
    run_until_step(at, script_runners, monkeypatch, step=5)
    job = at.session_state["live.watching"].job
    at.run()  # a rerun (as a widget change or a second look causes) watches on, to the end
    assert not at.exception, at.exception
    out = at.session_state["live.outcome"]
    assert job.state == jobs.DONE and not out.stopped and out.data is job.result
    assert out.data["history"].step.max() == 60


class Holder:
    """Another visitor's job holding the server's only slot until released."""

    def __init__(self, manager: jobs.JobManager):
        self.release = threading.Event()
        self.job = manager.join("someone else's", lambda job: self.release.wait(TIMEOUT) and {}, "other")
        until(lambda: self.job.state == jobs.RUNNING)


def test_a_full_queue_refuses_with_a_message_and_keeps_settings_and_results(monkeypatch):
    """With the only slot taken and no room in the queue, Run is refused at once with a clear
    message; the visitor's settings and earlier results stay, and the retry runs them."""
    manager = jobs.JobManager(slots=1, queue_limit=0)
    monkeypatch.setattr(runner, "JOBS", manager)
    at = open_live(steps=6)
    at.button(key="live.run").click().run()
    first = at.session_state["live.outcome"]
    assert not first.stopped

    holder = Holder(manager)
    try:
        set_form(at, steps=7, seed=5)
        t0 = time.perf_counter()
        at.button(key="live.run").click().run()
        assert time.perf_counter() - t0 < 30
        assert not at.exception, at.exception
        busy = [w for w in warnings(at) if "busy" in w]
        assert len(busy) == 1 and "Run again" in busy[0] and "queue" in busy[0], warnings(at)
        assert at.session_state["live.outcome"] is first  # earlier results still shown
        assert len(at.get("vega_lite_chart")) == CHARTS["live"]
        assert at.number_input(key="live.steps").value == 7 and at.number_input(key="live.seed").value == 5
        assert "live.watching" not in at.session_state
        at.run()  # any rerun (a display option, a late Stop click) still says why nothing new appeared
        assert any("busy" in w for w in warnings(at)) and at.session_state["live.outcome"] is first
    finally:
        holder.release.set()
    until(lambda: holder.job.finished)
    at.button(key="live.run").click().run()  # the retry, with a free slot, runs those settings
    assert not at.exception and not any("busy" in w for w in warnings(at))
    out = at.session_state["live.outcome"]
    assert out.config.steps == 7 and out.config.seed == 5 and not out.stopped


def test_a_queued_visitor_sees_their_place_and_stop_leaves_the_queue(monkeypatch, script_runners):
    """Behind a running job, Run queues: the visitor sees their place and a rough wait. Stop takes
    the job out of the queue at once (it never trains), the earlier results stay, and the rerun
    says nothing was trained; with the slot free, the same settings train."""
    manager = jobs.JobManager(slots=1)
    monkeypatch.setattr(runner, "JOBS", manager)
    at = open_live(steps=6, seed=20)
    at.button(key="live.run").click().run()
    first = at.session_state["live.outcome"]
    holder = Holder(manager)
    try:
        set_form(at, seed=21)

        def leave():  # the script stops once the queue position was drawn (it redraws twice a second)
            until(lambda: manager.counts()["queued"] == 1)
            time.sleep(1.0)
            script_runners[-1].request_stop()

        threading.Thread(target=leave, daemon=True).start()
        at.button(key="live.run").click().run()
        assert not at.exception, at.exception
        lines = [p.proto.text for p in at.get("progress")]
        assert any("in the queue: 1 of 1" in line and "to wait" in line for line in lines), lines
        job = at.session_state["live.watching"].job
        at.button(key="live.stop").click().run()
        assert not at.exception, at.exception
        assert job.state == jobs.STOPPED and manager.counts()["queued"] == 0
        assert any("Stopped before training began" in w for w in warnings(at)), warnings(at)
        assert at.session_state["live.outcome"] is first and "live.watching" not in at.session_state
        assert len(at.get("vega_lite_chart")) == CHARTS["live"]
        assert holder.job.state == jobs.RUNNING and not training_threads()
    finally:
        holder.release.set()
    until(lambda: holder.job.finished)
    at.button(key="live.run").click().run()  # a free slot: the same settings now train
    assert not at.exception and at.session_state["live.outcome"].config.seed == 21


def test_visitors_asking_for_the_same_run_share_one_training(monkeypatch):
    """Two sessions press Run on the same settings at once: one training, both see its results."""
    trained: list = []
    real_train = experiments.train_paired

    def counted(cfg, report):
        trained.append(cfg)
        return real_train(cfg, report)

    monkeypatch.setattr(experiments, "train_paired", counted)
    pages = [open_live(steps=80, seed=31), open_live(steps=80, seed=31)]
    threads = [threading.Thread(target=lambda at=at: at.button(key="live.run").click().run()) for at in pages]
    for th in threads:
        th.start()
    for th in threads:
        th.join(TIMEOUT)
    outs = [at.session_state["live.outcome"] for at in pages]
    assert len(trained) == 1 and outs[0].data is outs[1].data and not outs[0].stopped
    assert outs[0].data["history"].step.max() == 80


# ---------------------------------------------------------------- concurrency
def test_concurrent_runs_get_exactly_the_numbers_they_get_alone():
    cfgs = [
        RunConfig(steps=10, eval_every=5, eval_size=16, norms=("bn", "ln"), seed=1, batch_size=4),
        RunConfig(steps=10, eval_every=5, eval_size=16, norms=("masked_bn", "rms"), seed=2, lengths="longtail"),
        RunConfig(steps=10, eval_every=5, eval_size=16, norms=("none", "ln"), seed=1, batch_size=2),
        RunConfig(steps=10, eval_every=5, eval_size=16, norms=("bn", "ln"), seed=1, batch_size=4),  # twice at once
    ]
    alone = [train_paired(c).history for c in cfgs]
    together: list = [None] * len(cfgs)

    def work(i):
        together[i] = train_paired(cfgs[i]).history

    threads = [threading.Thread(target=work, args=(i,), name=f"session-{i}") for i in range(len(cfgs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not any(t.is_alive() for t in threads), "a concurrent run never finished"
    for a, b in zip(alone, together, strict=True):
        pd.testing.assert_frame_equal(a, b)


# ---------------------------------------------------------------- nonsense in the URL
@pytest.mark.parametrize(
    "params",
    [
        {"steps": "99999", "seed": "-4", "lr": "7", "batch_size": "3", "live.steps": "5"},
        {"steps": "abc", "norms": "foo,<script>", "task": "zzz", "length_range": "70,1", "seed": "1e400"},
        {"steps": "nan", "smooth": "inf", "log_y": "maybe", "x": "time", "unknown": "1", "norms": ""},
        {"task": "control", "lengths": "longtail"},  # each valid, together not: named, and Run fits the lengths
    ],
)
def test_nonsense_url_parameters_never_raise(params):
    """Whatever a link carries, the page draws, its widgets hold allowed values, and Run either
    trains or names the setting that is wrong (the link's own warnings are ui/share.py's)."""
    at = open_page("live", params)
    steps, seed = at.number_input(key="live.steps").value, at.number_input(key="live.seed").value
    assert LIMITS["steps"][0] <= steps <= LIMITS["steps"][1] and LIMITS["seed"][0] <= seed <= LIMITS["seed"][1]
    if params.get("task") == "control":  # a combination the config rejects: one message naming the setting
        assert len(at.error) == 1 and "sentence lengths" in at.error[0].value, [e.value for e in at.error]
    at.number_input(key="live.steps").set_value(4)
    at.button(key="live.run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]  # Run gives the control task the lengths it takes
    assert at.session_state["live.outcome"].config.steps == 4
