"""The guided tour: its scenarios are reachable from their pages' forms, their precomputed files
match the scenarios and the code as they are now, and each scenario goes from one click to its
charts: at once from the stored results (timed), live on Re-run live, with the scenario's config."""

from __future__ import annotations

import dataclasses
import itertools
import json
import tempfile
import time
from dataclasses import fields
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core import precompute
from core.settings.config import RunConfig
from core.studies import experiments, reproduce
from core.studies.experiments import SETUPS
from core.studies.presets import BY_ID, PRESETS
from tests.helpers import ARTIFACTS, CHARTS, HOME, PAGES, open_page
from ui import tour

FORM_FIELDS = {"length_range": ("min_len", "max_len")}  # a form setting that stands for two config fields


@pytest.fixture(autouse=True)
def fresh_caches(empty_store):
    """Nothing recalled: no shared result (conftest.empty_store), no stored scenario loaded before."""
    tour._stored.clear()


# ---------------------------------------------------------------- the scenarios themselves
def test_scenarios_are_in_order_unique_and_on_existing_pages():
    assert [p.id for p in PRESETS] == list(BY_ID)
    for p in PRESETS:
        assert p.page in SETUPS and p.page in PAGES
        assert p.look.count(". ") >= 1 and len(p.look) < 320, p.id  # two sentences, not an essay


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.id)
def test_a_scenario_differs_from_its_page_only_in_what_the_page_lets_you_set(preset):
    setup = SETUPS[preset.page]
    settable = {f for field in setup.fields for f in FORM_FIELDS.get(field, (field,))}
    changed = {f.name for f in fields(RunConfig) if getattr(preset.config, f.name) != getattr(setup.base, f.name)}
    assert changed <= settable, changed - settable
    assert set(preset.extras) <= set(setup.extras)


# ---------------------------------------------------------------- the precomputed files
def tiny(preset):
    """The scenario shrunk to seconds: the same frames and columns, few steps, one seed."""
    extras = dict(preset.settings)
    if "seeds" in extras:
        extras["seeds"] = 1
    if "sizes" in extras:
        extras["sizes"] = extras["sizes"][:1]
    return preset.config.replace(steps=3, eval_every=3), extras


@pytest.mark.stored
def test_every_scenario_has_current_files_and_nothing_else_is_stored():
    index = precompute.read_index()
    tables = [t.id for t in precompute.TABLES]
    assert list(index) == [p.id for p in PRESETS] + tables  # one entry per scenario, in tour order, then tables
    expected = {precompute.INDEX}
    for t in precompute.TABLES:
        assert index[t.id]["config_ids"] == t.config_ids, f"{t.id}: stale, run python -m core.precompute"
        expected |= {precompute.file_name(t.id, f) for f in index[t.id]["frames"]}
    for p in PRESETS:
        stored = index[p.id]
        assert stored["config_id"] == p.config.config_id, f"{p.id}: stale, run python -m core.precompute"
        assert stored["config"] == p.config.to_dict()
        assert RunConfig.from_dict(stored["config"]) == p.config
        assert stored["settings"] == precompute.settings_json(p)
        assert tuple(stored["frames"]) == experiments.FRAMES[p.page]
        expected |= {precompute.file_name(p.id, f) for f in stored["frames"]}
    on_disk = {f.name for f in precompute.ROOT.iterdir()}
    assert on_disk == expected
    assert precompute.stale() == []
    size = sum(f.stat().st_size for f in precompute.ROOT.iterdir())
    assert size < 3 * 2**20, f"{size} bytes: keep the committed data small"


@pytest.mark.stored
@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.id)
def test_stored_frames_have_the_columns_and_types_the_code_makes_now(preset):
    cfg, extras = tiny(preset)
    made = experiments.compute(preset.page, cfg, extras)
    stored = precompute.load(preset)
    assert stored is not None
    assert list(stored.frames) == list(made)
    for name, df in made.items():
        got = stored.frames[name]
        assert list(got.columns) == list(df.columns), name
        assert {c: str(t) for c, t in got.dtypes.items()} == {c: str(t) for c, t in df.dtypes.items()}, name
        assert len(got) >= len(df) > 0, name


def test_a_frame_survives_the_round_trip(tmp_path):
    df = pd.DataFrame(
        {
            "norm": ["bn", "ln", "ln"],
            "layer": ["", "block0.norm1", ""],  # "" is a value, not a missing one
            "step": [0, 1, 2],
            "value": [1.2345678, float("nan"), -3e-9],
            "small": pd.Series([0.5, 1.0, 2.0], dtype="float32"),
            "diverged": [False, True, False],
            "diverged_at": pd.Series([None, 12, None], dtype=object),
        }
    )
    path = tmp_path / "x.csv.gz"
    precompute.write_frame(df, path)
    back = precompute.read_frame(path, {c: str(t) for c, t in df.dtypes.items()})
    pd.testing.assert_frame_equal(back, df, rtol=1e-6)
    assert back["diverged_at"].tolist() == [None, 12, None]


