"""Every page through Streamlit's AppTest: it renders without an exception, its form trains a
small config to completion, and its charts and metrics appear. Configs are shrunk through the
widgets (few steps, one seed) so the whole file runs in a minute or two."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.config import RunConfig
from core.train import train_paired
from ui import runner

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
TIMEOUT = 240  # seconds per script run: a busy 2-core machine


@pytest.fixture(autouse=True)
def empty_store():
    """Each test trains for real: nothing recalled from an earlier test's shared store."""
    runner._shared_slot.clear()


def open_page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if name != "overview":
        at.switch_page(f"app_pages/{name}.py")
        at.run()
    assert not at.exception, at.exception
    return at


def run(at: AppTest, page: str) -> AppTest:
    at.button(key=f"{page}.run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def charts(at: AppTest) -> list:
    return at.get("vega_lite_chart")


def metric_labels(at: AppTest) -> list[str]:
    return [m.label for m in at.metric]


def test_overview_renders_the_pooling_picture_and_links():
    at = open_page("overview")
    assert len(charts(at)) == 1
    assert metric_labels(at) == ["BatchNorm pools", "Masked BatchNorm pools", "LayerNorm pools"]
    assert len(at.get("page_link")) == 7  # the guided tour and the six experiments
    at.slider(key="overview.channel").set_value(3).run()
    assert not at.exception and len(charts(at)) == 1


def test_live_trains_and_recalls_the_same_settings():
    at = open_page("live")
    assert at.info, "a hint to press Run before the first run"
    at.number_input(key="live.steps").set_value(12)
    run(at, "live")
    assert len(charts(at)) == 2
    labels = metric_labels(at)
    assert {"LayerNorm: held-out loss", "naive BN: held-out loss", "padding fraction", "steps per second"} <= set(
        labels
    )
    assert any("12 steps" in c.value for c in at.caption)
    first = at.session_state["live.outcome"]
    assert not first.stopped and first.data["history"]["step"].max() == 12
    run(at, "live")  # same settings: recalled from the store, not trained again
    assert at.session_state["live.outcome"] is first


def test_live_display_options_change_the_charts():
    at = open_page("live")
    at.number_input(key="live.steps").set_value(8)
    run(at, "live")
    at.toggle(key="live.log_y").set_value(True).run()
    spec = json.loads(charts(at)[0].proto.spec)
    assert all(layer["encoding"]["y"]["scale"]["type"] == "log" for layer in spec["layer"])
    at.slider(key="live.smooth").set_value(0.0).run()
    assert len(json.loads(charts(at)[0].proto.spec)["layer"]) == 2  # no smoothed layer without smoothing


def test_invalid_settings_name_the_setting():
    at = open_page("live")
    at.selectbox(key="live.task").set_value("control")  # the control task has fixed lengths only
    at.button(key="live.run").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "sentence lengths" in at.error[0].value
    assert not charts(at)


@dataclass
class StoppedLive:
    """What a Stop leaves in session state: the job and its live area's partial results."""

    history: object
    started: float = 0.0
    reached: str = "step 4 of 6"
    queued: bool = False  # it had a run slot (ui.slots) and trained

    def partial(self):
        return {"history": self.history}


def test_a_stopped_run_shows_its_partial_results():
    res = train_paired(RunConfig(steps=6, eval_every=3, eval_size=16, batch_size=4))
    partial = res.history[res.history["step"] <= 4]
    at = open_page("live")
    job = runner.Job("stopped", "BatchNorm, LayerNorm · 6 steps", lambda live: {})
    at.session_state["live.running"] = (job, StoppedLive(partial))
    at.run()
    assert not at.exception
    assert at.warning and "Stopped" in at.warning[0].value and "step 4 of 6" in at.warning[0].value
    assert len(charts(at)) == 2 and "padding fraction" in metric_labels(at)
    assert at.session_state["live.outcome"].stopped


def test_batch_size_sweep():
    at = open_page("batch_size")
    at.number_input(key="batch_size.steps").set_value(6)
    at.pills(key="batch_size.sizes").set_value([2, 4])
    at.slider(key="batch_size.seeds").set_value(1)
    run(at, "batch_size")
    assert len(charts(at)) == 2
    summary = at.session_state["batch_size.outcome"].data["summary"]
    assert sorted(summary["batch_size"].unique()) == [2, 4] and set(summary["norm"]) == {"bn", "ln"}


def test_padding_sweep_and_probe():
    at = open_page("padding")
    at.number_input(key="padding.steps").set_value(6)
    at.pills(key="padding.lengths").set_value(["uniform"])
    run(at, "padding")
    assert len(charts(at)) == 3  # loss, gap to LayerNorm, pad-length probe
    assert metric_labels(at) == ["LayerNorm: largest move", "naive BN: largest move", "masked BN: largest move"]
    assert float(at.metric[0].value) == 0 and float(at.metric[1].value) > 0


def test_per_token_statistics_and_layer_choice():
    at = open_page("per_token")
    at.number_input(key="per_token.steps").set_value(6)
    run(at, "per_token")
    assert len(charts(at)) == 3  # mean, std, variance split
    assert "LayerNorm: each token off (0, 1)" in metric_labels(at)
    at.selectbox(key="per_token.layer").set_value("final")
    at.radio(key="per_token.when").set_value("init").run()
    assert not at.exception and len(charts(at)) == 3


def test_train_vs_inference():
    at = open_page("train_vs_inference")
    at.number_input(key="train_vs_inference.steps").set_value(6)
    run(at, "train_vs_inference")
    assert len(charts(at)) == 4  # gap, both losses, BN statistics per layer, probe
    assert "naive BN: eval mode − batch stats" in metric_labels(at)
    at.selectbox(key="train_vs_inference.metric").set_value("tid_var").run()
    assert not at.exception and len(charts(at)) == 4


def test_gradients():
    at = open_page("gradients")
    at.number_input(key="gradients.steps").set_value(6)
    at.slider(key="gradients.layers").set_value(2)
    run(at, "gradients")
    assert len(charts(at)) == 3  # global, per block, at init
    profile = at.session_state["gradients.outcome"].data["profile"]
    assert set(profile["placement"]) == {"pre", "post"}
