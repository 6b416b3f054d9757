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

from core.config import LIMITS, RunConfig
from core.train import train_paired
from tests.helpers import CHARTS, TIMEOUT, open_page
from ui import runner, slots

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
def test_leaving_mid_run_ends_training_and_stop_keeps_partial_results(downloads, script_runners, monkeypatch):
    """The server stops the script of a visitor who leaves (as AppTest's runner does here, from
    another thread, once training has begun); the training threads end with it and the run slot is
    returned. The rerun that follows (what a Stop click causes) shows the partial run, and its
    download holds exactly the steps trained; the next run starts clean."""
    assert not training_threads()
    at = open_live(steps=3000, seed=11)  # far longer than the test: it must be cut short
    started = threading.Event()
    real_train = runner.train_paired

    latest = {"step": 0, "elapsed": 0.0}  # the last step reported, and when
    requested = {}

    def watched(cfg, on_step=None, should_stop=None):
        def step(p):
            latest.update(step=p.step, elapsed=p.elapsed)
            if p.step >= 20:
                started.set()
            on_step(p)

        return real_train(cfg, on_step=step, should_stop=should_stop)

    def leave():
        if started.wait(TIMEOUT):
            requested.update(latest)  # what had been trained when the visitor left
            script_runners[-1].request_stop()

    monkeypatch.setattr(runner, "train_paired", watched)
    threading.Thread(target=leave, daemon=True).start()
    t0 = time.perf_counter()
    at.button(key="live.run").click().run()
    stopped_in = time.perf_counter() - t0
    assert started.is_set(), "training never reached step 20"
    assert not at.exception, at.exception
    assert stopped_in < 120, stopped_in  # 3000 steps would take minutes
    time.sleep(0.5)
    assert not training_threads(), training_threads()
    assert slots.SLOTS.active == 0

    at.run()  # the rerun after the interruption: the partial outcome
    assert not at.exception, at.exception
    out = at.session_state["live.outcome"]
    assert out.stopped
    assert any("Stopped" in w and "partial" in w for w in warnings(at)), warnings(at)
    assert len(at.get("vega_lite_chart")) == CHARTS["live"]
    trained = out.data["history"]
    last = int(trained[trained.metric == "train_loss"].step.max())
    # Everything trained before the stop is kept, and training ends within about a redraw of it:
    # at most 2 s worth of steps at the rate measured up to the stop (not the 3000 asked for).
    rate = requested["step"] / requested["elapsed"]
    assert requested["step"] - 1 <= last <= requested["step"] + 2.0 * rate, (requested, last, rate)
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


class EarlyStop:
    """A job stopped before its first step: its kept history is still empty."""

    queued, started, reached, cancelled = False, 0.0, "", False

    def partial(self):
        return {"history": runner.history_frame([], RunConfig())}


def test_a_stop_before_the_first_step_keeps_the_earlier_results():
    at = open_live(steps=6)
    at.button(key="live.run").click().run()
    first = at.session_state["live.outcome"]
    at.session_state["live.running"] = (runner.Job("early", "t", lambda live: {}), EarlyStop())
    at.run()  # the rerun after that Stop
    assert not at.exception, at.exception
    assert any("Stopped before training began" in w for w in warnings(at)), warnings(at)
    assert at.session_state["live.outcome"] is first and len(at.get("vega_lite_chart")) == CHARTS["live"]


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


def test_run_slots_bound_wait_and_refuse():
    gate = slots.RunSlots(limit=1, wait_s=0.4)
    gate.acquire()
    waits: list[float] = []
    t0 = time.monotonic()
    with pytest.raises(slots.Busy) as busy:
        gate.acquire(on_wait=waits.append)  # the bound is 1: refused after the short wait
    refused_in = time.monotonic() - t0
    assert 0.35 <= refused_in < 3 and waits and busy.value.limit == 1
    gate.release()
    gate.acquire()  # free again: taken at once

    # A waiter gets the slot as soon as the holder lets go, well before its wait runs out.
    patient = slots.RunSlots(limit=1, wait_s=30)
    patient.acquire()
    got: list[float] = []

    def waiter():
        start = time.monotonic()
        patient.acquire()
        got.append(time.monotonic() - start)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.3)
    patient.release()
    t.join(timeout=10)
    assert not t.is_alive() and got and got[0] < 5, got
    assert patient.active == 1
    with pytest.raises(RuntimeError):
        slots.RunSlots(1, 0).release()


