"""Both languages: every text the app shows through ``t()`` has a Chinese translation with the same
placeholders, no translation is left over, and every page renders in Chinese (from ``?lang=zh`` or
the sidebar switch) without an exception; an unknown ``lang`` falls back to English with a warning."""

from __future__ import annotations

import ast
import itertools
import re
import string
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import charts
from core.charts import PLACEMENT_LABELS
from core.engine.uploads import CORPUS_ERRORS
from core.settings.config import NORM_LABELS
from core.settings.norm_specs import NORM_SPECS
from core.settings.tasks import TASKS
from core.studies import experiments
from core.studies.presets import PRESETS
from tests.helpers import APP, CHARTS, ROOT, TIMEOUT
from ui import controls, nav, show
from ui.i18n import LANGUAGES, PAGE_FILES, ZH, merged

SOURCES = [ROOT / "streamlit_app.py", *sorted((ROOT / "ui").glob("*.py")), *sorted((ROOT / "app_pages").glob("*.py"))]
CJK = re.compile(r"[\u4e00-\u9fff]")


def _is_t(func: ast.expr) -> bool:
    return (isinstance(func, ast.Name) and func.id == "t") or (isinstance(func, ast.Attribute) and func.attr == "t")


def _module_dict(path: Path, name: str) -> dict:
    """A page's module-level dict literal (pages run on import, so they are read, not imported)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found in {path.name}")


def _calls(path: Path) -> set[str]:
    """The literal texts a source file passes through t(), and the labels of its grid settings."""
    texts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        if _is_t(node.func) and isinstance(node.args[0], ast.Constant):
            texts.add(node.args[0].value)
        elif getattr(node.func, "attr", None) == "GridField":  # (key, label, ...): a grid page's setting
            texts.add(node.args[1].value)
    return texts


# A page script's label tables shown through translated() (pages run on import, so they are read).
PAGE_TABLES = {"per_token": "WHEN_LABELS", "train_vs_inference": "BN_METRIC_LABELS"}


def page_texts(page: nav.PageInfo) -> set[str]:
    """What one page shows of its own: its script's texts, its menu record (title, blurb,
    introduction, heading) and its experiment's run title."""
    texts = _calls(ROOT / page.path) | {page.title, page.blurb, page.intro} | ({page.heading} - {""})
    if page.name in PAGE_TABLES:
        texts.update(_module_dict(ROOT / page.path, PAGE_TABLES[page.name]).values())
    if page.name in experiments.EXPERIMENTS and experiments.EXPERIMENTS[page.name].title != "{settings}":
        texts.add(experiments.EXPERIMENTS[page.name].title)
    return texts


def shared_texts() -> set[str]:
    """Every English text the app passes through t() outside the pages' own: the literal ones in the
    entry script and ui/, the label and help of each field of the form, the label tables shown
    through t() or translated(), the progress lines, the records' names, the charts and the tour."""
    texts = set().union(*(_calls(path) for path in SOURCES if path.parent.name != "app_pages"))
    tables = [NORM_LABELS, PLACEMENT_LABELS, show.SHORT_LABELS, controls.TASK_LABELS, controls.LENGTH_LABELS]
    tables += [controls.ATTENTION_LABELS]
    tables += [controls.BATCHING_LABELS, controls.FIELD_LABELS, controls.X_LABELS, CORPUS_ERRORS]
    texts.update(f.help for f in controls.FIELDS.values() if f.help)  # and their labels: FIELD_LABELS
    for table in tables:
        texts.update(table.values())
    texts.update(
        [experiments.WRITING, experiments.PROBING, experiments.PROFILING, experiments.DEPLOYING]
    )  # the progress line after training
    texts.update(task.names["en"] for task in TASKS.values())
    texts.update(task.about["en"] for task in TASKS.values())
    texts.update(chart_texts())
    texts.update(p.title for p in PRESETS)
    texts.update(p.look for p in PRESETS)
    return texts


def shown_texts() -> set[str]:
    """Every English text the app passes through t(): the shared ones and each page's own."""
    return shared_texts().union(*(page_texts(p) for p in nav.PAGES))


def own_texts() -> dict[str, set[str]]:
    """Each page's texts that no other page and nothing shared shows: its translations live beside
    its script (app_pages/<page>.toml), so a new page brings its own."""
    shared, pages = shared_texts(), {p.name: page_texts(p) for p in nav.PAGES}
    return {
        name: texts - shared - set().union(*(o for other, o in pages.items() if other != name))
        for name, texts in pages.items()
    }


def fields(template: str) -> list[tuple[str, str]]:
    return sorted((name, spec) for _, name, spec, _ in string.Formatter().parse(template) if name is not None)


def test_every_shown_text_has_a_chinese_translation():
    missing = sorted(shown_texts() - set(ZH))
    assert not missing, f"{len(missing)} texts without Chinese, e.g. {missing[:3]}"


def test_no_translation_is_left_over():
    unused = sorted(set(ZH) - shown_texts())
    assert not unused, f"translations of texts the app no longer shows (English changed?): {unused[:3]}"


