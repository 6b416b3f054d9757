"""Shared jobs: one computation per identical experiment, watched by everyone who asks for it.

A hosted app serves rooms: in a workshop a dozen visitors press Run on the same settings within a
second. A job is keyed by everything that determines what it shows (core.studies.experiments'
``Experiment.job_key``: the experiment, its paired runs' configs, an upload's content hash, its
other settings). A visitor asking for a key (``JobManager.join``):

- gets the stored job if the same key completed lately (the last ``store_entries``, for
  ``store_ttl_s``);
- joins it as one more *watcher* if it is queued or running: the same progress, live curves and
  final frames as whoever started it;
- else queues a new job. Jobs, not visitors, take the ``slots``: at most that many run at once,
  each in its own thread (which ends with the job), started first come, first served. A visitor is
  refused (``QueueFull``) only when every slot is taken and ``queue_limit`` jobs already wait.

Watching: a watcher's page polls its job (``seen``), and that is its heartbeat (a web app has no
"visitor left" event). A watcher who pressed Stop ``leave``s. A job none of whose watchers was seen
within ``watch_timeout_s`` stops at its next step (its ``should_stop``, which the engine asks), or
leaves the queue; such a job is never stored, so the next visitor starts it afresh.

Pure Python: the app holds one manager per server process (ui.runner); the tests make their own.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping

import pandas as pd

from core.charts import Curves
from core.engine.report import Progress, Reporter, Stopped
from core.engine.train import history_frame
from core.settings.config import RunConfig

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, STOPPED, FAILED = "queued", "running", "done", "stopped", "failed"
FINISHED = (DONE, STOPPED, FAILED)
DEFAULT_SLOTS = 3  # a small host has 2-4 cores; each paired run steps its models on one thread per model
DEFAULT_QUEUE = 50  # jobs waiting, not visitors: a room of any size asking for one experiment is one job
DEFAULT_WATCH_TIMEOUT_S = 10.0
THREAD_NAME = "bnln-job"  # what the operating system calls a job's thread (name_os_thread)
DEFAULT_RUN_S = 5.0  # the guess of a job's duration before any finished (a default live run takes about 4 s)

Frames = dict[str, pd.DataFrame]
Work = Callable[["Job"], Frames]  # the computation, reporting to (and asking) the job it runs in


class QueueFull(Exception):  # noqa: N818 - a refusal, said to the visitor
    def __init__(self, limit: int):
        super().__init__(f"{limit} jobs are already waiting")
        self.limit = limit


class Job(Reporter):
    """One computation and everything its watchers are shown: the engine reports to it (it is the
    ``Reporter`` of the computation) from the job's thread, and watchers read it from theirs."""

    def __init__(self, key: str, work: Work, manager: JobManager, label: str = ""):
        self.key, self.work, self._manager, self.label = key, work, manager, label
        self.queued = time.monotonic()
        self.state = QUEUED
        self.watchers: dict[str, float] = {}  # watcher -> when last seen (time.monotonic)
        self.started = math.nan  # time.monotonic() when it began to run
        self.seconds = 0.0  # how long it ran
        self.result: Frames | None = None
        self.error = ""
        # what the engine reported so far
        self.progress: Progress | None = None  # the last training step
        self.cells: object | None = None  # the last finished paired run of a grid (core.studies.sweep.SweepProgress)
        self.phase_text = ""  # what it computes after training (English)
        self._history: list = []  # the trainer's rows (its own list), of which the first _reported were reported
        self._reported = 0
        self._curves: dict[tuple, list] = {}  # (chart, smoothing) -> see ``curves``
        self._lock = threading.Lock()
        self._ended = threading.Event()

    # ---------------------------------------------------------------- the engine's side
    def step(self, progress: Progress) -> None:
        self._history, self._reported, self.progress = progress.history, len(progress.history), progress

    def cell(self, progress) -> None:
        self.cells = progress

    def phase(self, text: str) -> None:
        self.phase_text = text

    def should_stop(self) -> bool:
        return self._manager.unwatched(self)

    # ---------------------------------------------------------------- the watchers' side
    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def fraction(self) -> float:
        """How much of it is done, 0 to 1: a grid's paired runs, else the training's steps (1 once
        training is over and what follows it is computed)."""
        if self.cells is not None:
            return self.cells.done / self.cells.total
        if self.phase_text:
            return 1.0
        p = self.progress
        return min(p.step / p.total, 1.0) if p is not None and p.total else 0.0

    @property
    def ran_s(self) -> float:
        """How long it has run so far (0 while queued)."""
        return time.monotonic() - self.started if self.started == self.started else 0.0

    def remaining_s(self, typical: float) -> float:
        """A rough time left: while training, its pace so far for what is left; before its first
        report (a grid reports each paired run as it finishes), ``typical`` less the time it ran, or
        once past that as long again as it has run; after training (what follows it is computed),
        ``typical`` less the time it ran."""
        ran, done = self.ran_s, self.fraction
        if 0 < done < 1:
            return ran * (1 - done) / done
        if done == 0:
            return max(typical - ran, ran)
        return max(typical - ran, 0.0)

    def wait(self, timeout: float) -> bool:
        """Wait until it finishes, at most ``timeout`` seconds; True if it has."""
        return self._ended.wait(timeout)

    def rows(self) -> list:
        """The history rows reported so far (a snapshot: the trainer only ever appends)."""
        return self._history[: self._reported]

    def partial(self, cfg: RunConfig | None) -> Frames:
        """What has been computed so far: a grid's summary of its finished paired runs, or the
        history of the steps trained (its run columns from ``cfg``); empty before either."""
        if self.cells is not None:
            return {"summary": self.cells.summary}
        if self._reported and cfg is not None:
            return {"history": history_frame(self.rows(), cfg)}
        return {}

    def curves(
        self, name: str, metrics: Mapping[str, str], smooth: float, max_age_s: float = 0.0,
        shown: Callable[[pd.DataFrame], object] | None = None, lang: str = "",
    ):  # fmt: skip
        """A live chart's data (core.charts.Curves) up to the last step reported, built step by step
        once per chart and smoothing however many watchers draw it, and rebuilt only after a new step
        once the last build is ``max_age_s`` old: a room of watchers shares one build per redraw.
        With ``shown``, what a watcher draws instead (``shown(frame)``: the frame in ``lang``, ready to
        send), also made once per build and language."""
        with self._lock:
            now, upto = time.monotonic(), self._reported
            entry = self._curves.get((name, smooth))  # [curves, rows in it, when built, frame, {lang: shown}]
            if entry is None or (entry[1] != upto and now - entry[2] >= max_age_s):
                curves = (entry[0] if entry is not None else Curves(metrics, smooth)).extend(self._history, upto)
                entry = self._curves[name, smooth] = [curves, upto, now, curves.frame(), {}]
            if shown is None:
                return entry[3]
            if lang not in entry[4]:
                entry[4][lang] = shown(entry[3])
            return entry[4][lang]

    def _drop_live(self) -> None:
        """A completed job keeps only its frames (it may stay in the store for hours)."""
        self._history, self._reported, self._curves, self.progress = [], 0, {}, None


