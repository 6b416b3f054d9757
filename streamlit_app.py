"""Entry point: `streamlit run streamlit_app.py`. Lists the pages (in app_pages/, not pages/: a pages/
folder next to this file switches Streamlit to its legacy multipage mode for a fresh server's first
visitor, whose deep link would then run the page without this script).

Everything up to the page's heading and introduction is drawn without torch (ui.nav, ui.i18n and
ui.present import no engine), so the first visitor of a fresh server reads the page while the
engine loads, under a spinner that says so; later visits find it loaded.
"""

import sys

import streamlit as st

from ui import i18n, nav, present

st.set_page_config(page_title="BatchNorm vs LayerNorm, live", page_icon=":material/tune:", layout="wide")
i18n.language_picker(st.sidebar)  # first: every text below is in the picked language
present.presenter_view()  # ?present=1: larger text, settings folded, sidebar closed
pages = {p.path: st.Page(p.path, title=i18n.t(p.title), icon=p.icon, default=(i == 0)) for i, p in enumerate(nav.PAGES)}
page = st.navigation(list(pages.values()))
info = next(p for p in nav.PAGES if pages[p.path] is page)
info.header()
if "ui.engine" not in sys.modules:  # a fresh server: torch, pandas and altair take seconds to import
    with st.spinner(
        i18n.t("Loading the training engine (PyTorch)… the first visit to a fresh server takes a few seconds.")
    ):
        from ui import engine  # noqa: F401
from ui import show  # noqa: E402

show.norm_legend(st.sidebar)
page.run()
