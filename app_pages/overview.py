"""Overview: how alike the values are that BatchNorm pools (by position, sentence, token, pads), what
one channel pools position by position, what BN and LN pool on a real batch, and the experiments."""

import pandas as pd
import streamlit as st

from core import charts, precompute
from core.engine.data import Batch, eval_set
from core.settings import params as P
from core.settings.config import RunConfig
from core.settings.tasks import TASKS
from core.studies.analysis import pooling_cells
from ui import controls, nav, share, show
from ui.i18n import t

PICTURE_CFG = RunConfig(min_len=3, max_len=12)  # short sentences, so the whole batch fits on screen
PICTURE_ROWS = 5
CHANNELS = 4  # channels drawn; the model has d_model of them
PICKED = {"seq": 0, "pos": 2, "channel": 1}  # the cell picked at first
POOL_TASKS = ("control", "tangshi")  # the picture's tasks at first: positions alike, and far apart


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
def _stored(index_stamp: float) -> dict[str, pd.DataFrame] | None:
    stored = precompute.load(precompute.TABLE_BY_ID["comparability"])
    return None if stored is None else stored.frames


def stored() -> dict[str, pd.DataFrame] | None:
    """The overview's stored tables (python -m core.precompute), re-read when the index changes."""
    path = precompute.ROOT / precompute.INDEX
    return _stored(path.stat().st_mtime if path.exists() else 0.0)


def task_names(tasks) -> dict[str, str]:
    return {task: t(TASKS[task].names["en"]) for task in tasks}


def times_chance(table: pd.DataFrame, task: str, grouping: str) -> float:
    rows = table[(table["task"] == task) & (table["grouping"] == grouping)]
    return float(rows["share"].mean() / rows["chance"].mean())


def share_pct(table: pd.DataFrame, task: str, grouping: str) -> float:
    rows = table[(table["task"] == task) & (table["grouping"] == grouping)]
    return float(100 * rows["share"].mean())


def comparability(table: pd.DataFrame):
    """The principle as numbers, per task and grouping, from the stored table."""
    show.chart(
        charts.comparability_chart(table, task_names(table["task"].unique())),
        table,
        t(
            "Measured at every norm layer's input of each task's trained LayerNorm model, over held-out real tokens (bar: the share of a channel's variance between the groups, mean over layers; tick: the same values shuffled among the groups). Grouped by position, the share is {poems:.0f}× chance on the Tang poems ({poems_pct:.0f}% of the variance), {synthetic:.0f}× on the synthetic text and {control:.0f}× on the control task ({control_pct:.0f}%), where BatchNorm matches LayerNorm. On text one channel lives in different ranges at different positions, and BatchNorm pools them all. Sentences come out near or below chance because every sentence holds all the positions; token identity is far above chance on the control task too, so it does not set the tasks apart.",
            poems=times_chance(table, "tangshi", "position"),
            synthetic=times_chance(table, "text", "position"),
            control=times_chance(table, "control", "position"),
            poems_pct=share_pct(table, "tangshi", "position"),
            control_pct=share_pct(table, "control", "position"),
        ),
        "overview_comparability",
    )


def pool_params(profile: pd.DataFrame) -> list[P.Param]:
    tasks = tuple(dict.fromkeys(profile["task"]))
    layers = tuple(dict.fromkeys(profile["layer"]))
    channels = int(profile["channel"].max())
    default_tasks = tuple(task for task in POOL_TASKS if task in tasks) or tasks[:1]
    return [
        P.choices("pool_tasks", tasks, default_tasks),
        P.choice("pool_layer", layers, layers[0]),
        P.integer("pool_channel", 0, channels, 0),
    ]


def what_batchnorm_pools(profile: pd.DataFrame):
    """One channel's distribution at each position, against BatchNorm's single mean and σ."""
    st.subheader(t("What one channel of BatchNorm pools"))
    tasks = list(dict.fromkeys(profile["task"]))
    layers = list(dict.fromkeys(profile["layer"]))
    names = task_names(tasks)
    cols = st.columns([3, 2, 2])
    keep = controls.PERSIST
    picked = cols[0].multiselect(
        t("tasks"), tasks, default=[x for x in POOL_TASKS if x in tasks], format_func=names.get,
        key="overview.pool_tasks", **keep,
    )  # fmt: skip
    layer = cols[1].selectbox(t("norm layer"), layers, key="overview.pool_layer", **keep)
    channel = cols[2].slider(t("channel"), 0, int(profile["channel"].max()), 0, key="overview.pool_channel", **keep)
    if not picked:
        st.info(t("Pick at least one task."))
        return
    data = profile[profile["task"].isin(picked)]
    show.chart(
        charts.position_chart(data, names, layer, channel),
        data[(data["layer"] == layer) & (data["channel"] == channel)],
        t(
            "Each position's values of one channel at the norm's input over the held-out real tokens of the "
            "trained LayerNorm model (dot and bar: mean ± sd), against the one mean and σ of all of them pooled "
            "(dashed line and band), which a BatchNorm over these tokens would normalise every position with. "
            "On the Tang poems the positions sit in ranges of their own; on the control task they overlap."
        ),
        "overview_positions",
    )


def main():
    batch = eval_set(PICTURE_CFG).select(list(range(PICTURE_ROWS)))
    frames = stored()
    share.settings("overview", params(batch) + (pool_params(frames["positions"]) if frames else []))
    if frames is None:
        st.info(t("The comparability of the tasks is not stored: run python -m core.precompute."))
    else:
        comparability(frames["comparability"])
        what_batchnorm_pools(frames["positions"])
    picture(batch)
    links()


main()