class JobManager:
    """Shared jobs of one server process: see the module's docstring."""

    def __init__(
        self,
        slots: int = DEFAULT_SLOTS,
        queue_limit: int = DEFAULT_QUEUE,
        watch_timeout_s: float = DEFAULT_WATCH_TIMEOUT_S,
        store_entries: int = 24,
        store_ttl_s: float = 6 * 3600,
    ):
        self.slots, self.queue_limit, self.watch_timeout_s = slots, queue_limit, watch_timeout_s
        self.store_entries, self.store_ttl_s = store_entries, store_ttl_s
        self._lock = threading.RLock()
        self._active: dict[str, Job] = {}  # queued or running, by key
        self._queue: deque[Job] = deque()
        self._running = 0
        self._store: OrderedDict[str, tuple[Job, float]] = OrderedDict()  # completed: key -> (job, when)
        self._durations: deque[float] = deque(maxlen=20)  # of the last completed jobs, for a rough wait

    # ---------------------------------------------------------------- asking for a job
    def join(self, key: str, work: Work, watcher: str, label: str = "") -> Job:
        """The job of ``key``, with ``watcher`` watching it: stored, joined or queued (see the
        module's docstring). Raises QueueFull when a new job would not fit in the queue. ``label``
        names a new job in the server's log."""
        with self._lock:
            if (job := self.stored(key)) is not None:
                return job
            job = self._active.get(key)
            if job is None:
                if self._running >= self.slots and len(self._queue) >= self.queue_limit:
                    raise QueueFull(self.queue_limit)
                job = Job(key, work, self, label)
                self._active[key] = job
                self._queue.append(job)
                log.info("job %s queued at place %d: %s", key, len(self._queue), label)
            job.watchers[watcher] = time.monotonic()
            self._start_queued()
            return job

    def stored(self, key: str) -> Job | None:
        """The completed job of ``key``, if it is still in the store."""
        with self._lock:
            now = time.monotonic()
            for old in [k for k, (_, when) in self._store.items() if now - when > self.store_ttl_s]:
                del self._store[old]
            if key not in self._store:
                return None
            self._store.move_to_end(key)
            return self._store[key][0]

    def seen(self, job: Job, watcher: str) -> None:
        """``watcher`` still watches ``job`` (its page polled it): the heartbeat."""
        with self._lock:
            if not job.finished:
                job.watchers[watcher] = time.monotonic()

    def leave(self, job: Job, watcher: str) -> None:
        """``watcher`` stopped watching (Stop). A queued job nobody watches leaves the queue; a
        running one stops at its next step (``unwatched``)."""
        with self._lock:
            job.watchers.pop(watcher, None)
            if job.state == QUEUED and self.unwatched(job):
                self._queue.remove(job)
                self._end(job, STOPPED)

    def unwatched(self, job: Job) -> bool:
        """True when no watcher of ``job`` was seen within ``watch_timeout_s`` (those are dropped)."""
        with self._lock:
            now = time.monotonic()
            for gone in [w for w, seen in job.watchers.items() if now - seen > self.watch_timeout_s]:
                del job.watchers[gone]
            return not job.watchers

    # ---------------------------------------------------------------- what a watcher is told
    def position(self, job: Job) -> int:
        """1 for the next job to start, 2 for the one after...; 0 when not queued."""
        with self._lock:
            return self._queue.index(job) + 1 if job.state == QUEUED and job in self._queue else 0

    def wait_s(self, job: Job) -> float:
        """A rough wait before ``job`` starts: each slot frees when its running job ends (at that
        job's pace so far), and each queued job ahead of ``job`` then takes a slot for about as long
        as the last completed jobs took."""
        with self._lock:
            ahead = self.position(job)
            if not ahead:
                return 0.0
            typical = sum(self._durations) / len(self._durations) if self._durations else DEFAULT_RUN_S
            running = [j for j in self._active.values() if j.state == RUNNING]
            free = sorted([j.remaining_s(typical) for j in running] + [0.0] * (self.slots - len(running)))
            for _ in range(ahead - 1):  # the jobs ahead start in turn, each on the first slot to free
                heapq.heapreplace(free, free[0] + typical)
            return free[0]

    def forget(self) -> None:
        """Empty the store of completed jobs: the next ask for any of them computes it again."""
        with self._lock:
            self._store.clear()

    def counts(self) -> dict[str, int]:
        """Jobs running, queued and stored, and the watchers of those running or queued."""
        with self._lock:
            watchers = sum(len(job.watchers) for job in self._active.values())
            return {
                "running": self._running,
                "queued": len(self._queue),
                "stored": len(self._store),
                "watchers": watchers,
            }

    # ---------------------------------------------------------------- running
    def _start_queued(self) -> None:
        """Start queued jobs, first come first served, while a slot is free (under the lock)."""
        while self._running < self.slots and self._queue:
            job = self._queue.popleft()
            if self.unwatched(job):  # everyone left while it waited
                self._end(job, STOPPED)
                continue
            job.state, job.started = RUNNING, time.monotonic()
            self._running += 1
            log.info("job %s started after %.1f s queued: %s", job.key, job.started - job.queued, job.label)
            threading.Thread(target=self._run, args=(job,), name=f"job {job.key}", daemon=True).start()

    def _run(self, job: Job) -> None:
        name_os_thread(THREAD_NAME)
        result, state = None, DONE
        try:
            result = job.work(job)
        except Stopped:  # its history is complete now, ending on the held-out score the trainer adds at a stop
            state, job._reported = STOPPED, len(job._history)
        except Exception as err:  # a bug: its watchers are told, the server logs it, the others go on
            log.exception("job %s failed", job.key)
            job.error, state = f"{type(err).__name__}: {err}", FAILED
        with self._lock:
            job.seconds = time.monotonic() - job.started
            job.result = result
            self._running -= 1
            self._end(job, state)
            self._start_queued()

    def _end(self, job: Job, state: str) -> None:
        job.state = state
        log.info("job %s %s: %s", job.key, state, job.label)
        self._active.pop(job.key, None)
        if state == DONE:
            job._drop_live()
            self._durations.append(job.seconds)
            self._store[job.key] = job, time.monotonic()
            while len(self._store) > self.store_entries:
                self._store.popitem(last=False)
        job._ended.set()


