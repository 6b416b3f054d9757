"""The app's pages, in menu order: one record per page, which everything else reads (the entry
script's menu and headings, the overview's list, the tests).

A page is its script ``app_pages/<page>.py`` and its data file ``app_pages/<page>.toml``: the
``[page]`` table is its record here (menu place, title, icon, blurb, introduction), and the ``[zh]``
table the Chinese of the texts only that page shows (ui/i18n.py). Nothing here imports torch: the
entry script draws a page's heading and its introduction from these records before the engine has
loaded, so the first visitor of a fresh server sees them at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from ui.i18n import PAGE_FILES, t


@dataclass(frozen=True)
class PageInfo:
    path: str
    title: str  # in the menu
    icon: str
    blurb: str  # what the experiment shows, in one line (the overview's list)
    intro: str  # under the page's heading: what the page does (markdown)
    heading: str = ""  # the page's heading, if not its title
    long_intro: bool = False  # the introduction is text at length (markdown), not a caption
    charts: int = 0  # charts it draws once it shows results (after its default run, if it has a Run form)

    @property
    def name(self) -> str:
        """The page's name in URLs and keys: its file's stem (``live`` for app_pages/live.py)."""
        return Path(self.path).stem

    def header(self):
        """The page's heading and introduction: text only, drawn before the engine is needed."""
        st.title(t(self.heading or self.title))
        if self.long_intro:  # the overview: the principle, at length
            st.markdown(t(self.intro))
        else:
            st.caption(t(self.intro))


def pages(files: dict[str, dict]) -> list[PageInfo]:
    """The menu from the pages' data files (by page name), in the order their ``[page]`` tables give;
    two pages in one place are refused."""
    records = {name: data["page"] for name, data in files.items()}
    orders = sorted(r["order"] for r in records.values())
    if orders != sorted(set(orders)):
        raise ValueError(f"two pages share a place in the menu: {orders}")
    return [
        PageInfo(f"app_pages/{name}.py", **{k: v for k, v in record.items() if k != "order"})
        for name, record in sorted(records.items(), key=lambda item: item[1]["order"])
    ]


PAGES = pages(PAGE_FILES)
