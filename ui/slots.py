"""A process-wide bound on concurrent training runs: one server process serves every visitor of a
hosted app, and each run takes a core for seconds to minutes. Past the bound, a run waits a short
while for a free slot and is then refused (``Busy``), so a crowd slows nobody down forever and
everyone gets an answer: a result, or "busy, retry".

``BNLN_MAX_RUNS`` (default 3) sets the bound and ``BNLN_QUEUE_WAIT_S`` (default 20) the wait.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

DEFAULT_MAX_RUNS = 3  # a small host has 2-4 cores; each run steps its models on one intra-op thread
DEFAULT_QUEUE_WAIT_S = 20.0  # long enough to outlast a short run, short enough to be an answer
POLL_S = 0.25  # how often a waiting run reports (the UI redraws there, which keeps Stop working)


class Busy(Exception):
    """No slot came free within the wait."""

    def __init__(self, limit: int, waited_s: float):
        super().__init__(f"{limit} runs in progress; none finished within {waited_s:.0f} s")
        self.limit = limit
        self.waited_s = waited_s


class RunSlots:
    """At most ``limit`` holders at once; ``acquire`` waits up to ``wait_s`` seconds, then raises Busy."""

    def __init__(self, limit: int, wait_s: float):
        self.limit = limit
        self.wait_s = wait_s
        self.active = 0
        self._cond = threading.Condition()

    def acquire(self, on_wait: Callable[[float], None] | None = None) -> None:
        """Take a slot, waiting at most ``wait_s``. While waiting, ``on_wait(seconds_left)`` is called
        every POLL_S seconds, outside the lock (it may raise, e.g. Streamlit's stop: nothing is held)."""
        deadline = time.monotonic() + self.wait_s
        while True:
            with self._cond:
                if self.active < self.limit:
                    self.active += 1
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Busy(self.limit, self.wait_s)
                self._cond.wait(min(POLL_S, left))
                if self.active < self.limit:
                    self.active += 1
                    return
            if on_wait is not None:
                on_wait(max(0.0, deadline - time.monotonic()))

    def release(self) -> None:
        with self._cond:
            if self.active <= 0:
                raise RuntimeError("release() without acquire()")
            self.active -= 1
            self._cond.notify()


def _env_number(name: str, default: float, lo: float, hi: float, kind=float):
    """A setting from the environment, clamped to [lo, hi]; a malformed value falls back to the
    default (a typo in a deployment must not take the app down)."""
    try:
        value = kind(os.environ.get(name, default))
    except ValueError:
        return default
    return min(max(value, lo), hi) if value == value else default  # NaN -> default


SLOTS = RunSlots(
    limit=_env_number("BNLN_MAX_RUNS", DEFAULT_MAX_RUNS, 1, 64, int),
    wait_s=_env_number("BNLN_QUEUE_WAIT_S", DEFAULT_QUEUE_WAIT_S, 0.0, 600.0),
)
