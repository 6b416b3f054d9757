"""Every setting in the URL. The parameter codec on its own (core/settings/params.py); then, per page, a
non-default experiment set by hand, its share link opened in a fresh session (AppTest with those
query parameters): the same settings, and after Run the same numbers. Bad parameters give one
warning each, naming the parameter and what it allows, and the default; never an exception."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.settings import params as P
from core.studies.experiments import SETUPS
from tests.helpers import APP, PAGES, TIMEOUT, open_page
from ui import runner

pytestmark = pytest.mark.usefixtures("empty_store")  # every Run trains

VALUE_WIDGETS = ("number_input", "pills", "select_slider", "slider", "selectbox", "toggle", "radio", "checkbox")


# ---------------------------------------------------------------- the codec
def test_each_kind_of_parameter_reads_what_it_writes():
    cases = [
        (P.choice("task", ("text", "control"), "text"), "control", "control"),
        (P.choice("batch_size", (1, 2, 4), 2), 4, "4"),
        (P.choice("lr", (1e-4, 3e-3), 3e-3), 1e-4, "0.0001"),
        (P.choices("norms", ("ln", "bn", "rms"), ["bn", "ln"]), ["ln", "rms"], "ln,rms"),
        (P.integer("steps", 1, 3000, 300), 40, "40"),
        (P.real("smooth", 0.0, 0.99, 0.85), 0.5, "0.5"),
        (P.flag("log_y", False), True, "1"),
        (P.int_range("length_range", 2, 64, (4, 32)), (6, 20), "6-20"),
    ]
    for param, value, text in cases:
        assert param.encode(value) == text
        assert param.decode(text) == value
        assert P.read({param.name: text}, [param]) == ({param.name: value}, [])


def test_numbers_and_lists_are_read_leniently_but_exactly():
    assert P.choice("lr", (1e-4, 1e-3), 1e-3).decode("1e-4") == 1e-4
    assert P.choices("norms", ("ln", "bn", "rms"), ["ln"]).decode("rms, ln,ln") == ["ln", "rms"]
    assert P.flag("x", False).decode("TRUE") is True
    assert P.int_range("r", 2, 64, (4, 32)).decode("4..9") == (4, 9)


@pytest.mark.parametrize(
    "param, text",
    [
        (P.choice("batch_size", (1, 2, 4), 2), "999"),
        (P.choice("lr", (1e-4, 3e-3), 3e-3), "abc"),
        (P.choice("task", ("text", "control"), "text"), "Control"),
        (P.choices("norms", ("ln", "bn"), ["ln"]), "ln,xx"),
        (P.choices("norms", ("ln", "bn"), ["ln"]), ","),
        (P.integer("steps", 1, 3000, 300), "99999"),
        (P.integer("steps", 1, 3000, 300), "1.5"),
        (P.real("smooth", 0.0, 0.99, 0.85), "nan"),
        (P.real("smooth", 0.0, 0.99, 0.85), "inf"),
        (P.flag("log_y", False), "maybe"),
        (P.int_range("length_range", 2, 64, (4, 32)), "20-6"),
        (P.int_range("length_range", 2, 64, (4, 32)), "1-70"),
        (P.integer("seed", 0, 9, 0), ""),
    ],
)
def test_a_bad_value_is_a_problem_naming_the_parameter_and_what_it_allows(param, text):
    values, problems = P.read({param.name: text}, [param])
    assert values == {}
    [problem] = problems
    assert problem.name == param.name and problem.given == text
    assert f"`{param.name}={text}`" in problem.message and param.allowed in problem.message
    assert f"using the default, `{param.encode(param.default)}`" in problem.message


def test_unknown_names_are_problems_unless_they_belong_to_someone_else():
    params = [P.integer("steps", 1, 10, 5)]
    values, problems = P.read({"stesp": "4", "lang": "zh", "steps": ["3", "4"]}, params, ignore=["lang"])
    assert values == {"steps": 4}  # a repeated parameter: the last value
    assert [p.name for p in problems] == ["stesp"] and "its settings: steps" in problems[0].message


def test_write_keeps_only_what_differs_unless_full():
    params = [P.integer("steps", 1, 3000, 300), P.choices("norms", ("ln", "bn"), ["bn", "ln"])]
    assert P.write({"steps": 300, "norms": ["ln", "bn"]}, params) == {}
    assert P.write({"steps": 40, "norms": ["bn"]}, params) == {"steps": "40", "norms": "bn"}
    assert P.write({}, params, full=True) == {"steps": "300", "norms": "ln,bn"}


# ---------------------------------------------------------------- pages: by hand, then by link
def widget(at: AppTest, key: str):
    for kind in VALUE_WIDGETS:
        try:
            return getattr(at, kind)(key=key)
        except KeyError:
            continue
    raise KeyError(key)


def widget_keys(at: AppTest, page: str) -> set[str]:
    return {w.key for kind in VALUE_WIDGETS for w in getattr(at, kind) if w.key and w.key.startswith(f"{page}.")}


def run(at: AppTest, page: str):
    at.button(key=f"{page}.run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def share_link(at: AppTest, page: str) -> str:
    [link] = [c.value for c in at.code if c.value.startswith(f"/{page}?")]
    return link


def values(at: AppTest, keys) -> dict:
    """Widget values by key; a multiple choice as a sorted list (the order of clicks means nothing)."""
    out = {}
    for k in keys:
        v = widget(at, k).value
        out[k] = sorted(v) if isinstance(v, list) else v
    return out


def numbers(at: AppTest, page: str) -> dict[str, pd.DataFrame]:
    data = at.session_state[f"{page}.outcome"].data
    return {name: df.drop(columns=["seconds"], errors="ignore") for name, df in data.items()}


# page -> (form settings by hand, display settings by hand after the run), for every page of the menu
EXPERIMENTS = {
    "live": (
        {
            "norms": ["masked_bn", "ln"],
            "batch_size": 4,
            "lengths": "uniform",
            "length_range": (6, 20),
            "steps": 8,
            "lr": 0.01,
            "seed": 5,
        },
        {"smooth": 0.5, "log_y": True, "x": "tokens"},
    ),
    "batch_size": ({"steps": 6, "lr": 0.01, "sizes": [2, 4], "seeds": 1}, {}),
    "padding": ({"steps": 6, "batch_size": 2, "lengths": ["uniform"], "batching": ["random"]}, {}),
    "per_token": ({"steps": 6, "batch_size": 4, "seed": 2}, {"layer": "final", "when": "init"}),
    "train_vs_inference": ({"steps": 6, "batch_size": 4, "seed": 1}, {"metric": "tid_var", "log_y": True}),
    "gradients": ({"steps": 6, "placement": "post", "seed": 2, "layers": 3}, {"x": "tokens", "smooth": 0.2}),
    "fixes": (
        {
            "steps": 6,
            "task": "shakespeare",
            "norms": ["ln", "groupnorm"],
            "sizes": [4],
            "attentions": ["bidirectional"],
        },
        {},
    ),
    "overview": ({}, {"seq": 2, "pos": 4, "channel": 3}),
    "tour": ({}, {}),  # no settings: its link opens it as it is
}
# page -> link parameters it cannot use, for every page of the menu
BAD = {
    "live": {
        "batch_size": "999",
        "lr": "abc",
        "norms": "bn,xx",
        "task": "nope",
        "steps": "99999",
        "length_range": "30-3",
        "smooth": "2",
        "log_y": "maybe",
        "x": "time",
        "stesp": "4",
    },
    "batch_size": {"sizes": "3", "seeds": "0"},
    "padding": {"lengths": "short", "seeds": "9"},
    "per_token": {"layer": "block9.norm1", "when": "later", "batch_size": "-1"},
    "train_vs_inference": {"metric": "loss", "seed": "-5"},
    "gradients": {"layers": "99", "placement": "middle"},
    "fixes": {"attentions": "sideways", "sizes": "0", "norms": "powernorm,bogus"},
    "overview": {"pos": "99", "channel": "x"},
    "tour": {"steps": "5"},
}


def test_every_page_of_the_menu_has_its_link_cases():
    """A page added to the menu (ui.nav.PAGES) fails here until it has its cases above."""
    for cases in (EXPERIMENTS, BAD):
        assert sorted(cases) == sorted(PAGES), {"missing": set(PAGES) - set(cases), "extra": set(cases) - set(PAGES)}


@pytest.mark.parametrize("page", PAGES)
def test_a_share_link_reproduces_the_settings_and_the_numbers(page):
    form, view = EXPERIMENTS[page]
    hand = open_page(page)
    for key, value in form.items():
        widget(hand, f"{page}.{key}").set_value(value)
    if form:
        run(hand, page)
    for key, value in view.items():
        widget(hand, f"{page}.{key}").set_value(value).run()
        assert not hand.exception, hand.exception
    settings = values(hand, widget_keys(hand, page))
    assert {k: settings[f"{page}.{k}"] for k in view} == view
    address_bar = dict(hand.query_params)
    link = share_link(hand, page)
    query = dict(parse_qsl(urlsplit(link).query, keep_blank_values=True))
    assert set(address_bar.items()) <= set(query.items())  # the address bar: the non-defaults only
    assert {k: query[k] for k in address_bar} == address_bar

    runner.JOBS.forget()  # the link's run trains again: no recall of the first one
    linked = open_page(page, query)
    assert not linked.warning, [w.value for w in linked.warning]
    drawn = widget_keys(linked, page)  # before Run: no result widgets yet
    assert values(linked, drawn) == {k: v for k, v in settings.items() if k in drawn}
    if form:
        run(linked, page)
        assert values(linked, settings) == settings  # the result widgets' settings too
        first, again = numbers(hand, page), numbers(linked, page)
        assert list(first) == list(again)
        for name in first:
            pd.testing.assert_frame_equal(first[name], again[name], check_exact=False, rtol=1e-6)
    else:
        assert [m.value for m in linked.metric] == [m.value for m in hand.metric]
    assert share_link(linked, page) == link


@pytest.mark.parametrize("page", [p for p in PAGES if p in SETUPS])  # the pages with a Run form
def test_every_setting_on_a_page_travels_in_its_link(page):
    """After a run (so the result widgets are drawn too), each value widget of the page is in its link."""
    form, _ = EXPERIMENTS[page]
    at = open_page(page)
    for key, value in form.items():
        if key in ("steps", "sizes", "seeds", "lengths", "batching", "layers"):  # small and quick
            widget(at, f"{page}.{key}").set_value(value)
    run(at, page)
    query = dict(parse_qsl(urlsplit(share_link(at, page)).query))
    assert {k.removeprefix(f"{page}.") for k in widget_keys(at, page)} <= set(query)


@pytest.mark.parametrize("page", PAGES)
def test_bad_link_settings_are_named_and_fall_back_to_the_defaults(page):
    good = open_page(page)
    defaults = values(good, widget_keys(good, page))
    at = open_page(page, {**BAD[page], "seed": "12"} if page == "live" else BAD[page])
    warnings = [w.value for w in at.warning]
    assert len(warnings) == len(BAD[page]), warnings
    known = {param.name for param in at.session_state[f"_url.{page}.params"]}  # the page's settings
    for name, text in BAD[page].items():
        said = f"`{name}={text}`" if name in known else f"`{name}` is not a setting"
        assert sum(said in w for w in warnings) == 1, (name, said, warnings)
    expected = {**defaults, "live.seed": 12} if page == "live" else defaults
    assert values(at, defaults) == expected  # the good one is taken, the bad ones default
    assert not set(BAD[page]) & set(at.query_params)  # the bad ones leave the address bar
    if page in SETUPS:
        widget(at, f"{page}.steps").set_value(6)
        run(at, page)
        assert not at.warning, "the warnings go once the visitor runs their own settings"


def test_present_folds_the_settings_and_enlarges_the_text():
    at = open_page("live", {"present": "1", "steps": "20"})
    assert at.toggle(key="present").value is True
    assert "Settings" in [e.label for e in at.expander]
    assert at.number_input(key="live.steps").value == 20  # the form is inside the folded expander
    assert "present=1" in share_link(at, "live")
    assert at.query_params["present"] == "1"
    at.switch_page("app_pages/gradients.py")
    at.query_params.clear()  # page change: the browser drops the parameters, the view stays on
    at.run()
    assert at.query_params["present"] == "1" and "Settings" in [e.label for e in at.expander]
    at.toggle(key="present").set_value(False).run()
    assert "present" not in at.query_params and "Settings" not in [e.label for e in at.expander]


def test_language_and_presenter_are_not_page_settings():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"lang": "zh", "present": "0", "seq": "1"})  # a fresh session opens the link
    at.run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    assert at.query_params == {"lang": "zh", "seq": "1"}  # present=0 is the default: it goes
    assert at.slider(key="overview.seq").value == 1


def test_a_link_cannot_ask_for_more_work_than_the_host_allows():
    """Each setting within its bounds, the sweep as a whole too large: refused by name, nothing runs."""
    at = open_page("batch_size", {"sizes": "1,2,4,8,16,32,64", "seeds": "5", "steps": "3000"})
    assert not at.warning  # every value is allowed on its own
    at.button(key="batch_size.run").click().run()
    assert not at.exception
    assert any("sweep size" in e.value and "at most 20000 training steps" in e.value for e in at.error)
    assert "batch_size.outcome" not in at.session_state
    for name, text in {"steps": "3001", "batch_size": "128", "layers": "9"}.items():
        page = "gradients" if name == "layers" else "live"
        linked = open_page(page, {name: text})
        assert any(f"`{name}={text}`" in w.value for w in linked.warning)