def test_a_changed_scenario_finds_no_stored_results():
    preset = BY_ID["post_ln_init"]
    changed = dataclasses.replace(preset, config=preset.config.replace(seed=1))
    assert precompute.load(preset) is not None
    assert precompute.load(changed) is None


def test_the_precompute_command_writes_index_and_files(tmp_path, monkeypatch, capsys):
    preset = BY_ID["post_ln_init"]
    cfg, extras = tiny(preset)
    monkeypatch.setattr(experiments, "compute", lambda page, c, e: experiments.gradients(cfg, 2))
    (tmp_path / "old.history.csv.gz").write_text("stale")  # a removed scenario's file
    assert precompute.main(["--out", str(tmp_path), "--only", preset.id]) == 0
    index = json.loads((tmp_path / "index.json").read_text())
    assert list(index) == [preset.id] and index[preset.id]["config_id"] == preset.config.config_id
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(
        ["index.json", "post_ln_init.history.csv.gz", "post_ln_init.profile.csv.gz"]
    )
    assert precompute.main(["--out", str(tmp_path), "--check"]) == 1  # the other scenarios are missing
    assert f"stale or missing: {PRESETS[0].id}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad:
        precompute.main(["--out", str(tmp_path), "--only", "nope"])
    assert bad.value.code == 2


# ---------------------------------------------------------------- in the app
def open_tour() -> AppTest:
    return open_page(Path(tour.TOUR_PAGE).stem)


def precomputed(at: AppTest, page: str) -> bool:
    """The page shows the outcome a scenario loaded from the stored files (ui/tour.py)."""
    shown = f"_tour.{page}.shown"
    return shown in at.session_state and at.session_state[f"{page}.outcome"] is at.session_state[shown]


def scenario_links(at: AppTest) -> list[tuple[str, str]]:
    """The tour page's links: (page's URL path, query), one per scenario, in order."""
    return [(link.proto.page, link.proto.query_string) for link in at.get("page_link")]


def click_scenario(at: AppTest, preset) -> float:
    """Follow the scenario's link on the tour page (AppTest cannot click a link: it does what the
    browser does, the page with the link's query); seconds until the page has run."""
    assert (preset.page, f"scenario={preset.id}") in scenario_links(at)
    started = time.perf_counter()
    at.switch_page(tour.page_path(preset.page))
    at.query_params.clear()
    at.query_params["scenario"] = preset.id
    at.run()
    seconds = time.perf_counter() - started
    assert not at.exception, at.exception
    return seconds


def test_each_scenario_shows_its_precomputed_charts_at_once():
    at = open_tour()
    assert scenario_links(at) == [(p.page, f"scenario={p.id}") for p in PRESETS]
    timings = {}
    for preset in PRESETS:
        at.query_params.clear()  # as a browser does when the page changes
        at.switch_page(tour.TOUR_PAGE)
        at.run()
        timings[preset.id] = round(click_scenario(at, preset), 2)
        assert len(at.get("vega_lite_chart")) == CHARTS[preset.page], preset.id
        assert precomputed(at, preset.page)
        assert any("Precomputed results" in c.value for c in at.caption)
        assert at.query_params["scenario"] == preset.id
        assert any(preset.look[:40] in m.value for m in at.markdown)
        assert at.button(key=f"_tour.{preset.page}.rerun")  # Re-run live is offered
        assert not at.error, [e.value for e in at.error]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "precomputed_timings_apptest.json").write_text(json.dumps(timings, indent=2) + "\n")
    print("\nclick to charts, precomputed (AppTest, s):", timings)
    assert max(timings.values()) < 5.0, timings  # a bound for a loaded machine; docs/sharing.md reports the numbers


def test_next_goes_through_the_tour_in_order():
    at = open_tour()
    click_scenario(at, PRESETS[0])
    for before, preset in itertools.pairwise(PRESETS):
        at.button(key=f"_tour.{before.page}.next").click().run()
        assert not at.exception, at.exception
        assert at.query_params["scenario"] == preset.id
        assert at.session_state[f"_tour.{preset.page}.scenario"] == preset.id
        assert len(at.get("vega_lite_chart")) == CHARTS[preset.page]


