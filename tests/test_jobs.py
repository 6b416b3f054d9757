"""The shared jobs of one server (core.studies.jobs): equal keys share one computation, a queue in arrival
order behind a bound on running jobs, refusal only when the queue is full, Stop and the heartbeat,
nothing stored of a job everyone left, and no thread left behind. The computations here are small
fakes that report steps and wait on events, so each test controls when a job moves on."""

from __future__ import annotations

import threading
import time

import pytest

from benchmarks import server
from core.engine.report import Progress, Stopped
from core.settings.config import RunConfig
from core.studies import jobs
from core.studies.jobs import DONE, FAILED, QUEUED, RUNNING, STOPPED, JobManager, QueueFull

WAIT = 10.0


class Fake:
    """A computation: reports a step every 10 ms until released (or told to stop: Stopped)."""

    def __init__(self, name: str, log: list | None = None):
        self.name, self.log = name, log if log is not None else []
        self.release, self.running = threading.Event(), threading.Event()
        self.calls = 0

    def __call__(self, job: jobs.Job):
        self.calls += 1
        self.log.append(self.name)
        self.running.set()
        rows: list = []
        step = 0
        while not self.release.is_set():
            if job.should_stop():
                raise Stopped
            step += 1
            rows.append(("ln", step, step, "train_loss", "all", 1.0))
            job.step(Progress(step, 1000, rows[-1:], {}, 0.01 * step, rows))
            time.sleep(0.01)
        return {"name": self.name}


def until(condition, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def job_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("job ")]


def test_equal_keys_share_one_computation_and_the_completed_job_is_stored():
    m = JobManager()
    work = Fake("a")
    first = m.join("k", work, "visitor 1")
    second = m.join("k", Fake("other"), "visitor 2")  # asked while it runs: joins, its own work unused
    assert second is first and set(first.watchers) == {"visitor 1", "visitor 2"}
    until(work.running.is_set)
    work.release.set()
    assert first.wait(WAIT) and first.state == DONE and first.result == {"name": "a"}
    third = m.join("k", Fake("again"), "visitor 3")  # asked after: the stored job, nothing computed
    assert third is first and work.calls == 1
    assert m.counts() == {"running": 0, "queued": 0, "stored": 1, "watchers": 0}
    assert first.rows() == [] and first.progress is None  # a stored job keeps its frames only
    until(lambda: not job_threads())


def test_jobs_wait_in_arrival_order_and_are_refused_only_when_the_queue_is_full():
    m = JobManager(slots=1, queue_limit=2)
    log: list = []
    works = {name: Fake(name, log) for name in "abc"}
    a = m.join("a", works["a"], "v")
    until(works["a"].running.is_set)
    c = m.join("c", works["c"], "v")  # c asked before b: started before b
    b = m.join("b", works["b"], "v")
    assert (a.state, b.state, c.state) == (RUNNING, QUEUED, QUEUED)
    assert (m.position(c), m.position(b), m.position(a)) == (1, 2, 0)
    with pytest.raises(QueueFull) as full:
        m.join("d", Fake("d"), "v")
    assert full.value.limit == 2
    assert m.join("b", Fake("b again"), "w") is b  # joining a queued job needs no room
    works["a"].release.set()
    until(works["c"].running.is_set)
    assert b.state == QUEUED and m.position(b) == 1
    works["c"].release.set()
    until(works["b"].running.is_set)
    works["b"].release.set()
    assert b.wait(WAIT) and log == ["a", "c", "b"] and {a.state, b.state, c.state} == {DONE}
    until(lambda: not job_threads())


def test_the_wait_is_the_running_jobs_time_left_at_their_pace_then_a_typical_job_for_each_one_ahead():
    m = JobManager(slots=2)
    gate = threading.Event()

    def held(job):  # runs until the gate opens, reporting nothing (the test sets its progress)
        gate.wait(WAIT)
        return {}

    a, b = m.join("a", held, "v"), m.join("b", held, "v")
    c, d, e = (m.join(k, held, "v") for k in "cde")
    until(lambda: a.state == b.state == RUNNING)
    # Nothing reported, nothing completed yet: each job is guessed at DEFAULT_RUN_S
    assert m.wait_s(c) == pytest.approx(jobs.DEFAULT_RUN_S, abs=0.2)
    assert m.wait_s(d) == pytest.approx(jobs.DEFAULT_RUN_S, abs=0.2)  # the second slot frees as the first
    assert m.wait_s(e) == pytest.approx(2 * jobs.DEFAULT_RUN_S, abs=0.2)
    now = time.monotonic()
    a.started, a.progress = now - 3.0, Progress(250, 1000, [], {}, 3.0, [])  # a quarter in 3 s: 9 s left
    b.started, b.progress = now - 2.0, Progress(500, 1000, [], {}, 2.0, [])  # half in 2 s: 2 s left
    assert m.wait_s(c) == pytest.approx(2.0, abs=0.1)  # b's slot
    assert m.wait_s(d) == pytest.approx(2.0 + jobs.DEFAULT_RUN_S, abs=0.1)  # after c, before a ends at 9 s
    assert m.wait_s(e) == pytest.approx(9.0, abs=0.1)  # a's slot
    assert m.wait_s(a) == 0.0  # running: no wait
    gate.set()
    assert e.wait(WAIT) and {a.state, b.state, c.state, d.state, e.state} == {DONE}
    until(lambda: not job_threads())