def name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` where the operating system shows it (Linux: ``top -H``,
    /proc/<pid>/task/<tid>/comm), so that job threads can be counted from outside the server."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):  # not Linux: the name is a nicety
        pass


def env_number(name: str, default: float, lo: float, hi: float, kind=float):
    """A setting from the environment, clamped to [lo, hi]; a malformed value falls back to the
    default (a typo in a deployment must not take the app down)."""
    try:
        value = kind(os.environ.get(name, default))
    except ValueError:
        return default
    return min(max(value, lo), hi) if value == value else default  # NaN -> default


def from_environment() -> JobManager:
    """The server's manager: ``BNLN_MAX_RUNS`` jobs at once (default 3), ``BNLN_MAX_QUEUE`` waiting
    (50), ``BNLN_WATCH_TIMEOUT_S`` seconds without a heartbeat before a job is left (10)."""
    return JobManager(
        slots=env_number("BNLN_MAX_RUNS", DEFAULT_SLOTS, 1, 64, int),
        queue_limit=env_number("BNLN_MAX_QUEUE", DEFAULT_QUEUE, 0, 10_000, int),
        watch_timeout_s=env_number("BNLN_WATCH_TIMEOUT_S", DEFAULT_WATCH_TIMEOUT_S, 0.5, 600.0),
    )


def log_formatter() -> logging.Formatter:
    """Streamlit's format for the server's log (what benchmarks.server reads back)."""
    return logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")


def log_to_stderr() -> None:
    """Write this module's log (each job queued, started and ended, at INFO) to the server's
    standard error, in Streamlit's format; once, however often it is called."""
    if not any(getattr(h, "bnln", False) for h in log.handlers):
        handler = logging.StreamHandler()
        handler.bnln = True
        handler.setFormatter(log_formatter())
        log.addHandler(handler)
        log.setLevel(logging.INFO)
