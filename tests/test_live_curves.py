"""The live charts' data, built step by step (ui.runner.LiveCurves), is what charts.curve_data makes
from the whole history: the same rows, values and smoothing, so the live chart and the results'
chart draw the same curves."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from core import charts
from core.config import RunConfig
from core.metrics import HISTORY_COLUMNS
from core.train import train_paired
from ui.runner import LIVE_CURVES, LiveCurves


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    """A run longer than charts.MAX_POINTS steps (so the curves are thinned), with held-out scores."""
    cfg = RunConfig(batch_size=2, lengths="longtail", steps=450, eval_every=50, d_model=16, n_layers=1, n_heads=2)
    return train_paired(cfg).history[HISTORY_COLUMNS]


@pytest.mark.parametrize("smooth", [0.0, 0.6, 0.95])
def test_built_step_by_step_equals_curve_data(history, smooth):
    rows = list(history.itertuples(index=False, name=None))  # in the order train_paired reports them
    for metrics in LIVE_CURVES:
        live = LiveCurves(metrics, smooth)
        for i in range(0, len(rows), 37):  # a step's rows at a time, or so
            live.add(rows[i : i + 37])
        expected = charts.curve_data(history, metrics, smooth).reset_index(drop=True)
        pd.testing.assert_frame_equal(live.frame().reset_index(drop=True), expected, check_exact=False, rtol=1e-12)


def test_a_missing_value_is_skipped_as_pandas_does():
    rows = [("ln", s, s, "train_loss", "all", v) for s, v in enumerate([1.0, math.nan, 3.0, 2.0])]
    live = LiveCurves({"train_loss": "train loss"}, 0.5)
    live.add(rows)
    expected = charts.curve_data(pd.DataFrame(rows, columns=HISTORY_COLUMNS), {"train_loss": "train loss"}, 0.5)
    pd.testing.assert_series_equal(live.frame()["smoothed"], expected["smoothed"].reset_index(drop=True), rtol=1e-12)
