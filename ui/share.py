"""Every setting in the URL: a page's settings read from its link, checked, applied to its widgets,
and written back as they change; the share link.

A page declares its settings as ``core.settings.params.Param``s (the form's from ``controls.form_params``,
the others next to their widgets) and calls ``settings(page, params)`` once, before drawing any
widget. The widgets' values are already in session state when a script run starts (the click
that caused the run has been applied), so writing the address bar there is up to date.

The URL carries the program's option names (``norms=bn,ln``), not the labels on screen, so a
link works in any language; the address bar holds only what differs from the page's defaults,
while the share link spells out every setting, seed included, so it means the same even if a
default changes later.

Why not Streamlit's own ``bind="query-params"``: in 1.67 it writes the *displayed label* of a
choice (``?live.task=control%3A+fixed+length%2C+no+pads+%28BN-friendly%29``), so a link breaks
when the labels are translated, and it drops a bad or out-of-range value (``?live.batch_size=999``,
``?live.lr=abc``) without a word, leaving the visitor to wonder why the link did not work.
"""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from core.settings import params as P
from core.settings.params import Param
from ui import tour
from ui.i18n import t
from ui.present import PRESENT, presenting

SCENARIO = "scenario"  # a guided-tour scenario (ui/tour.py)
LANG = "lang"  # the language switch (ui/i18n.py)
GLOBAL = (PRESENT.name, SCENARIO, LANG)  # not a page's settings: kept across pages, never "unknown"


def _state(page: str, what: str) -> str:
    return f"_url.{page}.{what}"  # this module's own session keys, apart from the widgets'


def values(page: str) -> dict:
    """The page's current settings by URL name: the widgets' values, or the defaults of widgets
    not drawn yet."""
    return {
        p.name: st.session_state.get(f"{page}.{p.name}", p.default) for p in st.session_state[_state(page, "params")]
    }


def apply(page: str, settings: dict):
    """Give the page's widgets these values (URL name -> value); only before they are drawn."""
    for name, value in settings.items():
        st.session_state[f"{page}.{name}"] = value


def settings(page: str, params: list[Param]):
    """The page's settings and the URL, once per script run, before the page draws a widget:

    * a newly opened link (a URL this session did not write) sets the widgets; each parameter
      that cannot be used gets a warning naming it and what it allows, and its widget keeps the
      default (the warnings stay until Run is pressed);
    * ``scenario=<id>`` first sets the page to that scenario of the guided tour (ui/tour.py);
    * the address bar is rewritten from the widgets; the sidebar gets the share link."""
    st.session_state[_state(page, "params")] = params
    query = st.query_params.to_dict()
    if query != st.session_state.get(_state(page, "published")):
        problems = []
        if SCENARIO in query:
            given, problem = tour.arrive(page, query.pop(SCENARIO), params)
            apply(page, given)
            problems += [problem] if problem else []
        given, bad = P.read(query, params, ignore=GLOBAL)
        apply(page, given)
        st.session_state[_state(page, "problems")] = problems + bad
    elif st.session_state.get(f"{page}.run"):  # Run pressed: the settings are the visitor's own now
        st.session_state.pop(_state(page, "problems"), None)
    for p in st.session_state.get(_state(page, "problems"), []):
        st.warning(t("Link setting ignored: {problem}.", problem=p.message), icon=":material/link_off:")
    tour.banner(page, values(page), params)
    publish(page)
    share_button(page)


def query(page: str, full: bool = False) -> dict[str, str]:
    """The page's URL parameters now: its settings (all, or those off their defaults), then the
    active scenario, the presenter view and the language."""
    params = st.session_state[_state(page, "params")]
    out = P.write(values(page), params, full=full)
    if scenario := tour.active(page, values(page), params):
        out[SCENARIO] = scenario
    if presenting():
        out[PRESENT.name] = "1"
    if LANG in st.query_params:
        out[LANG] = st.query_params[LANG]
    return out


def publish(page: str):
    """The address bar from the page's settings; parameters that could not be used leave it."""
    wanted = query(page)
    if wanted != st.query_params.to_dict():
        st.query_params.from_dict(wanted)
    st.session_state[_state(page, "published")] = wanted


def link(page: str) -> str:
    """The full link to the page as it is now, every setting spelled out."""
    base = st.context.url or f"/{page}"  # no browser, no URL (AppTest): a link relative to the server
    return f"{base}?{urlencode(query(page, full=True), safe=',')}"


def share_button(page: str):
    """A popover in the sidebar with the page's full link in a code box (its button copies it)."""
    with st.sidebar.popover(t("Share link"), icon=":material/share:", width="stretch"):
        st.caption(
            t(
                "This page with every setting, seed included: opened, it shows the same settings, and Run gives "
                "the same numbers."
            )
        )
        st.code(link(page), language=None, wrap_lines=True)
