"""How a computation tells whoever started it how it goes, and learns that it should stop: one
object, a ``Reporter``, handed from the caller (a shared job of the app, core.studies.jobs; the CLI; nothing
at all) down to the trainer and the sweep.

The engine calls ``step`` after each training step, ``cell`` as each paired run of a grid finishes,
``phase`` with one line (English) when it moves on to what follows training, and asks
``should_stop`` before every step. ``QUIET`` reports nowhere and never stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HISTORY_COLUMNS = ["norm", "step", "tokens", "metric", "layer", "value"]  # a training history's columns
Row = tuple  # one row of a history, in HISTORY_COLUMNS order


@dataclass
class Progress:
    """What ``Reporter.step`` receives after each step: the rows that step added, and where we are."""

    step: int  # steps completed
    total: int
    rows: list[Row]  # this step's rows
    diverged: dict[str, int]
    elapsed: float
    history: list[Row]  # every row so far: the trainer's own list, only ever appended to (read it up to a length)


class Stopped(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a computation that was told to stop, once it has stopped: nothing more is computed."""


class Reporter:
    """Reports nowhere and never stops; a caller overrides what it listens to."""

    def step(self, progress: Progress) -> None:
        pass

    def cell(self, progress: Any) -> None:  # core.studies.sweep.SweepProgress
        pass

    def phase(self, text: str) -> None:
        pass

    def should_stop(self) -> bool:
        return False


QUIET = Reporter()


class Listen(Reporter):
    """A reporter made of plain functions, each optional: for the CLI, a sweep's cells, the tests."""

    def __init__(self, step=None, cell=None, stop=None):
        self._step, self._cell, self._stop = step, cell, stop

    def step(self, progress: Progress) -> None:
        if self._step is not None:
            self._step(progress)

    def cell(self, progress: Any) -> None:
        if self._cell is not None:
            self._cell(progress)

    def should_stop(self) -> bool:
        return self._stop is not None and self._stop()
