"""Sweeps: mean and band over seeds against batch size or length setting, and the batch-dependence
probes of a sweep's runs."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

from core.charts.base import FIT_WIDTH, HELD_OUT_TITLE, _band_tooltip, _label_order, labelled, norm_color


# ---------------------------------------------------------------- sweeps: mean and band over seeds
def seed_band(summary: pd.DataFrame, x: str, y: str, keys: Sequence[str] = ()) -> pd.DataFrame:
    """Mean, min and max of ``y`` over seeds for each norm and point (``keys``, default [x]);
    ``x`` is averaged within the point (e.g. the measured pad fraction of a length setting)."""
    keys = list(keys) or [x]
    grouped = summary.groupby(["norm", *keys], sort=True)
    out = grouped[y].agg(mean="mean", lo="min", hi="max", seeds="count").reset_index()
    if x not in keys:
        out[x] = grouped[x].mean().to_numpy()
    return labelled(out)


def gap_to(summary: pd.DataFrame, y: str = "final_eval_loss", ref: str = "ln") -> pd.DataFrame:
    """Each non-``ref`` row with ``gap`` = its ``y`` minus ``ref``'s ``y`` in the same paired run
    (same config: batch size, seed, lengths, batching), so seed-to-seed noise cancels."""
    ref_y = summary[summary["norm"] == ref].set_index("config_id")[y]
    rows = summary[summary["norm"] != ref]
    return rows.assign(gap=rows[y] - rows["config_id"].map(ref_y))


def sweep_chart(
    summary: pd.DataFrame,
    *,
    x: str,
    x_title: str,
    y: str = "final_eval_loss",
    y_title: str = HELD_OUT_TITLE,
    title: str,
    log2_x: bool = False,
    zero_rule: bool = False,
    column: str | None = None,
) -> alt.LayerChart | alt.FacetChart:
    """Mean over seeds (line and dots) with a min-max band, one colour per norm, against a numeric
    ``x`` (``log2_x`` for batch sizes); ``zero_rule`` draws y = 0 (for gaps); ``column`` makes one
    panel per value of that column (the attention setting: ATTENTION_TITLES names its panels)."""
    band = seed_band(summary, x, y, [x, column] if column else [])
    if column == "attention":
        band = band.assign(attention=band["attention"].map(ATTENTION_TITLES))
    axis = alt.Axis(values=sorted(band[x].unique().tolist())) if log2_x else alt.Undefined
    scale = alt.Scale(type="log", base=2) if log2_x else alt.Undefined
    x_enc = alt.X(f"{x}:Q", title=x_title, scale=scale, axis=axis)
    y_scale = alt.Scale(zero=False)
    base = alt.Chart().encode(x=x_enc, color=norm_color(band["norm"].unique()))
    layers = [
        base.mark_area(opacity=0.18).encode(y=alt.Y("lo:Q", title=y_title, scale=y_scale), y2="hi:Q"),
        base.mark_line(point=True, strokeWidth=2).encode(
            y=alt.Y("mean:Q", title=y_title, scale=y_scale), tooltip=_band_tooltip(x, x_title, y_title)
        ),
    ]
    if zero_rule:
        layers.append(alt.Chart().mark_rule(color="#888", strokeDash=[4, 4]).encode(y=alt.datum(0)))
    if column:
        order = (
            [v for v in ATTENTION_TITLES.values() if v in set(band[column])] if column == "attention" else alt.Undefined
        )
        return (
            alt.layer(*layers, data=band)
            .properties(width=300, height=240)
            .facet(
                column=alt.Column(f"{column}:N", title=None, sort=order, header=alt.Header(labelFontSize=12)),
                title=title,
            )
            .resolve_scale(y="independent")  # a decoder's and an encoder's losses live on different scales
        )
    return alt.layer(*layers, data=band).properties(title=title, height=280, autosize=FIT_WIDTH)


BATCH_SIZE_TITLE = "batch size (sequences, log2 axis)"


def batch_size_chart(summary: pd.DataFrame, **kw) -> alt.LayerChart | alt.FacetChart:
    """``sweep_chart`` against the batch size, on a log2 axis."""
    return sweep_chart(summary, x="batch_size", x_title=BATCH_SIZE_TITLE, log2_x=True, **kw)


ATTENTION_TITLES = {"causal": "causal (a decoder)", "bidirectional": "bidirectional (an encoder)"}
NO_DEPENDENCE = 1e-8  # batch dependence is drawn on a log axis: smaller values (exact zeros) sit here


DEPENDENCE_TITLES = {
    "batch_dependence": "max |Δ logit| across batches",
    "grad_batch_dependence": "gradient's relative spread",
}


def dependence_chart(
    summary: pd.DataFrame, *, title: str = "A sentence's logits across 8 batches", y: str = "batch_dependence"
) -> alt.FacetChart:
    """A batch-dependence probe after training, one dot per run, on a log axis, one panel per
    attention setting: ``batch_dependence`` (forward: max |logit difference| of one held-out sentence
    across 8 batches, normalised as in training) or ``grad_batch_dependence`` (backward: the relative
    spread of its loss's parameter gradient across the same batches, in training mode). Per-token
    norms sit at float noise. Columns: norm, attention, batch_size, seed, and ``y``."""
    x_title = DEPENDENCE_TITLES[y]
    data = labelled(summary).assign(
        attention=summary["attention"].map(ATTENTION_TITLES),
        dependence=summary[y].clip(lower=NO_DEPENDENCE),
    )
    order = [v for v in ATTENTION_TITLES.values() if v in set(data["attention"])]
    chart = (
        alt.Chart()
        .mark_point(filled=True, size=70, opacity=0.8)
        .encode(
            x=alt.X("dependence:Q", title=x_title, scale=alt.Scale(type="log")),
            y=alt.Y("label:N", title=None, sort=_label_order(data), axis=alt.Axis(labelLimit=200)),
            color=norm_color(data["norm"].unique(), legend=False),
            tooltip=[
                alt.Tooltip("label:N", title="norm"),
                alt.Tooltip("batch_size:Q", title="batch size"),
                alt.Tooltip("seed:Q", title="seed"),
                alt.Tooltip(f"{y}:Q", title=x_title, format=".3g"),
            ],
        )
        .properties(width=220, height=28 * data["norm"].nunique())
    )
    return alt.layer(chart, data=data).facet(
        column=alt.Column("attention:N", title=None, sort=order, header=alt.Header(labelFontSize=12)), title=title
    )


LENGTH_ORDER = ("fixed", "uniform", "longtail")
BATCHING_TITLES = {"random": "random batches", "bucketed": "batches bucketed by length"}


def padding_chart(
    summary: pd.DataFrame,
    *,
    y: str = "final_eval_loss",
    y_title: str = HELD_OUT_TITLE,
    title: str,
    zero_rule: bool = False,
) -> alt.FacetChart:
    """``y`` (mean over seeds, min-max bar) per length distribution, one panel per batching; each
    tick names the setting and its measured padding fraction, e.g. "uniform · 38% pads"."""
    band = seed_band(summary, "pad_fraction", y, ["lengths", "batching"])
    band = band.assign(
        setting=band["lengths"] + " · " + (band["pad_fraction"] * 100).round().astype(int).astype(str) + "% pads",
        rank=band["lengths"].map(LENGTH_ORDER.index),
        batching=band["batching"].map(BATCHING_TITLES),
    )
    base = alt.Chart().encode(
        x=alt.X(
            "setting:N",
            sort=alt.EncodingSortField("rank"),
            title="length distribution (padding of training batches)",
            axis=alt.Axis(labelAngle=0, labelLimit=200, labelExpr="split(datum.label, ' · ')"),
        ),
        color=norm_color(band["norm"].unique()),
    )
    y_scale = alt.Scale(zero=False)
    layers = [
        base.mark_rule(strokeWidth=2, opacity=0.5).encode(y=alt.Y("lo:Q", title=y_title, scale=y_scale), y2="hi:Q"),
        base.mark_line(point=alt.OverlayMarkDef(size=60), strokeWidth=2).encode(
            y=alt.Y("mean:Q", title=y_title, scale=y_scale),
            tooltip=_band_tooltip("pad_fraction", "padding fraction", y_title, ["lengths", "batching"]),
        ),
    ]
    if zero_rule:
        layers.append(alt.Chart().mark_rule(color="#888", strokeDash=[4, 4]).encode(y=alt.datum(0)))
    chart = alt.layer(*layers, data=band).properties(width=260, height=240)
    return chart.facet(
        column=alt.Column(
            "batching:N", title=None, sort=list(BATCHING_TITLES.values()), header=alt.Header(labelFontSize=12)
        ),
        title=title,
    ).resolve_scale(x="independent")