def test_a_page_is_its_script_and_its_data_file():
    """Every script in app_pages/ has its data file (menu record and own translations) and is in the
    menu, in the order the files give; a data file with no script, or a script with none, fails here."""
    scripts = {path.stem for path in (ROOT / "app_pages").glob("*.py")}
    assert scripts == set(PAGE_FILES) == {p.name for p in nav.PAGES}
    assert nav.PAGES[0].name == "overview"  # the default page, served at "/"
    record = {"title": "T", "icon": ":material/home:", "blurb": "b", "intro": "i"}
    files = {"a": {"page": record | {"order": 2}}, "b": {"page": record | {"order": 1}}}
    assert [p.path for p in nav.pages(files)] == ["app_pages/b.py", "app_pages/a.py"]  # by place, not name
    files["a"]["page"]["order"] = 1
    with pytest.raises(ValueError, match="two pages share a place in the menu"):
        nav.pages(files)


def test_a_pages_own_texts_are_translated_beside_it_and_the_shared_ones_in_ui():
    """The Chinese of a text only one page shows is in that page's file, and nowhere else: a new
    page brings its translations with it, and ui/zh.toml keeps only what ui/, the charts or several
    pages show."""
    own = own_texts()
    for name, data in PAGE_FILES.items():
        assert set(data["zh"]) == own[name], {
            "missing": sorted(own[name] - set(data["zh"]))[:3],
            "not this page's own": sorted(set(data["zh"]) - own[name])[:3],
        }


def test_a_text_translated_in_two_places_is_refused():
    assert merged({"a": {"x": "甲"}, "b": {"y": "乙"}}) == {"x": "甲", "y": "乙"}
    with pytest.raises(ValueError, match="b translates texts translated elsewhere too: \\['x'\\]"):
        merged({"a": {"x": "甲"}, "b": {"x": "乙"}})


# Texts whose Chinese has no Chinese character, on purpose: names and formulas made only of the
# technical terms that stay in English inside the Chinese (ui/i18n.py), placeholders and symbols.
KEPT_IN_ENGLISH = {
    "LayerNorm",
    "RMSNorm",
    "masked BN",
    "pre-norm",
    "post-norm",
    "norm",
    "batch {n}",
    "Pre-norm: x + f(norm(x))",
    "Post-norm: norm(x + f(x))",
    "loss (nats/token)",
    "attention",
}
TERMS = {
    "layernorm",
    "rmsnorm",
    "masked",
    "bn",
    "pre",
    "post",
    "norm",
    "batch",
    "x",
    "f",
    "loss",
    "nats",
    "token",
    "attention",
}
# The norms' own names, which their records keep in English in both languages (core/settings/norm_specs.py).
NORM_NAMES = {n["en"] for spec in NORM_SPECS.values() for n in (spec.labels, spec.short) if n["zh"] == n["en"]}
KEPT_IN_ENGLISH |= NORM_NAMES
TERMS |= {w.lower() for name in NORM_NAMES for w in re.findall(r"[A-Za-z]+", name)}


def test_translations_keep_the_placeholders_and_are_chinese():
    """Each translation has the English text's {placeholders}, and Chinese characters, unless the
    text is one of KEPT_IN_ENGLISH; that list holds only texts made of terms and symbols, whose
    translations really have no Chinese character (a stale entry fails too)."""
    for en, zh in ZH.items():
        assert fields(en) == fields(zh), (en, zh)
        assert bool(CJK.search(zh)) != (en in KEPT_IN_ENGLISH), (en, zh)
    for en in KEPT_IN_ENGLISH:
        assert en in ZH, f"{en!r} has no translation: remove it from KEPT_IN_ENGLISH"
        words = re.findall(r"[A-Za-z]+", re.sub(r"\{[^}]*\}", "", ZH[en]))
        assert words and {w.lower() for w in words} <= TERMS, (en, ZH[en])


def test_every_task_is_named_and_described_in_both_languages():
    for task in TASKS.values():
        for field in (task.labels, task.names, task.about):
            assert set(field) == set(LANGUAGES), (task.key, field)
            assert CJK.search(field["zh"]) and not CJK.search(field["en"]), (task.key, field)


def test_every_chart_text_has_a_chinese_translation():
    """Every title (chart, axis, legend, tooltip), legend name and scale domain that the charts of
    the pages show has a translation (ui.show.localized uses it), from the charts' own source:
    chart_texts() reads core/charts/, and the ones made of data are checked by rendering below."""
    missing = sorted(chart_texts() - set(ZH))
    assert not missing, missing


