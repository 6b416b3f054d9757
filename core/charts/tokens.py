"""What a norm pools: token grids (sequence x position), the variance split, who shares statistics
with whom, how alike the pooled values are by grouping, and one channel position by position."""

from __future__ import annotations

from collections.abc import Mapping

import altair as alt
import pandas as pd

from core.charts.base import NORM_COLORS, STAGE_LABELS, _label_order, labelled, norm_color
from core.settings.config import NORM_LABELS, NORMS


# ---------------------------------------------------------------- token grids (sequence x position)
def _cell_size(n_pos: int, n_seq: int, width: int = 360, height: int = 160) -> int:
    """Cell size in pixels so that a grid of n_pos x n_seq fits about width x height."""
    return max(4, min(14, width // max(n_pos, 1), height // max(n_seq, 1)))  # 4 px: still a visible cell


def token_grid(
    df: pd.DataFrame,
    value: str,
    *,
    value_title: str,
    title: str,
    split: str | None = None,
    diverging: bool = False,
) -> alt.TopLevelMixin:
    """Heatmaps of ``value`` per token: sequence in the batch down, position across, one row of
    panels per norm. ``split`` (e.g. "stage": before/after the norm) puts one panel per value side
    by side, each with its own colour scale, so a small input spread is not washed out by a large
    output spread. Pads carry a small white x. Columns: seq, pos, pad, norm, ``value`` [, split]."""
    data = labelled(df)
    if split is None:
        return _token_panels(data, value, value_title, diverging).properties(title=title)
    parts = list(dict.fromkeys(data[split]))
    panels = [
        _token_panels(
            data[data[split] == part], value, value_title, diverging, row_names=(i == 0), width=240
        ).properties(title=str(part))
        for i, part in enumerate(parts)
    ]
    return alt.hconcat(*panels, title=title).resolve_scale(color="independent")


def _token_panels(
    data: pd.DataFrame, value: str, value_title: str, diverging: bool, row_names: bool = True, width: int = 360
) -> alt.FacetChart:
    cell = _cell_size(data["pos"].nunique(), data["seq"].nunique(), width=width)
    scale = alt.Scale(scheme="blueorange", domainMid=0) if diverging else alt.Scale(scheme="viridis")
    positions = sorted(data["pos"].unique())
    base = alt.Chart().encode(
        x=alt.X("pos:O", title="position", axis=alt.Axis(values=positions[::4], labelAngle=0)),
        y=alt.Y("seq:O", title="sequence", axis=alt.Axis(values=[])),
    )
    rect = base.mark_rect().encode(
        color=alt.Color(
            f"{value}:Q", title=value_title, scale=scale, legend=alt.Legend(orient="right", gradientLength=120)
        ),
        tooltip=[
            alt.Tooltip("label:N", title="norm"),
            "seq:O",
            "pos:O",
            "pad:N",
            alt.Tooltip(f"{value}:Q", title=value_title, format=".3g"),
        ],
    )
    pads = base.transform_filter("datum.pad").mark_text(text="×", color="white", fontSize=max(6, cell - 3))
    chart = alt.layer(rect, pads, data=data).properties(width=alt.Step(cell), height=alt.Step(cell))
    header = alt.Header(labelAngle=0, labelAlign="left", labelLimit=200, labelFontSize=12, labels=row_names)
    return chart.facet(row=alt.Row("label:N", title=None, header=header, sort=_label_order(data)), spacing=8)


def variance_split_chart(split: pd.DataFrame) -> alt.FacetChart:
    """Share of each channel's variance (over real tokens) that lies between sequences rather
    than within them, per norm, before and after the norm. Columns: norm, stage, between_share."""
    data = labelled(split).assign(stage=split["stage"].map(STAGE_LABELS), pct=split["between_share"] * 100)
    bars = (
        alt.Chart()
        .mark_bar()
        .encode(
            x=alt.X("pct:Q", title="between-sequence share of the variance (%)"),
            y=alt.Y("label:N", title=None, sort=_label_order(data), axis=alt.Axis(labelLimit=320)),
            color=norm_color(data["norm"].unique(), legend=False),
            tooltip=[
                alt.Tooltip("label:N", title="norm"),
                "stage:N",
                alt.Tooltip("pct:Q", format=".1f"),
                alt.Tooltip("within:Q", format=".3g"),
                alt.Tooltip("between:Q", format=".3g"),
            ],
        )
        .properties(width=420)
    )
    return alt.layer(bars, data=data).facet(
        row=alt.Row(
            "stage:N",
            title=None,
            sort=list(STAGE_LABELS.values()),
            header=alt.Header(labelAngle=0, labelAlign="left", labelLimit=200, labelFontSize=12),
        ),
        title="Variance between vs within sequences (real tokens)",
    )


GROUPING_LABELS = {
    "position": "position in the sentence",
    "position_no_bos": "position, BOS left out",
    "sentence": "sentence",
    "token": "token identity",
    "pad": "pad or real token",
}


def comparability_chart(table: pd.DataFrame, task_names: Mapping[str, str]) -> alt.FacetChart:
    """Per task (rows) and grouping (panels), the share of each channel's variance at the norm
    layers' inputs that lies between the groups (mean over layers, bar) against the share the same
    values give shuffled among the groups (chance, tick). ``task_names``: task key -> shown name.
    Columns: task, layer, grouping, share, chance (core.studies.analysis.comparability)."""
    means = table.groupby(["task", "grouping"], sort=False)[["share", "chance"]].mean().reset_index()
    means = means.assign(name=means["task"].map(task_names), series=means["grouping"].map(GROUPING_LABELS),
                         pct=100 * means["share"], chance_pct=100 * means["chance"],
                         ratio=means["share"] / means["chance"])  # fmt: skip
    order = list(dict.fromkeys(means["name"]))
    y = alt.Y("name:N", title=None, sort=order, axis=alt.Axis(labelLimit=200))
    tooltip = [
        alt.Tooltip("name:N", title="task"),
        alt.Tooltip("series:N", title="grouped by"),
        alt.Tooltip("pct:Q", title="between the groups (%)", format=".2f"),
        alt.Tooltip("chance_pct:Q", title="by chance (%)", format=".2f"),
        alt.Tooltip("ratio:Q", title="times chance", format=".1f"),
    ]
    x = alt.X("pct:Q", title="% between groups", scale=alt.Scale(domain=[0, 100]))
    bars = alt.Chart().mark_bar(color="#4c78a8").encode(x=x, y=y, tooltip=tooltip)
    ticks = alt.Chart().mark_tick(color="#e45756", thickness=3, size=20).encode(x="chance_pct:Q", y=y, tooltip=tooltip)
    panels = [GROUPING_LABELS[g] for g in GROUPING_LABELS if g in set(means["grouping"])]
    return (
        alt.layer(bars, ticks, data=means)
        .properties(width=130, height=26 * len(order))
        .facet(
            column=alt.Column("series:N", title=None, sort=panels, header=alt.Header(labelFontSize=11, labelLimit=120)),
            title="How alike are the values one channel of BatchNorm pools?",
        )
    )


POSITION_Y_TITLE = "channel value at the norm's input"
POSITION_SERIES = {"pos": "each position: mean ± sd", "pooled": "all positions pooled: BN's one mean ± σ"}


def position_chart(profile: pd.DataFrame, task_names: Mapping[str, str], layer: str, channel: int) -> alt.FacetChart:
    """One channel at one layer's input, one panel per task: each position's mean ± sd over the
    held-out real tokens (points and bars), against the single mean ± σ of all of them pooled (line
    and band), what a BatchNorm over these tokens normalises every position with.
    Columns: task, layer, channel, pos, mean, sd, count, pooled_mean, pooled_sd."""
    data = profile[(profile["layer"] == layer) & (profile["channel"] == channel)]
    data = data.assign(name=data["task"].map(task_names), lo=data["mean"] - data["sd"], hi=data["mean"] + data["sd"],
                       pooled_lo=data["pooled_mean"] - data["pooled_sd"],
                       pooled_hi=data["pooled_mean"] + data["pooled_sd"],
                       series=POSITION_SERIES["pos"], fill=POSITION_SERIES["pooled"])  # fmt: skip
    order = list(dict.fromkeys(data["name"]))
    colors = alt.Scale(domain=list(POSITION_SERIES.values()), range=["#4c78a8", "#e45756"])
    legend = alt.Legend(orient="bottom", direction="vertical", title=None, labelLimit=320, symbolOpacity=1)
    x = alt.X("pos:Q", title="position in the sentence", axis=alt.Axis(tickMinStep=1))
    tooltip = [
        alt.Tooltip("pos:Q", title="position"),
        alt.Tooltip("mean:Q", title="mean", format=".3f"),
        alt.Tooltip("sd:Q", title="sd", format=".3f"),
        alt.Tooltip("count:Q", title="tokens"),
    ]
    band = (
        alt.Chart()
        .mark_area(opacity=0.15)
        .encode(
            x=x,
            y=alt.Y("pooled_lo:Q", title=POSITION_Y_TITLE),
            y2="pooled_hi:Q",
            color=alt.Color("fill:N", scale=colors, legend=legend),
        )
    )
    line = (
        alt.Chart().mark_line(strokeDash=[6, 3]).encode(x=x, y="pooled_mean:Q", color=alt.Color("fill:N", scale=colors))
    )
    bars = alt.Chart().mark_rule().encode(x=x, y="lo:Q", y2="hi:Q", color=alt.Color("series:N", scale=colors))
    points = (
        alt.Chart()
        .mark_point(filled=True, size=40)
        .encode(x=x, y="mean:Q", color=alt.Color("series:N", scale=colors), tooltip=tooltip)
    )
    return (
        alt.layer(band, line, bars, points, data=data)
        .properties(width=300, height=220)
        .facet(
            column=alt.Column("name:N", title=None, sort=order, header=alt.Header(labelFontSize=12)),
            title="What one channel of BatchNorm pools, position by position",
        )
        .resolve_scale(x="independent", y="independent")
    )


# ---------------------------------------------------------------- overview: who shares statistics
POOL_ROLES = {"picked": "the picked value", "other": "not pooled with it"}


def pooling_chart(cells: pd.DataFrame, cell: int = 14) -> alt.FacetChart:
    """Which values share the picked value's mean and variance, under each norm: a B x T grid per
    channel (columns) and per norm (rows). Pooled cells take the norm's colour, the picked cell is
    black, the rest light grey; pads carry an x. Columns: norm, channel, seq, pos, pad, role, token
    (role: "picked", "pooled" or "other")."""
    data = labelled(cells)
    data = data.assign(
        fill=data["label"].where(data["role"] == "pooled", data["role"].map(POOL_ROLES)),
        channel=data["channel"].map("channel {}".format),
    )
    norms = [n for n in NORMS if n in set(cells["norm"])]
    domain = [NORM_LABELS[n] for n in norms] + list(POOL_ROLES.values())
    colors = [NORM_COLORS[n] for n in norms] + ["#111111", "#e8e8e8"]
    base = alt.Chart().encode(
        x=alt.X("pos:O", title="position", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("seq:O", title="sequence"),
    )
    rect = base.mark_rect(stroke="white", strokeWidth=1).encode(
        color=alt.Color(
            "fill:N",
            title=None,
            scale=alt.Scale(domain=domain, range=colors),
            legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=320),
        ),
        tooltip=["seq:O", "pos:O", "channel:N", "token:N", "pad:N", alt.Tooltip("fill:N", title="role")],
    )
    pads = base.transform_filter("datum.pad").mark_text(text="×", fontSize=10, color="#555")
    chart = alt.layer(rect, pads, data=data).properties(width=alt.Step(cell), height=alt.Step(cell))
    return chart.facet(
        row=alt.Row(
            "label:N",
            title=None,
            sort=_label_order(data),
            header=alt.Header(labelAngle=0, labelAlign="left", labelLimit=200, labelFontSize=12),
        ),
        column=alt.Column("channel:N", title=None, header=alt.Header(labelFontSize=12)),
        spacing=10,
        title="Values that share the picked value's mean and variance",
    )
