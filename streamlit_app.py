"""Entry point: `streamlit run streamlit_app.py`. Lists the pages (in app_pages/, not pages/: a pages/
folder next to this file switches Streamlit to its legacy multipage mode for a fresh server's first
visitor, whose deep link would then run the page without this script)."""

import streamlit as st

from ui import i18n, nav, share, show

st.set_page_config(page_title="BatchNorm vs LayerNorm, live", page_icon=":material/tune:", layout="wide")
i18n.language_picker(st.sidebar)  # first: every text below is in the picked language
share.presenter_view()  # ?present=1: larger text, settings folded, sidebar closed
pages = [st.Page(p.path, title=i18n.t(p.title), icon=p.icon, default=(i == 0)) for i, p in enumerate(nav.PAGES)]
page = st.navigation(pages)
show.norm_legend(st.sidebar)
page.run()
