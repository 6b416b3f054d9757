"""Probes of trained models: one sentence in different batches, what moves its predictions (the
leak channels), the causality map, and the held-out loss with each kind of statistics."""

from __future__ import annotations

import altair as alt
import pandas as pd

from core.charts.base import HELD_OUT_TITLE, _label_order, labelled, norm_color


# ---------------------------------------------------------------- probes
def probe_chart(probe: pd.DataFrame) -> alt.FacetChart:
    """One held-out sentence scored inside several different batches: probability of the true
    next token per position, one line per batch, one panel per norm. Under a per-token norm the
    lines coincide; under BatchNorm with batch statistics they spread. Columns: norm, batch, pos, prob."""
    data = labelled(probe)
    chart = (
        alt.Chart()
        .mark_line(point=alt.OverlayMarkDef(size=14), strokeWidth=1.2, opacity=0.8)
        .encode(
            x=alt.X("pos:Q", title="position in the sentence", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("prob:Q", title="p(true next token)", scale=alt.Scale(domain=[0, 1])),
            color=norm_color(data["norm"].unique(), legend=False),
            detail="batch:N",
            tooltip=[alt.Tooltip("label:N", title="norm"), "batch:N", "pos:Q", alt.Tooltip("prob:Q", format=".3f")],
        )
        .properties(width=240, height=220)
    )
    return alt.layer(chart, data=data).facet(
        column=alt.Column(
            "label:N", title=None, sort=_label_order(data), header=alt.Header(labelLimit=280, labelFontSize=12)
        ),
        title="The same sentence in different batches",
    )


MODE_LABELS = {"batch_stats": "batch statistics (as in training)", "eval": "running statistics (as deployed)"}
NO_INFLUENCE = 1e-9  # KL at or below this is float noise (it is near 1e-12 when nothing changed): no influence


def causality_chart(frame: pd.DataFrame, panel: int = 230) -> alt.FacetChart:
    """Causality maps: how much the predicted distribution at position i (rows) moves, as KL, when
    the input at position j (columns) of the same sentence changes, one panel per norm (rows) and
    mode (columns). A cell no change reaches (at most NO_INFLUENCE, float noise) is left blank:
    above the diagonal (j > i) a causal model's map is empty. Colour on a log scale, so a leak a
    hundred times smaller than the diagonal shows. Columns: norm, mode, i, j, influence (core.studies.leak)."""
    T = int(max(frame["i"].max(), frame["j"].max())) + 1 if len(frame) else 1
    ticks = list(range(0, T, 4 if T > 12 else 2))
    data = labelled(frame).assign(mode_label=frame["mode"].map(MODE_LABELS))
    data = data[data["influence"] > NO_INFLUENCE]  # blank: a cell no change reaches
    chart = (
        alt.Chart()
        .mark_rect()
        .encode(
            x=alt.X("j:O", title="changed input position j", axis=alt.Axis(values=ticks, labelAngle=0)),
            y=alt.Y("i:O", title="output position i", axis=alt.Axis(values=ticks)),
            color=alt.Color(
                "influence:Q",
                title="KL (nats)",
                scale=alt.Scale(type="log", scheme="orangered"),
                legend=alt.Legend(orient="right", gradientLength=160),
            ),
            tooltip=[
                alt.Tooltip("label:N", title="norm"),
                alt.Tooltip("mode_label:N", title="statistics"),
                alt.Tooltip("i:O", title="output position i"),
                alt.Tooltip("j:O", title="changed input position j"),
                alt.Tooltip("influence:Q", title="KL (nats)", format=".3g"),
            ],
        )
        .properties(width=panel, height=panel)
    )
    header = alt.Header(labelLimit=320, labelFontSize=12)
    return alt.layer(chart, data=data).facet(
        row=alt.Row(
            "label:N",
            title=None,
            sort=_label_order(data),
            header=alt.Header(labelAngle=0, labelAlign="left", labelLimit=200, labelFontSize=12),
        ),
        column=alt.Column("mode_label:N", title=None, sort=list(MODE_LABELS.values()), header=header),
        title="Which inputs each output depends on",
    )


CHANNEL_LABELS = {
    "own_later": "(a) one of its own later tokens",
    "other_sentence": "(b) one token of another sentence",
    "length": "(c) its length (cut shorter)",
    "batch": "(d) the batch around it",
}
KL_SERIES = {"max_kl": "largest change", "mean_kl": "mean change"}
NO_KL = 1e-12  # KL is drawn on a log axis: smaller values (float noise, exact zeros) sit here


def leak_chart(summary: pd.DataFrame) -> alt.FacetChart:
    """Where a sentence's predictions move from: per norm (colour), channel (rows) and mode (panels),
    the largest (filled) and mean (open) KL of its next-token distribution, on a log axis.
    Columns: norm, mode, channel, mean_kl, max_kl (core.studies.leak.channel_summary)."""
    long = summary.melt(["norm", "mode", "channel"], ["max_kl", "mean_kl"], var_name="stat", value_name="kl")
    data = labelled(long).assign(
        mode_label=long["mode"].map(MODE_LABELS), series=long["channel"].map(CHANNEL_LABELS),
        stat_label=long["stat"].map(KL_SERIES), shown=long["kl"].clip(lower=NO_KL),
    )  # fmt: skip
    rows = [CHANNEL_LABELS[c] for c in CHANNEL_LABELS if c in set(long["channel"])]
    shapes = alt.Scale(domain=list(KL_SERIES.values()), range=["circle", "triangle-left"])
    chart = (
        alt.Chart()
        .mark_point(size=70, filled=True, opacity=0.85)
        .encode(
            x=alt.X("shown:Q", title="KL per position (nats, log axis)", scale=alt.Scale(type="log")),
            y=alt.Y("series:N", title=None, sort=rows, axis=alt.Axis(labelLimit=200)),
            yOffset=alt.YOffset("label:N", sort=_label_order(data)),
            color=norm_color(data["norm"].unique()),
            shape=alt.Shape(
                "stat_label:N", title=None, scale=shapes, legend=alt.Legend(orient="bottom", direction="vertical")
            ),
            tooltip=[
                alt.Tooltip("label:N", title="norm"),
                alt.Tooltip("series:N", title="what changed"),
                alt.Tooltip("stat_label:N", title="measure"),
                alt.Tooltip("kl:Q", title="KL (nats)", format=".3g"),
            ],
        )  # fmt: skip
        .properties(width=230, height=(14 * data["norm"].nunique() + 10) * len(rows))
    )
    return alt.layer(chart, data=data).facet(
        column=alt.Column("mode_label:N", title=None, sort=list(MODE_LABELS.values()),
                          header=alt.Header(labelFontSize=12, labelLimit=320)),
        title="What moves a sentence's predictions",
    )  # fmt: skip


STATISTICS_LABELS = {
    "batch": "batch statistics (as in training)",
    "running": "running statistics (as deployed)",
    "precise_as_batched": "re-estimated after training, batches as in the run",
    "precise_random": "re-estimated after training, random batches",
    "per_length": "re-estimated per padded length (knows the length)",
}
TARGET_LABELS = {"all": "every target", "eos": "end of sentence", "other": "every other target"}


def deploy_chart(frame: pd.DataFrame) -> alt.FacetChart:
    """The held-out loss of each norm with each kind of statistics (rows), per kind of target
    (stacked panels, each with its own axis); LayerNorm, which has no statistics, as a dashed rule in its colour. Columns: norm, statistics, target,
    loss, targets (core.studies.deploy.deployment)."""
    data = labelled(frame).assign(
        series=frame["statistics"].map(STATISTICS_LABELS), batching=frame["target"].map(TARGET_LABELS)
    )
    kinds = [STATISTICS_LABELS[k] for k in STATISTICS_LABELS if k in set(frame["statistics"])]
    x = alt.X("loss:Q", title=HELD_OUT_TITLE, scale=alt.Scale(zero=False))
    points = (
        alt.Chart()
        .transform_filter(alt.datum.norm != "ln")
        .mark_point(filled=True, size=80)
        .encode(
            x=x,
            y=alt.Y("series:N", title=None, sort=kinds, axis=alt.Axis(labelLimit=320)),
            color=norm_color(data["norm"].unique()),
            tooltip=[
                alt.Tooltip("label:N", title="norm"),
                alt.Tooltip("series:N", title="statistics"),
                alt.Tooltip("batching:N", title="targets"),
                alt.Tooltip("loss:Q", title=HELD_OUT_TITLE, format=".4f"),
                alt.Tooltip("targets:Q", title="targets scored"),
            ],
        )
    )
    rule = (
        alt.Chart()
        .transform_filter((alt.datum.norm == "ln") & (alt.datum.statistics == "running"))
        .mark_rule(strokeDash=[4, 3], strokeWidth=2)
        .encode(x="loss:Q", color=norm_color(data["norm"].unique()))
    )
    panels = [TARGET_LABELS[k] for k in TARGET_LABELS if k in set(frame["target"])]
    return (
        alt.layer(points, rule, data=data)
        .properties(width=280, height=24 * len(kinds))
        .facet(
            row=alt.Row(
                "batching:N",
                title=None,
                sort=panels,
                header=alt.Header(labelAngle=0, labelAlign="left", labelFontSize=12, labelLimit=110),
            ),
            title="Held-out loss by the statistics a BatchNorm is served",
        )
        .resolve_scale(x="independent")
    )