def test_rerun_live_trains_exactly_the_scenario(monkeypatch):
    """Re-run live runs the page's own form, with the scenario's config and settings (the engine is
    replaced by a recorder here; test below trains one for real)."""
    calls = []

    def record(page, cfg, extras, **kw):
        calls.append((page, cfg, json.loads(json.dumps(extras))))
        return precompute.load(next(p for p in PRESETS if p.page == page and p.config == cfg)).frames

    monkeypatch.setattr(experiments, "compute", record)
    at = open_tour()
    for preset in PRESETS:
        at.query_params.clear()
        at.switch_page(tour.TOUR_PAGE)
        at.run()
        click_scenario(at, preset)
        at.button(key=f"_tour.{preset.page}.rerun").click().run()
        assert not at.exception, at.exception
        assert calls[-1] == (preset.page, preset.config, precompute.settings_json(preset)), preset.id
        assert not precomputed(at, preset.page)
        assert not any("Precomputed results" in c.value for c in at.caption)  # the banner says so too
    assert len(calls) == len(PRESETS)


@pytest.mark.stored
def test_rerun_live_gives_the_stored_numbers():
    """Re-run live in the app keeps the reproducibility contract with the stored results
    (core/studies/reproduce.py): identical on the machine that stored them, within float noise elsewhere."""
    preset = BY_ID["add_padding"]
    stored = precompute.load(preset)
    at = open_tour()
    click_scenario(at, preset)
    at.button(key=f"_tour.{preset.page}.rerun").click().run()
    assert not at.exception, at.exception
    live = at.session_state[f"{preset.page}.outcome"].data
    assert reproduce.differences(stored.frames, _as_stored(live, stored.frames)) == []


@pytest.mark.stored
@pytest.mark.parametrize("preset", [p for p in PRESETS if p.page in tour.SINGLE_RUN], ids=lambda p: p.id)
def test_a_new_run_of_a_scenario_keeps_the_contract_with_its_stored_results(preset):
    stored = precompute.load(preset)
    made = experiments.compute(preset.page, preset.config, preset.settings)
    assert reproduce.differences(stored.frames, _as_stored(made, stored.frames)) == []


def _as_stored(frames: dict, stored: dict) -> dict:
    """Frames as the stored files hold them: written with 7 significant digits and read back."""
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, df in frames.items():
            path = Path(folder) / f"{name}.csv.gz"
            precompute.write_frame(df, path)
            out[name] = precompute.read_frame(path, {c: str(t) for c, t in stored[name].dtypes.items()})
    return out


def test_a_scenario_without_stored_results_runs_live(monkeypatch, tmp_path):
    calls = []
    preset = BY_ID["post_ln_init"]
    stored = precompute.load(preset)
    monkeypatch.setattr(precompute, "ROOT", tmp_path)  # nothing stored there
    monkeypatch.setattr(experiments, "compute", lambda page, cfg, extras, **kw: calls.append(cfg) or stored.frames)
    at = open_tour()
    click_scenario(at, preset)
    assert calls == [preset.config]
    assert len(at.get("vega_lite_chart")) == CHARTS[preset.page]
    assert not precomputed(at, preset.page)
    assert not any("Precomputed results" in c.value for c in at.caption)


def test_changing_a_setting_leaves_the_scenario():
    preset = BY_ID["post_ln_init"]
    at = open_tour()
    click_scenario(at, preset)
    assert at.query_params["scenario"] == preset.id
    at.toggle(key="gradients.log_y").set_value(False).run()  # the scenario's view has a log axis
    assert "scenario" not in at.query_params
    assert not any("Guided tour" in m.value for m in at.markdown)


def test_an_unknown_scenario_is_named_and_ignored():
    at = open_page("gradients", {"scenario": "nope"})
    assert any("scenario=nope" in w.value and "post_ln_init" in w.value for w in at.warning)


def test_a_scenario_link_to_another_page_opens_that_page():
    preset = BY_ID["post_ln_init"]
    assert preset.page != HOME
    at = open_page(HOME, {"scenario": preset.id})
    assert at.session_state[f"_tour.{preset.page}.scenario"] == preset.id
    assert len(at.get("vega_lite_chart")) == CHARTS[preset.page]


def test_every_experiment_is_one_record_that_the_pages_and_the_tour_read():
    """A page's experiment is its record: a page script of that name exists, the tour's one-run pages
    are the records without a grid, a grid record trains several paired runs from its defaults and a
    paired one trains the form's config alone; a page with no record is refused by name."""
    from ui.nav import PAGES

    pages = {p.name for p in PAGES}
    for key, e in experiments.EXPERIMENTS.items():
        assert key in pages and e.key == key and experiments.SETUPS[key] is e.setup
        cfgs = e.grid(e.setup.base, dict(e.setup.extras))
        assert (cfgs == [e.setup.base]) == e.single_run, key
        assert e.single_run or len(cfgs) > 1, key
    assert tour.SINGLE_RUN == ("live", "per_token", "train_vs_inference", "gradients")
    with pytest.raises(ValueError, match="no experiment on page 'overview'"):
        experiments.compute("overview", RunConfig(), {})
