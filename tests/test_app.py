"""Every page through Streamlit's AppTest: it renders without an exception, its form trains a
small config to completion, and its charts and metrics appear. Configs are shrunk through the
widgets (few steps, one seed) so the whole file runs in a minute or two."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from core.engine.report import HISTORY_COLUMNS, Progress
from core.engine.train import train_paired
from core.settings.config import NORMS, RunConfig
from core.studies import jobs
from core.studies.experiments import SETUPS
from tests.helpers import CHARTS, PAGES, open_page, url_path
from ui import runner

pytestmark = pytest.mark.usefixtures("empty_store")  # each test trains for real: nothing recalled


def run(at: AppTest, page: str) -> AppTest:
    at.button(key=f"{page}.run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def charts(at: AppTest) -> list:
    return at.get("vega_lite_chart")


def metric_labels(at: AppTest) -> list[str]:
    return [m.label for m in at.metric]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_of_the_menu_opens_and_shows_its_results(page):
    """Each page of the menu opens without an exception or an error; one with a Run form
    (core.studies.experiments.SETUPS) trains a few steps of its default experiment; then it draws its charts.
    The tests below check what each page shows."""
    at = open_page(page)
    assert at.title and not at.error, [e.value for e in at.error]
    if page in SETUPS:
        assert not charts(at), "no results before the first Run"
        at.number_input(key=f"{page}.steps").set_value(3)
        run(at, page)
        outcome = at.session_state[f"{page}.outcome"]
        assert not outcome.stopped and outcome.data and all(len(df) for df in outcome.data.values()), page
    assert len(charts(at)) == CHARTS[page]


FORM_PAGES = [p for p in PAGES if p in SETUPS]


@pytest.mark.parametrize("page", FORM_PAGES)
def test_every_page_works_with_every_norm_and_on_real_text(page):
    """A link that asks a page for every norm (and, where the page has a task, Chinese verses; an
    encoder where it has the attention setting) trains them all and draws its charts."""
    fields = SETUPS[page].fields
    query = {"norms": ",".join(NORMS), "steps": "3"}
    if "task" in fields:
        query.update(task="tangshi", lengths="natural")
    if "attention" in fields and page not in ("live", "train_vs_inference"):  # those two: causal, generations
        query["attention"] = "bidirectional"
    at = open_page(page, query)
    assert not at.warning, [w.value for w in at.warning]
    run(at, page)
    outcome = at.session_state[f"{page}.outcome"]
    assert not outcome.stopped and all(len(df) for df in outcome.data.values()), page
    assert set(next(df for df in outcome.data.values() if "norm" in df)["norm"]) == set(NORMS)
    assert not at.error, [e.value for e in at.error]
    assert len(charts(at)) == CHARTS[page]


def test_overview_renders_the_pooling_picture_and_links():
    at = open_page("overview")
    assert len(charts(at)) == CHARTS["overview"]
    assert metric_labels(at) == ["BatchNorm pools", "Masked BatchNorm pools", "LayerNorm pools"]
    links = [link.proto.page for link in at.get("page_link")]
    assert links == [url_path(p) for p in PAGES if p != "overview"]  # every other page of the menu, in order
    at.slider(key="overview.channel").set_value(3).run()
    assert not at.exception and len(charts(at)) == CHARTS["overview"]


def test_live_trains_and_recalls_the_same_settings():
    at = open_page("live")
    assert at.info, "a hint to press Run before the first run"
    at.number_input(key="live.steps").set_value(12)
    run(at, "live")
    assert len(charts(at)) == CHARTS["live"]
    labels = metric_labels(at)
    assert {"LayerNorm: held-out loss", "naive BN: held-out loss", "padding fraction", "steps per second"} <= set(
        labels
    )
    assert any("12 steps" in c.value for c in at.caption)
    first = at.session_state["live.outcome"]
    assert not first.stopped and first.data["history"]["step"].max() == 12
    run(at, "live")  # same settings: recalled from the store, not trained again
    assert at.session_state["live.outcome"].data is first.data  # the stored job's own frames


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
    at.selectbox(key="live.task").set_value("upload")  # no text uploaded
    at.button(key="live.run").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "your own text" in at.error[0].value
    assert not charts(at)


@pytest.mark.parametrize("task, lengths", [("control", "fixed"), ("tangshi", "natural")])
def test_a_task_gets_the_sentence_lengths_it_takes(task, lengths):
    """The form holds long-tailed lengths (the Live page's default); a task that takes other ones
    gets them on Run, says so, and trains."""
    at = open_page("live")
    at.selectbox(key="live.task").set_value(task)
    at.number_input(key="live.steps").set_value(4)
    at.button(key="live.run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="live.lengths").value == lengths
    assert any("Sentence lengths set to" in i.value for i in at.info), [i.value for i in at.info]
    cfg = at.session_state["live.outcome"].config
    assert (cfg.task, cfg.lengths) == (task, lengths)


def test_a_stopped_run_shows_its_partial_results():
    """A job everyone left (here: stopped after step 4 of 6) gives its watcher the steps it trained,
    with the line it had reached."""
    cfg = RunConfig(steps=6, eval_every=3, eval_size=16, batch_size=4)
    res = train_paired(cfg)
    partial = res.history[res.history["step"] <= 4]
    at = open_page("live")
    job = jobs.Job("stopped", lambda job: {}, runner.JOBS)
    job.step(Progress(4, 6, [], {}, 0.5, list(partial[HISTORY_COLUMNS].itertuples(index=False, name=None))))
    job.state = jobs.STOPPED
    at.session_state["live.watching"] = runner.Watching(job, "visitor", "BatchNorm, LayerNorm · 6 steps", cfg)
    at.run()
    assert not at.exception
    assert at.warning and "Stopped" in at.warning[0].value and "step 4 of 6" in at.warning[0].value
    assert len(charts(at)) == CHARTS["live"] and "padding fraction" in metric_labels(at)
    out = at.session_state["live.outcome"]
    assert out.stopped and out.data["history"]["step"].max() == 4 and "live.watching" not in at.session_state


def test_batch_size_sweep():
    at = open_page("batch_size")
    at.number_input(key="batch_size.steps").set_value(6)
    at.pills(key="batch_size.sizes").set_value([2, 4])
    at.slider(key="batch_size.seeds").set_value(1)
    run(at, "batch_size")
    assert len(charts(at)) == CHARTS["batch_size"]
    summary = at.session_state["batch_size.outcome"].data["summary"]
    assert sorted(summary["batch_size"].unique()) == [2, 4] and set(summary["norm"]) == {"bn", "ln"}


def test_padding_sweep_and_probe():
    at = open_page("padding")
    at.number_input(key="padding.steps").set_value(6)
    at.pills(key="padding.lengths").set_value(["uniform"])
    run(at, "padding")
    assert len(charts(at)) == CHARTS["padding"]
    assert metric_labels(at) == ["LayerNorm: largest move", "naive BN: largest move", "masked BN: largest move"]
    assert float(at.metric[0].value) == 0 and float(at.metric[1].value) > 0


@pytest.mark.parametrize(
    ("page", "label", "choices"),
    [
        (
            "per_token",
            "LayerNorm: each token off (0, 1)",
            [("selectbox", "per_token.layer", "final"), ("radio", "per_token.when", "init")],
        ),
        (
            "train_vs_inference",
            "naive BN: eval mode − batch stats",
            [("selectbox", "train_vs_inference.metric", "tid_var")],
        ),
    ],
)
def test_a_probe_page_runs_and_redraws_for_its_display_choices(page, label, choices):
    at = open_page(page)
    at.number_input(key=f"{page}.steps").set_value(6)
    run(at, page)
    assert len(charts(at)) == CHARTS[page]
    assert label in metric_labels(at)
    for kind, key, value in choices:  # display choices outside the form: a redraw, no new run
        getattr(at, kind)(key=key).set_value(value)
    at.run()
    assert not at.exception and len(charts(at)) == CHARTS[page]


def test_gradients():
    at = open_page("gradients")
    at.number_input(key="gradients.steps").set_value(6)
    at.slider(key="gradients.layers").set_value(2)
    run(at, "gradients")
    assert len(charts(at)) == CHARTS["gradients"]
    profile = at.session_state["gradients.outcome"].data["profile"]
    assert set(profile["placement"]) == {"pre", "post"}
