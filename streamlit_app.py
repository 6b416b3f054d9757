"""Entry point: `streamlit run streamlit_app.py`. Lists the pages (in app_pages/, not pages/: a pages/
folder next to this file switches Streamlit to its legacy multipage mode for a fresh server's first
visitor, whose deep link would then run the page without this script)."""

import streamlit as st

from ui import nav, show

st.set_page_config(page_title="BatchNorm vs LayerNorm, live", page_icon=":material/tune:", layout="wide")
page = st.navigation([st.Page(p.path, title=p.title, icon=p.icon, default=(i == 0)) for i, p in enumerate(nav.PAGES)])
show.norm_legend(st.sidebar)
page.run()