def test_the_wait_takes_a_typical_job_from_the_last_completed_ones_and_guesses_a_silent_one():
    m = JobManager(slots=1)
    gate = threading.Event()
    quick = m.join("quick", lambda job: time.sleep(0.3) or {}, "v")  # completes in about 0.3 s
    assert quick.wait(WAIT)
    typical = quick.seconds
    a = m.join("a", lambda job: gate.wait(WAIT) and {}, "v")  # runs, reporting nothing
    b, c = m.join("b", Fake("b"), "v"), m.join("c", Fake("c"), "v")
    until(lambda: a.state == RUNNING)
    assert typical == pytest.approx(0.3, abs=0.1) and m.wait_s(b) == pytest.approx(typical, abs=0.05)
    a.started = time.monotonic() - 3.0  # silent for 3 s, ten times a typical job: as long again
    assert m.wait_s(b) == pytest.approx(3.0, abs=0.05)
    assert m.wait_s(c) == pytest.approx(3.0 + typical, abs=0.05)  # then b, a typical job
    a.phase_text = "probing"  # training over, computing what follows: a typical job less what it ran
    assert m.wait_s(b) == pytest.approx(0.0, abs=0.05) and m.wait_s(c) == pytest.approx(typical, abs=0.05)
    gate.set()
    for job in (b, c):
        until(lambda job=job: job.state == RUNNING)
        m.leave(job, "v")
    until(lambda: not job_threads())


def test_the_bound_on_running_jobs_holds():
    m = JobManager(slots=2)
    works = [Fake(str(i)) for i in range(5)]
    started = [m.join(str(i), w, "v") for i, w in enumerate(works)]
    until(lambda: sum(w.running.is_set() for w in works) == 2)
    time.sleep(0.2)
    assert [j.state for j in started] == [RUNNING, RUNNING, QUEUED, QUEUED, QUEUED]
    assert m.counts()["running"] == 2 and len(job_threads()) == 2
    for w in works:
        w.release.set()
    until(lambda: all(j.state == DONE for j in started))
    until(lambda: not job_threads())


def test_a_job_stops_when_its_last_watcher_leaves_and_is_not_stored():
    m = JobManager()
    work = Fake("a")
    job = m.join("k", work, "one")
    m.join("k", work, "two")
    until(lambda: job.progress is not None and job.progress.step >= 3)
    m.leave(job, "one")  # one of two left: it goes on
    time.sleep(0.1)
    assert job.state == RUNNING and not job.should_stop()
    m.leave(job, "two")  # the last one left: it stops at its next step
    assert job.wait(WAIT) and job.state == STOPPED and job.result is None
    assert job.partial(RunConfig())["history"]["step"].max() == job.progress.step  # what it had done
    assert m.stored("k") is None
    again = m.join("k", work, "three")  # the next visitor starts it afresh
    assert again is not job
    until(lambda: work.calls == 2)
    work.release.set()
    assert again.wait(WAIT) and again.state == DONE
    until(lambda: not job_threads())


def test_a_job_nobody_polls_stops_after_the_watch_timeout():
    m = JobManager(watch_timeout_s=0.5)
    watched, left = Fake("watched"), Fake("left")
    a, b = m.join("a", watched, "polling"), m.join("b", left, "gone")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.5:  # "polling" keeps polling its job, "gone" never polls
        m.seen(a, "polling")
        time.sleep(0.05)
    assert b.state == STOPPED and a.state == RUNNING
    assert 0.5 <= b.seconds < 1.5  # stopped about the timeout after its last sign of life
    watched.release.set()
    assert a.wait(WAIT) and a.state == DONE
    until(lambda: not job_threads())


def test_a_queued_job_everyone_left_never_runs():
    m = JobManager(slots=1)
    first, waiting, after = Fake("first"), Fake("waiting"), Fake("after")
    m.join("first", first, "v")
    until(first.running.is_set)
    queued = m.join("waiting", waiting, "v")
    later = m.join("after", after, "v")
    m.leave(queued, "v")  # Stop while queued: out of the queue at once
    assert queued.state == STOPPED and queued.finished and m.position(later) == 1
    assert queued.partial(RunConfig()) == {}  # nothing was computed
    first.release.set()
    until(after.running.is_set)
    after.release.set()
    assert later.wait(WAIT) and waiting.calls == 0
    until(lambda: not job_threads())


