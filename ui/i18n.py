"""English and Chinese (Simplified): picked in the sidebar or with ``?lang=zh`` in the URL.

Text is written in English where it is used, wrapped in ``t()``; ``ZH`` maps each such English text
to its Chinese (read from the data files ui/zh.toml and app_pages/<page>.toml, and from the norm and
task records), and a text missing from it shows in English (``tests/test_i18n.py`` lists every
``t("...")`` of the app and fails on a missing one). Templates take named values, filled in after
translation: ``t("step {step} of {total}", step=3, total=10)``. Technical terms (BatchNorm, LayerNorm,
batch, pad, token, ...) stay in English inside the Chinese: they are the words readers search for.
Charts are built in English (core/charts/) and translated when drawn (``ui.show.localized``: titles,
axis titles, legends, panel headers).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import streamlit as st

from core.settings.norm_specs import NORM_SPECS
from core.settings.tasks import TASKS

LANGUAGES = {"en": "English", "zh": "中文"}
DEFAULT = "en"
KEY = "lang"  # the session-state key and the URL parameter


def lang() -> str:
    return st.session_state.get(KEY, DEFAULT)


def t(text: str, **values) -> str:
    """``text`` in the visitor's language, with ``values`` filled in (``str.format``)."""
    out = ZH.get(text, text) if lang() == "zh" else text
    return out.format(**values) if values else out


def translated(labels: Mapping[Any, str]) -> Callable[[Any], str]:
    """A ``format_func`` showing ``labels[option]`` in the visitor's language. Not for a widget with
    Streamlit's ``bind="query-params"``: that writes the shown label into the URL, and a link must
    mean the same in either language (ui/share.py writes option names instead)."""
    zh = lang() == "zh"  # fixed now: Streamlit may call format_func outside the script's run
    return lambda option: ZH.get(labels[option], labels[option]) if zh else labels[option]


def language_picker(where=st.sidebar):
    """The language switch. The URL decides on a session's first run (an unknown ``lang`` falls
    back to English with a warning); afterwards the switch does, and the URL follows it, so a
    copied link opens in the same language."""
    url = st.query_params.get(KEY)
    if KEY not in st.session_state:
        st.session_state[KEY] = url if url in LANGUAGES else DEFAULT
        if url is not None and url not in LANGUAGES:
            shown = re.sub(r"[^\w-]", "?", url[:24])  # the link's text, never its markup
            st.warning(
                f"Unknown language `lang={shown}` in the link: showing English. Use `lang=en` or `lang=zh`.  \n"
                f"链接中的语言参数 `lang={shown}` 无效，已显示英文。请使用 `lang=en` 或 `lang=zh`。",
                icon=":material/translate:",
            )
    where.radio(
        "Language · 语言",
        list(LANGUAGES),
        format_func=LANGUAGES.get,
        horizontal=True,
        key=KEY,
        on_change=_relabel,
        persist_state="session",  # else a page change (st.switch_page, a tour button) resets it
    )
    if lang() == DEFAULT:
        st.query_params.pop(KEY, None)  # a clean URL for the default
    else:
        st.query_params[KEY] = lang()


def _relabel():
    """After a switch, give every choice widget its value again. A selectbox's browser side holds
    the *label* of its choice; without this it would send the old language's label on the next
    run, match no option, and fall back to its default. Set anew, the value goes out with its
    label in the new language. (Choices are str or lists of str; other state is left alone.)"""
    for key, value in list(st.session_state.items()):
        is_choice = isinstance(value, str) or (
            isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value)
        )
        if key != KEY and is_choice:
            st.session_state[key] = value


def _read(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def merged(tables: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """One English -> Chinese table from several, by where each comes from; a text translated in
    two places is refused (the two could differ, and only one would show)."""
    out: dict[str, str] = {}
    for where, table in tables.items():
        if twice := sorted(set(out) & set(table)):
            raise ValueError(f"{where} translates texts translated elsewhere too: {twice[:3]}")
        out.update(table)
    return out


# Each page's data file (app_pages/<page>.toml), by page name: its menu record (``[page]``, read by
# ui/nav.py) and the Chinese of the texts only that page shows (``[zh]``).
PAGE_FILES = {f.stem: _read(f) for f in sorted((Path(__file__).parents[1] / "app_pages").glob("*.toml"))}

# The names of the norms and the tasks, from their records (core/settings/norm_specs.py,
# core/settings/tasks.py): a new norm or task brings its own translation.
RECORDS = (
    {rec.labels["en"]: rec.labels["zh"] for rec in [*NORM_SPECS.values(), *TASKS.values()]}
    | {spec.short["en"]: spec.short["zh"] for spec in NORM_SPECS.values()}
    | {task.names["en"]: task.names["zh"] for task in TASKS.values()}
    | {task.about["en"]: task.about["zh"] for task in TASKS.values()}
)

# English text -> Chinese (Simplified): data, in ui/zh.toml (what ui/, the charts or several pages
# show) and in the pages' files, and the records' names (tests/test_i18n.py checks that every shown
# text is in one of them, once, and nothing else).
ZH: dict[str, str] = merged(
    {"ui/zh.toml": _read(Path(__file__).with_name("zh.toml"))}
    | {f"app_pages/{name}.toml": data.get("zh", {}) for name, data in PAGE_FILES.items()}
    | {"the norm and task records": RECORDS}
)