def test_run_slots_from_the_environment(monkeypatch):
    for raw, want in [
        ("2", 2),
        ("0", 1),
        ("1000", 64),
        ("abc", slots.DEFAULT_MAX_RUNS),
        ("2.5", slots.DEFAULT_MAX_RUNS),
    ]:
        monkeypatch.setenv("BNLN_MAX_RUNS", raw)
        assert slots._env_number("BNLN_MAX_RUNS", slots.DEFAULT_MAX_RUNS, 1, 64, int) == want
    for raw, want in [("5", 5.0), ("-1", 0.0), ("nan", slots.DEFAULT_QUEUE_WAIT_S), ("x", slots.DEFAULT_QUEUE_WAIT_S)]:
        monkeypatch.setenv("BNLN_QUEUE_WAIT_S", raw)
        assert slots._env_number("BNLN_QUEUE_WAIT_S", slots.DEFAULT_QUEUE_WAIT_S, 0, 600) == want


def test_a_busy_server_refuses_with_a_message_and_keeps_settings_and_results(monkeypatch):
    """With the bound at 1 and another session's run holding the slot, Run is refused after the
    short wait with a clear message; the visitor's settings and earlier results stay."""
    gate = slots.RunSlots(limit=1, wait_s=0.5)
    monkeypatch.setattr(slots, "SLOTS", gate)
    at = open_live(steps=6)
    at.button(key="live.run").click().run()
    first = at.session_state["live.outcome"]
    assert not first.stopped and gate.active == 0

    gate.acquire()  # another visitor's run
    try:
        set_form(at, steps=7, seed=5)
        t0 = time.perf_counter()
        at.button(key="live.run").click().run()
        assert time.perf_counter() - t0 < 60
        assert not at.exception, at.exception
        busy = [w for w in warnings(at) if "busy" in w]
        assert len(busy) == 1 and "Run again" in busy[0], warnings(at)
        assert at.session_state["live.outcome"] is first  # earlier results still shown
        assert len(at.get("vega_lite_chart")) == CHARTS["live"]
        assert at.number_input(key="live.steps").value == 7 and at.number_input(key="live.seed").value == 5
        assert "live.running" not in at.session_state
        at.run()  # any rerun (a display option, a late Stop click) still says why nothing new appeared
        assert any("busy" in w for w in warnings(at)) and at.session_state["live.outcome"] is first
    finally:
        gate.release()
    at.button(key="live.run").click().run()  # the retry, with a free slot, runs those settings
    assert not at.exception and not any("busy" in w for w in warnings(at))
    out = at.session_state["live.outcome"]
    assert out.config.steps == 7 and out.config.seed == 5 and not out.stopped
    assert gate.active == 0


def test_stop_while_waiting_for_a_slot_trains_nothing_and_says_so(monkeypatch, script_runners):
    """A visitor who gives up while queued (Stop, or leaving) is out of the queue at once, the slot
    they never got is not taken, and the rerun says that nothing was trained."""
    waiting = threading.Event()

    class Watched(slots.RunSlots):
        def acquire(self, on_wait=None):
            def seen(left):
                waiting.set()
                if on_wait is not None:
                    on_wait(left)

            return super().acquire(on_wait=seen)

    gate = Watched(limit=1, wait_s=120)
    monkeypatch.setattr(slots, "SLOTS", gate)
    at = open_live(steps=6, seed=21)
    gate.acquire()  # another visitor's run
    try:

        def leave():
            if waiting.wait(TIMEOUT):
                script_runners[-1].request_stop()

        threading.Thread(target=leave, daemon=True).start()
        t0 = time.perf_counter()
        at.button(key="live.run").click().run()
        assert time.perf_counter() - t0 < 60  # out of the queue long before its 120 s wait
        assert waiting.is_set() and not at.exception, at.exception
        at.run()  # the rerun after the Stop
        assert not at.exception, at.exception
        assert any("Stopped before training began" in w for w in warnings(at)), warnings(at)
        assert "live.outcome" not in at.session_state and "live.running" not in at.session_state
        assert gate.active == 1 and not training_threads()
    finally:
        gate.release()
    at.button(key="live.run").click().run()  # a free slot: the same settings now train
    assert not at.exception and at.session_state["live.outcome"].config.seed == 21 and gate.active == 0


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