def chart_texts() -> set[str]:
    """The English strings core/charts/ shows: titles (``title=...``), and its label tables
    (names in legends and panel headers). Mapping values the charts draw from data are in the tables."""
    texts = set()
    sources = sorted((ROOT / "core/charts").glob("*.py"))
    for node in (n for path in sources for n in ast.walk(ast.parse(path.read_text()))):
        if isinstance(node, ast.keyword) and node.arg == "title" and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str) and node.value.value:
                texts.add(node.value.value)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            if any(isinstance(t, ast.Name) and t.id.endswith("_TITLE") for t in node.targets):
                texts.add(node.value.value)
    for table in (charts.LOSS_SERIES, charts.GRAD_SERIES, charts.EVAL_GAP_SERIES, charts.STAGE_LABELS,
                  charts.MODE_LABELS, charts.BATCHING_TITLES, charts.POOL_ROLES, charts.X_TITLES,
                  charts.PLACEMENT_LABELS, charts.ATTENTION_TITLES, charts.GROUPING_LABELS, charts.POSITION_SERIES,
                  charts.CHANNEL_LABELS, charts.KL_SERIES, charts.STATISTICS_LABELS, charts.TARGET_LABELS,
                  charts.DEPENDENCE_TITLES):  # fmt: skip
        texts.update(table.values())
    return texts


def open_app(lang: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if lang is not None:
        at.query_params["lang"] = lang
    at.run()
    assert not at.exception, at.exception
    return at


def chinese(at: AppTest) -> bool:
    """The page's title and every caption of the page itself are Chinese (captions made of names and
    numbers aside)."""
    captions = [c.value for c in at.main.caption if re.search(r"[A-Za-z]{4}", c.value)]
    return bool(CJK.search(at.title[0].value)) and all(CJK.search(c) for c in captions) and bool(captions)


@pytest.mark.parametrize("page", [p.path for p in nav.PAGES])
def test_every_page_renders_in_chinese_from_the_url(page):
    at = open_app("zh")
    if page != nav.PAGES[0].path:
        at.switch_page(page)
        at.run()
    assert not at.exception, at.exception
    assert chinese(at), [at.title[0].value, *(c.value[:40] for c in at.caption)]
    assert at.query_params.get("lang") in (None, "zh")


def test_the_sidebar_switch_changes_the_language_both_ways():
    at = open_app()
    assert not CJK.search(at.title[0].value)
    at.radio(key="lang").set_value("zh").run()
    assert not at.exception and chinese(at)
    at.switch_page("app_pages/live.py")
    at.run()
    assert not at.exception and chinese(at), "the language stays when the visitor changes page"
    at.radio(key="lang").set_value("en").run()
    assert not at.exception and not CJK.search(at.title[0].value)


def test_an_unknown_language_in_the_url_falls_back_to_english_with_a_warning():
    at = open_app("xx")
    assert not CJK.search(at.title[0].value)
    assert at.warning and "lang=xx" in at.warning[0].value
    at = open_app("`[x](http://e.vil)`")
    assert at.warning and "http" in at.warning[0].value and "[" not in at.warning[0].value, "shown, not rendered"


def test_a_run_and_its_results_render_in_chinese():
    at = open_app("zh")
    at.switch_page("app_pages/live.py")
    at.run()
    at.number_input(key="live.steps").set_value(6)
    at.button(key="live.run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("vega_lite_chart")) == CHARTS["live"]
    assert any("留出集 loss" in m.label for m in at.metric)
    assert any("6 步" in c.value for c in at.caption), "the run's title is in Chinese too"


def test_switching_language_keeps_the_settings():
    at = open_app()
    at.switch_page("app_pages/live.py")
    at.run()
    at.selectbox(key="live.lengths").set_value("uniform")
    at.selectbox(key="live.batching").set_value("bucketed")
    at.number_input(key="live.steps").set_value(4)
    at.button(key="live.run").click().run()
    at.radio(key="lang").set_value("zh").run()
    assert not at.exception and chinese(at)
    assert at.selectbox(key="live.lengths").value == "uniform" and at.selectbox(key="live.batching").value == "bucketed"
    at.button(key="live.run").click().run()
    assert not at.exception, at.exception
    cfg = at.session_state["live.outcome"].config
    assert (cfg.lengths, cfg.batching, cfg.steps) == ("uniform", "bucketed", 4)


def test_the_language_survives_a_page_change_made_by_the_app():
    here, after = next((a, b) for a, b in itertools.pairwise(PRESETS) if a.page != b.page)  # Next changes page
    at = open_app("zh")
    at.switch_page(f"app_pages/{here.page}.py")
    at.query_params["scenario"] = here.id  # the tour page's link to a scenario (a link: AppTest follows it)
    at.run()
    at.button(key=f"_tour.{here.page}.next").click().run()  # st.switch_page to the next scenario's page
    assert at.session_state[f"_tour.{after.page}.scenario"] == after.id
    assert not at.exception, at.exception
    assert at.session_state["lang"] == "zh" and chinese(at)
    assert at.query_params.get("lang") == "zh", "a link copied now opens in Chinese too"


def test_upload_messages_are_translated():
    at = open_app("zh")
    at.switch_page("app_pages/live.py")
    at.run()
    at.file_uploader(key="live.upload").set_value(("空.txt", b"", "text/plain")).run()
    assert not at.exception, at.exception
    assert len(at.error) == 1 and "文件是空的" in at.error[0].value
