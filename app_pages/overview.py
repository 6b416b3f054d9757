"""Overview: what BN and LN pool, on a real batch, and where each experiment is."""

import streamlit as st

from core import charts
from core import params as P
from core.analysis import pooling_cells
from core.config import RunConfig
from core.data import Batch, eval_set
from ui import controls, nav, share, show
from ui.i18n import lang, t

PICTURE_CFG = RunConfig(min_len=3, max_len=12)  # short sentences, so the whole batch fits on screen
PICTURE_ROWS = 5
CHANNELS = 4  # channels drawn; the model has d_model of them
PICKED = {"seq": 0, "pos": 2, "channel": 1}  # the cell picked at first


def params(batch: Batch) -> list[P.Param]:
    B, T = batch.tokens.shape
    bounds = {"seq": B - 1, "pos": T - 1, "channel": CHANNELS - 1}
    return [P.integer(name, 0, bounds[name], value) for name, value in PICKED.items()]


INTRO = {  # long enough to keep both languages side by side here
    "en": """
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
""",
    "zh": """
归一化层减去一个均值、除以一个标准差。关键问题只有一个：**哪些值共享这个均值和方差**。把一个 batch 的激活看作 B × T × C 的立方块：B 个序列，T 个位置（短句补 pad 到最长的句子），C 个通道。

* **BatchNorm** 对**一个通道**，汇总 batch 中**每个序列的每个位置**，包括 pad。
* **Masked BatchNorm** 做同样的事，但**只汇总真实 token**。
* **LayerNorm** 汇总**一个 token 的全部通道**，别的都不管。

原则：*只有可比的值才应该共享统计量。* 在图像中，同一通道在每张图的每个像素上度量的是同一类东西，所以 BatchNorm 有效。在补了 pad 的文本中，同一通道在句首、高频词、低频词和 pad 上的取值并不相似；而几个句子组成的 batch 只是它们的一个嘈杂样本。LayerNorm 同时避开了这两个问题。
""",
}


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


def main():
    st.title(t("BatchNorm vs LayerNorm in Transformers"))
    batch = eval_set(PICTURE_CFG).select(list(range(PICTURE_ROWS)))
    share.settings("overview", params(batch))
    st.markdown(INTRO[lang()])
    picture(batch)
    links()


main()
