"""Keeping runs side by side: pin a finished run on the Live page, run another config, and both are
on the comparison charts; both pinned, one CSV holds both with their settings; unpin; at most
MAX_PINS. Also the pure parts: the legend names and the comparison chart builder."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from core import charts
from core.engine.train import train_paired
from core.settings.config import RunConfig
from ui import controls, pins, runner

pytestmark = pytest.mark.usefixtures("empty_store")  # every Run trains


def run(at: AppTest, steps: int) -> AppTest:
    at.number_input(key="live.steps").set_value(steps)
    at.button(key="live.run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def chart_data(at: AppTest, title_start: str) -> pd.DataFrame:
    """The data behind the chart whose title starts with ``title_start``."""
    for el in at.get("vega_lite_chart"):
        if json.loads(el.proto.spec).get("title", "").startswith(title_start):
            return dataframe_util.convert_arrow_bytes_to_pandas_df(el.proto.datasets[0].data.data)
    raise AssertionError(f"no chart titled {title_start}…")


def test_pin_compare_download_and_unpin(live_page):
    at = run(live_page, 8)
    assert not [el for el in at.get("vega_lite_chart") if "pinned" in el.proto.spec], "nothing pinned yet"
    at.button(key="live.pin").click().run()
    first = at.session_state["live.outcome"].config
    assert [p.config for p in at.session_state[pins.KEY]] == [first]

    run(at, 10)  # another config: drawn with the pinned one
    second = at.session_state["live.outcome"].config
    for title, last in (("Held-out loss (eval mode)", 0), ("Training loss", -1)):  # scored after the last step
        data = chart_data(at, title)
        assert set(data["run"]) == {"this run: 10 steps", "pinned: 8 steps"}
        assert set(data["norm"]) == {"bn", "ln"}
        ends = data.groupby("run")["step"].max().to_dict()
        assert ends == {"this run: 10 steps": 10 + last, "pinned: 8 steps": 8 + last}

    at.button(key="live.pin").click().run()  # both pinned: one CSV with both configs
    assert [p.config for p in at.session_state[pins.KEY]] == [first, second]
    assert at.button(key="live.pin").label == "Unpin this run"
    table = pd.read_csv(io.StringIO(pins.pinned_csv(at.session_state[pins.KEY])))
    assert set(table["config_id"]) == {first.config_id, second.config_id}
    assert set(table["cfg_steps"]) == {8, 10} and {"cfg_norms", "cfg_lr", "cfg_seed"} <= set(table.columns)
    assert (table.groupby("config_id")["cfg_steps"].nunique() == 1).all(), "each row carries its own run's settings"
    assert set(table["layer"]) == {"all"}, "pins keep the whole-model rows only"

    at.button(key=f"live.unpin.{first.config_id}").click().run()
    assert not at.exception
    assert [p.config for p in at.session_state[pins.KEY]] == [second]


def test_at_most_max_pins_and_only_finished_runs(live_page):
    history = train_paired(RunConfig(steps=4, eval_every=2, eval_size=16, batch_size=4)).history
    full = [pins.Pin(RunConfig(seed=s), history) for s in range(pins.MAX_PINS)]
    at = run(live_page, 6)
    at.session_state[pins.KEY] = full
    at.run()
    assert not at.exception
    assert at.button(key="live.pin").disabled, "full: unpin one first"
    assert len(chart_data(at, "Held-out loss (eval mode)")["run"].unique()) == pins.MAX_PINS + 1
    at.session_state["live.outcome"] = runner.Outcome("stopped", {"history": history}, 1.0, stopped=True)
    at.session_state[pins.KEY] = []
    at.run()
    assert at.button(key="live.pin").disabled, "a stopped run cannot be pinned"


def test_legend_names_say_only_what_differs():
    a, b, c = RunConfig(), RunConfig(batch_size=2), RunConfig(batch_size=2, seed=3)
    assert controls.summaries([a, b, c]) == ["batch 8 · seed 0", "batch 2 · seed 0", "batch 2 · seed 3"]
    assert controls.summaries([a]) == [controls.describe(a)]
    twins = [a, a.replace(eval_every=5)]  # differ only in a setting the names do not show
    names = controls.summaries(twins)
    assert names[0] != names[1] and all(cfg.config_id in n for cfg, n in zip(twins, names, strict=True))


def test_comparison_chart_draws_each_run_with_its_own_dash_and_pinned_ones_faint():
    history = train_paired(RunConfig(steps=4, eval_every=2, eval_size=16, batch_size=4)).history
    runs = {"this run": history, "pinned: seed 1": history.assign(value=history["value"] + 1)}
    spec = charts.run_comparison(runs, "eval_loss", pinned=["pinned: seed 1"], title="t", y_title="y").to_dict()
    enc = spec["encoding"]
    assert enc["strokeDash"]["scale"]["domain"] == list(runs)
    assert enc["opacity"]["condition"]["test"]["oneOf"] == ["pinned: seed 1"]
    assert enc["opacity"]["condition"]["value"] < enc["opacity"]["value"] == 1
    data = charts.runs_curve_data(runs, "train_loss", smooth=0.5)
    assert set(data["run"]) == set(runs) and data["smoothed"].notna().all()


def test_a_run_pinned_on_another_page_is_compared_on_the_live_page(live_page):
    at = live_page
    at.switch_page("app_pages/train_vs_inference.py")
    at.run()
    at.number_input(key="train_vs_inference.steps").set_value(6)
    at.button(key="train_vs_inference.run").click().run()
    assert not at.exception, at.exception
    at.button(key="train_vs_inference.pin").click().run()
    pinned = at.session_state["train_vs_inference.outcome"].config
    assert [p.config for p in at.session_state[pins.KEY]] == [pinned]
    at.switch_page("app_pages/live.py")
    at.run()
    run(at, 6)
    data = chart_data(at, "Held-out loss (eval mode)")
    assert len(data["run"].unique()) == 2 and set(data["norm"]) == {"bn", "masked_bn", "ln"}
