"""The presenter view, for a projector: larger text, the settings folded into an expander, the
sidebar closed. On every page, in links as ``?present=1``. Light on purpose (no torch, no
pandas): the entry script applies it before a page's heading is drawn."""

from __future__ import annotations

import streamlit as st

from core.settings import params as P
from ui.i18n import t

PRESENT = P.flag("present", False)  # the session key and the URL parameter

# Presenter view: larger type everywhere (Streamlit sizes in rem), charts' text a little larger.
PRESENTER_CSS = """
<style>
html { font-size: 125%; }
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; max-width: 100%; }
[data-testid="stVegaLiteChart"] svg text { font-size: 13px; }
</style>
"""


def presenting() -> bool:
    return bool(st.session_state.get(PRESENT.name, False))


def presenter_view():
    """The sidebar switch for the presenter view, and its style when on; call before the pages
    run. ``?present=1`` in a newly opened link turns it on, ``present=0`` off."""
    raw = st.query_params.get(PRESENT.name)
    if raw is not None and raw != st.session_state.get("_url.present.seen"):
        st.session_state["_url.present.seen"] = raw
        try:
            st.session_state[PRESENT.name] = PRESENT.decode(raw)
        except ValueError:
            problem = f"`present={raw}` is not allowed: `present` takes {PRESENT.allowed}"
            st.warning(t("Link setting ignored: {problem}.", problem=problem))
    st.sidebar.toggle(
        t("Presenter view"),
        key=PRESENT.name,
        help=t("Larger text, the settings folded away, the sidebar closed: for a projector. In a link: ?present=1"),
    )
    if presenting() and not st.session_state.get("_url.present.collapsed"):
        st.set_page_config(initial_sidebar_state="collapsed")  # once: the presenter may open it again
    st.session_state["_url.present.collapsed"] = presenting()
    if presenting():
        st.html(PRESENTER_CSS)
    return presenting()
