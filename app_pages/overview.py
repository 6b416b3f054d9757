"""Overview: what BN and LN pool, on a real batch, and where each experiment is."""

import pandas as pd
import streamlit as st

from core import charts, precompute
from core import params as P
from core.analysis import pooling_cells
from core.config import RunConfig
from core.data import Batch, eval_set
from core.tasks import TASKS
from ui import controls, nav, share, show
from ui.i18n import t

PICTURE_CFG = RunConfig(min_len=3, max_len=12)  # short sentences, so the whole batch fits on screen
PICTURE_ROWS = 5
CHANNELS = 4  # channels drawn; the model has d_model of them
PICKED = {"seq": 0, "pos": 2, "channel": 1}  # the cell picked at first


def params(batch: Batch) -> list[P.Param]:
    B, T = batch.tokens.shape
    bounds = {"seq": B - 1, "pos": T - 1, "channel": CHANNELS - 1}
    return [P.integer(name, 0, bounds[name], value) for name, value in PICKED.items()]


def picture(batch: Batch):
    st.subheader(t("Who shares statistics with whom"))
    B, T = batch.tokens.shape
    cols = st.columns(3)
    keep = controls.PERSIST
    seq = cols[0].slider(t("sequence"), 0, B - 1, PICKED["seq"], key="overview.seq", **keep)
    pos = cols[1].slider(t("position"), 0, T - 1, PICKED["pos"], key="overview.pos", **keep)
    channel = cols[2].slider(t("channel"), 0, CHANNELS - 1, PICKED["channel"], key="overview.channel", **keep)
    cells = pooling_cells(batch, (seq, pos, channel), CHANNELS)
    show.chart(
        charts.pooling_chart(cells),
        cells,
        t(
            "A real batch of {B} held-out sentences, padded to {T} positions (× = pad); {channels} of the model's "
            "{d_model} channels drawn. Move the sliders: BatchNorm's pool always spans the whole batch, "
            "pads included; LayerNorm's never leaves the token.",
            B=B,
            T=T,
            channels=CHANNELS,
            d_model=PICTURE_CFG.d_model,
        ),
        "overview_pooling",
    )
    n_real, n_all, d = int(batch.valid.sum()), B * T, PICTURE_CFG.d_model
    m = st.columns(3)
    m[0].metric(t("BatchNorm pools"), t("{n} values", n=n_all), help=t("One channel, every position of the batch"))
    m[0].caption(t("{pads} of them pads ({share:.0%})", pads=n_all - n_real, share=(n_all - n_real) / n_all))
    m[1].metric(
        t("Masked BatchNorm pools"), t("{n} values", n=n_real), help=t("One channel, the real tokens of the batch")
    )
    m[1].caption(t("pads left out; still depends on the other sentences"))
    m[2].metric(t("LayerNorm pools"), t("{n} values", n=d), help=t("Every channel of the picked token"))
    m[2].caption(t("one token; no other sentence, no pad, no batch size"))


def links():
    st.subheader(t("The experiments"))
    for page in nav.PAGES[1:]:
        st.page_link(page.path, label=t(page.title), icon=page.icon)
        st.caption(t(page.blurb))


@st.cache_data(max_entries=2, show_spinner=False)
def _stored_comparability(index_stamp: float) -> pd.DataFrame | None:
    stored = precompute.load(precompute.TABLE_BY_ID["comparability"])
    return None if stored is None else stored.frames["comparability"]


def comparability():
    """The principle as a number, per task, from the stored table (python -m core.precompute)."""
    path = precompute.ROOT / precompute.INDEX
    table = _stored_comparability(path.stat().st_mtime if path.exists() else 0.0)
    if table is None:
        st.info(t("The comparability of the tasks is not stored: run python -m core.precompute."))
        return
    names = {task: t(TASKS[task].names["en"]) for task in table["task"].unique()}
    show.chart(
        charts.comparability_chart(table, names),
        table,
        t(
            "Measured at every norm layer's input of each task's trained LayerNorm model, over held-out real tokens "
            "(bar; tick: the same tokens shuffled among the sentences). Small for every task: the tokens of one "
            "sentence are not more alike than chance. What BatchNorm pools badly in text is not sentences but "
            "pads, a few sentences per batch, and later positions (see Train vs inference)."
        ),
        "overview_comparability",
    )


def main():
    batch = eval_set(PICTURE_CFG).select(list(range(PICTURE_ROWS)))
    share.settings("overview", params(batch))
    comparability()
    picture(batch)
    links()


main()