def test_a_failing_job_tells_its_watchers_frees_its_slot_and_is_not_stored(caplog):
    m = JobManager(slots=1)

    def broken(job):
        raise ValueError("no such thing")

    failed = m.join("bad", broken, "v")
    fine = Fake("fine")
    nxt = m.join("fine", fine, "v")
    assert failed.wait(WAIT) and failed.state == FAILED and failed.error == "ValueError: no such thing"
    assert "job bad failed" in caplog.text and m.stored("bad") is None
    until(fine.running.is_set)  # the slot went to the next job
    fine.release.set()
    assert nxt.wait(WAIT) and nxt.state == DONE
    until(lambda: not job_threads())


def test_the_store_is_bounded_and_expires():
    m = JobManager(store_entries=2, store_ttl_s=0.3)
    for key in "abc":
        work = Fake(key)
        work.release.set()
        assert m.join(key, work, "v").wait(WAIT)
    assert m.stored("a") is None and m.stored("b") is not None and m.stored("c") is not None
    time.sleep(0.4)
    assert m.stored("c") is None and m.counts()["stored"] == 0


@pytest.mark.parametrize(
    ("name", "raw", "attr", "want"),
    [
        ("BNLN_MAX_RUNS", "2", "slots", 2),
        ("BNLN_MAX_RUNS", "0", "slots", 1),
        ("BNLN_MAX_RUNS", "1000", "slots", 64),
        ("BNLN_MAX_RUNS", "abc", "slots", jobs.DEFAULT_SLOTS),
        ("BNLN_MAX_RUNS", "2.5", "slots", jobs.DEFAULT_SLOTS),
        ("BNLN_MAX_QUEUE", "7", "queue_limit", 7),
        ("BNLN_MAX_QUEUE", "-3", "queue_limit", 0),
        ("BNLN_MAX_QUEUE", "x", "queue_limit", jobs.DEFAULT_QUEUE),
        ("BNLN_WATCH_TIMEOUT_S", "3", "watch_timeout_s", 3.0),
        ("BNLN_WATCH_TIMEOUT_S", "0", "watch_timeout_s", 0.5),
        ("BNLN_WATCH_TIMEOUT_S", "nan", "watch_timeout_s", jobs.DEFAULT_WATCH_TIMEOUT_S),
    ],
)
def test_settings_from_the_environment(monkeypatch, name, raw, attr, want):
    monkeypatch.setenv(name, raw)
    assert getattr(jobs.from_environment(), attr) == want


def test_the_log_names_each_job_queued_started_and_ended_and_the_os_names_its_thread(caplog):
    import logging
    import os
    from pathlib import Path

    caplog.set_level(logging.INFO, logger="core.studies.jobs")
    m = JobManager(slots=1)
    a, b = Fake("a"), Fake("b")
    ja = m.join("key-a", a, "v1", label="live seed 1 steps 9")
    m.join("key-b", b, "v2", label="live seed 2 steps 9")
    a.running.wait(WAIT)
    if Path("/proc/self/task").exists():  # Linux: what `top -H` and benchmarks.workshop see
        names = {Path(f"/proc/self/task/{tid}/comm").read_text().strip() for tid in os.listdir("/proc/self/task")}
        assert jobs.THREAD_NAME in names
    a.release.set()
    b.release.set()
    until(lambda: m.counts()["stored"] == 2)
    until(lambda: not job_threads())
    said = [r.getMessage() for r in caplog.records if r.name == "core.studies.jobs"]
    assert said == [
        "job key-a queued at place 1: live seed 1 steps 9",
        "job key-a started after 0.0 s queued: live seed 1 steps 9",
        "job key-b queued at place 1: live seed 2 steps 9",
        "job key-a done: live seed 1 steps 9",
        "job key-b started after " + said[4].split("after ")[1].split(" s")[0] + " s queued: live seed 2 steps 9",
        "job key-b done: live seed 2 steps 9",
    ]
    # What the benchmarks read back from the server's log, written in the server's format
    fmt = jobs.log_formatter()
    lines = [fmt.format(r) for r in caplog.records if r.name == "core.studies.jobs"]
    text = "\n".join(["2026-01-01 00:00:00.000 INFO streamlit: something else", *lines])
    assert server.job_tally(text) == {"queued": 2, "started": 2, "ended": {"done": 2}, "open": 0}
    assert server.job_tally("\n".join(lines[:3])) == {"queued": 2, "started": 1, "ended": {}, "open": 2}
    # a key queued again after its job ended opens a new job of that key
    again = "\n".join([lines[0], lines[1], lines[3], lines[0]])
    assert server.job_tally(again) == {"queued": 2, "started": 1, "ended": {"done": 1}, "open": 1}
    assert server.live_seeds(text, "started") == [1, 2]
    assert server.live_seeds(text, "queued", leave_out=1) == [2]
    assert server.JOB_THREAD == jobs.THREAD_NAME
    assert ja.label == "live seed 1 steps 9"
