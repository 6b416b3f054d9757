"""Overview: what BN and LN pool, on a real batch, and where each experiment is."""

import streamlit as st

from core import charts
from core.analysis import pooling_cells
from core.config import RunConfig
from core.data import eval_set
from ui import nav, show

PICTURE_CFG = RunConfig(min_len=3, max_len=12)  # short sentences, so the whole batch fits on screen
PICTURE_ROWS = 5
CHANNELS = 4  # channels drawn; the model has d_model of them

INTRO = """
A norm layer subtracts a mean and divides by a standard deviation. The whole question is
**which values share that mean and variance**. Take the activations of a batch as a
B × T × C block: B sequences, T positions (short sentences padded to the longest), C channels.

* **BatchNorm** pools **one channel** over **every sequence and every position** of the batch, pads included.
* **Masked BatchNorm** does the same over the **real tokens only**.
* **LayerNorm** pools **all channels of one token**, and nothing else.

The principle: *only comparable values should share statistics.* In images, one channel at
every pixel of every image measures the same kind of thing, and BatchNorm works. In padded
text, one channel at a sentence start, a frequent word, a rare word and a pad are not alike;
and a batch of a few sentences is a noisy sample of them. LayerNorm sidesteps both.
"""


def picture():
    st.subheader("Who shares statistics with whom")
    batch = eval_set(PICTURE_CFG).select(list(range(PICTURE_ROWS)))
    B, T = batch.tokens.shape
    cols = st.columns(3)
    seq = cols[0].slider("sequence", 0, B - 1, 0, key="overview.seq")
    pos = cols[1].slider("position", 0, T - 1, 2, key="overview.pos")
    channel = cols[2].slider("channel", 0, CHANNELS - 1, 1, key="overview.channel")
    cells = pooling_cells(batch, (seq, pos, channel), CHANNELS)
    show.chart(
        charts.pooling_chart(cells),
        cells,
        f"A real batch of {B} held-out sentences, padded to {T} positions (× = pad); {CHANNELS} of the model's "
        f"{PICTURE_CFG.d_model} channels drawn. Move the sliders: BatchNorm's pool always spans the whole batch, "
        "pads included; LayerNorm's never leaves the token.",
        "overview_pooling",
    )
    n_real, n_all, d = int(batch.valid.sum()), B * T, PICTURE_CFG.d_model
    m = st.columns(3)
    m[0].metric("BatchNorm pools", f"{n_all} values", help="One channel, every position of the batch")
    m[0].caption(f"{n_all - n_real} of them pads ({(n_all - n_real) / n_all:.0%})")
    m[1].metric("Masked BatchNorm pools", f"{n_real} values", help="One channel, the real tokens of the batch")
    m[1].caption("pads left out; still depends on the other sentences")
    m[2].metric("LayerNorm pools", f"{d} values", help="Every channel of the picked token")
    m[2].caption("one token; no other sentence, no pad, no batch size")


def links():
    st.subheader("The experiments")
    for page in nav.PAGES[1:]:
        st.page_link(page.path, label=page.title, icon=page.icon)
        st.caption(page.blurb)


def main():
    st.title("BatchNorm vs LayerNorm in Transformers")
    st.markdown(INTRO)
    picture()
    links()


main()
