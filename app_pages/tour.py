"""Guided tour: the story in order, one click per scenario (core/studies/presets.py)."""

import streamlit as st

from core.studies.presets import PRESETS
from ui import nav, share, tour
from ui.i18n import t

PAGE = "tour"
TITLES = {p.path: p.title for p in nav.PAGES}


def main():
    share.settings(PAGE, [])
    tour.warm()
    for i, preset in enumerate(PRESETS, 1):
        with st.container(border=True, key=f"tour.{preset.id}"):
            text, link = st.columns([5, 1], vertical_alignment="center")
            page_title = t(TITLES[tour.page_path(preset.page)])
            text.markdown(f"**{i}. {t(preset.title)}** · _{page_title}_  \n{t(preset.look)}")
            # A link, not a button: one script run instead of two (0.3-0.5 s sooner), and it can be
            # opened in a new tab or copied.
            link.page_link(
                tour.page_path(preset.page),
                label=t("Open"),
                icon=":material/arrow_forward:",
                query_params={share.SCENARIO: preset.id},
            )


main()
