"""The curves' data (core.charts.Curves), built a step at a time as a shared job hands it to the live
charts, and made from the whole history for the results' chart (charts.curve_data), is what pandas
makes of the history written out independently: the rows of the metrics, a debiased EMA per curve
(pandas' ewm, as TensorBoard's slider), held-out losses unsmoothed, thinned."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from core import charts
from core.engine.metrics import HISTORY_COLUMNS
from core.engine.report import Progress
from core.engine.train import train_paired
from core.settings.config import NORM_LABELS, RunConfig
from core.studies.jobs import Job, JobManager
from ui.runner import LIVE_CURVES


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    """A run longer than charts.MAX_POINTS steps (so the curves are thinned), with held-out scores."""
    cfg = RunConfig(batch_size=2, lengths="longtail", steps=450, eval_every=50, d_model=16, n_layers=1, n_heads=2)
    return train_paired(cfg).history[HISTORY_COLUMNS]


SPARSE = ("eval_loss", "eval_loss_batch_stats")


def pandas_curves(history: pd.DataFrame, metrics: dict, smooth: float) -> pd.DataFrame:
    """The reference: filter, sort by step, ewm per (norm, metric, layer), then thin."""
    rows = history[history["metric"].isin(list(metrics)) & (history["layer"] == "all")]
    rows = rows.assign(
        label=rows["norm"].map(NORM_LABELS), series=rows["metric"].map(metrics), sparse=rows["metric"].isin(SPARSE)
    ).sort_values("step", kind="stable")
    ewm = rows.groupby(["norm", "metric", "layer"], sort=False)["value"].transform(
        lambda s: s.astype(float).ewm(alpha=1.0 - smooth, adjust=True).mean() if smooth > 0 else s.astype(float)
    )
    rows = rows.assign(smoothed=ewm.where(~rows["sparse"], rows["value"]))
    return charts.thin(rows)[charts.CURVE_COLUMNS].reset_index(drop=True)


@pytest.mark.parametrize("smooth", [0.0, 0.6, 0.95])
def test_live_and_final_curves_equal_pandas(history, smooth):
    rows = list(history.itertuples(index=False, name=None))  # in the order train_paired reports them
    for name, metrics in LIVE_CURVES.items():
        expected = pandas_curves(history, metrics, smooth)
        job, grown = Job("k", lambda job: {}, JobManager()), []
        for i in range(0, len(rows), 37):  # a step's rows at a time, or so, redrawn after each
            grown += rows[i : i + 37]
            job.step(Progress(0, 1, [], {}, 0.0, grown))
            live = job.curves(name, metrics, smooth)
        assert job.curves(name, metrics, smooth) is live  # no new step: the same frame, not rebuilt
        pd.testing.assert_frame_equal(live.reset_index(drop=True), expected, check_exact=False, rtol=1e-12)
        final = charts.curve_data(history, metrics, smooth).reset_index(drop=True)
        pd.testing.assert_frame_equal(final, expected, check_exact=False, rtol=1e-12)


def test_a_missing_value_is_skipped_as_pandas_does():
    rows = [("ln", s, s, "train_loss", "all", v) for s, v in enumerate([1.0, math.nan, 3.0, 2.0])]
    live = charts.Curves({"train_loss": "train loss"}, 0.5).add(rows)
    expected = pd.Series([1.0, 1.0, (3.0 + 0.25 * 1.0) / 1.25, (2.0 + 0.5 * 3.0 + 0.125 * 1.0) / 1.625])
    pd.testing.assert_series_equal(live.frame()["smoothed"], expected, check_names=False, rtol=1e-12)
