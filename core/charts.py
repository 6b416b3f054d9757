"""Chart builders: a tidy DataFrame in, an altair chart out. No Streamlit here.

Every builder colours a norm the same way (``NORM_COLORS``) and names it with ``NORM_LABELS``, so
"red is naive BatchNorm" learned on one page holds on every page, in exported charts too. Data
helpers that shape a frame for a chart (smoothing, thinning, seed bands, gaps) are pure functions
here as well, so the tests can check the numbers behind a chart and not only its spec.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import altair as alt
import pandas as pd

from core.config import NORM_LABELS, NORMS
from core.norm_specs import NORM_SPECS

# Each norm's colour is in its record (core/norm_specs.py): Tableau-10 hues, the BatchNorm family red
# and its neighbours, LayerNorm blue.
NORM_COLORS = {key: spec.color for key, spec in NORM_SPECS.items()}

LOSS_TITLE = "loss (nats/token)"
HELD_OUT_TITLE = "held-out loss (nats/token)"
GRAD_TITLE = "gradient norm (L2)"
GAP_TITLE = "gap to LayerNorm (nats/token)"
INIT_GRAD_TITLE = "gradient norm at init (L2)"
X_TITLES = {"step": "step", "tokens": "real tokens seen"}

# Curves of the live and history charts: metric -> series name in the legend.
LOSS_SERIES = {
    "train_loss": "train batch",
    "eval_loss": "held-out, eval mode",
    "eval_loss_batch_stats": "held-out, batch stats",
}
EVAL_GAP = "eval_gap"  # eval-mode minus batch-stats held-out loss, made by eval_gap_rows
GRAD_SERIES = {"grad_norm": "global gradient norm"}
EVAL_GAP_SERIES = {EVAL_GAP: "eval mode − batch stats"}
# Scored every eval_every steps: drawn as dots joined by lines, never smoothed.
SPARSE_METRICS = ("eval_loss", "eval_loss_batch_stats", EVAL_GAP)
# One dash per loss on every chart (solid: train, dashed: eval mode, dotted: batch stats), so a
# caption's "dotted" means the same everywhere; other metrics take the patterns in turn.
METRIC_DASHES = {"train_loss": [1, 0], "eval_loss": [6, 3], "eval_loss_batch_stats": [2, 2]}
DASHES = [[1, 0], [6, 3], [2, 2], [8, 2, 2, 2]]  # solid, dashed, dotted, dash-dot
MAX_POINTS = 400  # points per curve sent to the browser; longer curves are thinned evenly
RAW_OPACITY = 0.25  # the unsmoothed line stays visible, faint, under the smoothed one
PLACEMENT_LABELS = {"pre": "Pre-norm: x + f(norm(x))", "post": "Post-norm: norm(x + f(x))"}
STAGE_LABELS = {"before": "before the norm (input)", "after": "after the norm (x̂)"}
# Plain charts fill the container's width and keep their own plot height, so titles, axis titles
# and legends add to the height instead of squeezing the plot (Streamlit's default is "fit").
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")


# ---------------------------------------------------------------- shared encodings and data helpers
def labelled(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a ``label`` column naming each row's norm as the legends do."""
    return df.assign(label=df["norm"].map(NORM_LABELS))


def norm_color(norms: Sequence[str], legend: bool = True) -> alt.Color:
    """Colour by norm with a fixed hue per norm. The domain lists only the norms present, in
    NORMS order, so legends stay short while a norm's colour never depends on its companions."""
    present = [n for n in NORMS if n in set(norms)]
    scale = alt.Scale(domain=[NORM_LABELS[n] for n in present], range=[NORM_COLORS[n] for n in present])
    # One entry per line: long names never clip, and a second legend (dashes) fits beside it.
    # symbolOpacity: the swatch keeps full colour even when the first layer is the faint raw line.
    legend_spec = alt.Legend(orient="bottom", direction="vertical", labelLimit=320, title=None, symbolOpacity=1)
    legend_spec = legend_spec if legend else None
    return alt.Color("label:N", title="norm", scale=scale, legend=legend_spec)


def ema(values: pd.Series, weight: float) -> pd.Series:
    """Debiased exponential moving average, as TensorBoard's smoothing slider: 0 is the raw curve,
    0.9 averages over about ten points. Debiasing keeps the start of the curve where the data is."""
    if weight <= 0:
        return values.astype(float)
    return values.astype(float).ewm(alpha=1.0 - weight, adjust=True).mean()


def thin(df: pd.DataFrame, max_points: int = MAX_POINTS, x: str = "step") -> pd.DataFrame:
    """Every k-th step (and the last) so that no curve has more than about ``max_points`` points."""
    if df.empty:
        return df
    k = math.ceil(df[x].nunique() / max_points)
    if k <= 1:
        return df
    last = df[x].max()
    return df[(df[x] % k == 0) | (df[x] == last)]


def _y(field: str, title: str, log_y: bool) -> alt.Y:
    scale = alt.Scale(type="log") if log_y else alt.Scale(zero=False)
    return alt.Y(f"{field}:Q", title=title, scale=scale)


def _x_steps(x: str, max_step: int | None) -> alt.X:
    scale = alt.Scale(domain=[0, max_step]) if max_step and x == "step" else alt.Undefined
    return alt.X(f"{x}:Q", title=X_TITLES[x], scale=scale)


# ---------------------------------------------------------------- curves over training
def curve_data(
    history: pd.DataFrame, metrics: Mapping[str, str], smooth: float = 0.0, layer: str | None = "all"
) -> pd.DataFrame:
    """The rows of ``metrics`` (one ``layer``, or every layer if None) with ``series`` (legend
    name), ``label`` (norm), ``sparse`` and a ``smoothed`` value (dense metrics only), thinned."""
    rows = history[history["metric"].isin(list(metrics))]
    if layer is not None:
        rows = rows[rows["layer"] == layer]
    rows = labelled(rows).assign(series=rows["metric"].map(metrics), sparse=rows["metric"].isin(SPARSE_METRICS))
    rows = rows.sort_values("step", kind="stable")
    smoothed = rows.groupby(["norm", "metric", "layer"], sort=False)["value"].transform(lambda s: ema(s, smooth))
    rows = rows.assign(smoothed=smoothed.where(~rows["sparse"], rows["value"]))
    return thin(rows)[["norm", "label", "series", "metric", "layer", "step", "tokens", "sparse", "value", "smoothed"]]


def step_curves(
    history: pd.DataFrame,
    metrics: Mapping[str, str],
    *,
    title: str,
    y_title: str,
    smooth: float = 0.0,
    log_y: bool = False,
    x: str = "step",
    max_step: int | None = None,
    layer: str | None = "all",
    facet: str | None = None,
    norms: Sequence[str] | None = None,
) -> alt.LayerChart | alt.FacetChart:
    """Lines of ``metrics`` over steps (or tokens), one colour per norm, one dash per metric.

    Dense metrics (one value per step) are drawn raw and faint with the EMA-smoothed line on top
    when ``smooth`` > 0; sparse ones (held-out losses) are dots joined by lines, never smoothed.
    ``max_step`` fixes the x range (a live chart then grows into its frame instead of rescaling);
    ``norms`` fixes the colour legend (defaults to the norms in the data); ``facet`` makes one
    panel per value of that column (e.g. "layer"). The layers depend on the arguments only, not on
    the data, so a live chart keeps one spec while its data grows.
    """
    data = curve_data(history, metrics, smooth, layer=None if facet else layer)
    series = list(metrics.values())
    dashes = [METRIC_DASHES.get(m, DASHES[i % len(DASHES)]) for i, m in enumerate(metrics)]
    dash = alt.StrokeDash(
        "series:N",
        title=None,
        scale=alt.Scale(domain=series, range=dashes),
        legend=alt.Legend(
            orient="bottom",
            direction="vertical",
            labelLimit=150,  # beside the norms' legend in half a page's width
            symbolType="stroke",  # show the dash pattern itself (symbolOpacity would hide it)
            symbolStrokeColor="#333",
            symbolStrokeWidth=2,
            symbolFillColor="transparent",  # else the dots of point-marked lines cover the dash
        )
        if len(series) > 1
        else None,
    )
    tooltip = [
        alt.Tooltip("label:N", title="norm"),
        alt.Tooltip("series:N", title="curve"),
        alt.Tooltip(f"{x}:Q", title=X_TITLES[x]),
        alt.Tooltip("value:Q", title="value", format=".4g"),
    ]
    base = alt.Chart().encode(
        x=_x_steps(x, max_step), color=norm_color(norms or data["norm"].unique()), strokeDash=dash, tooltip=tooltip
    )
    layers = []
    dense = [m for m in metrics if m not in SPARSE_METRICS]
    if dense:
        raw_opacity = RAW_OPACITY if smooth > 0 else 1.0
        dense_rows = base.transform_filter("!datum.sparse")
        layers.append(dense_rows.mark_line(strokeWidth=1, opacity=raw_opacity).encode(y=_y("value", y_title, log_y)))
        if smooth > 0:
            layers.append(dense_rows.mark_line(strokeWidth=2).encode(y=_y("smoothed", y_title, log_y)))
    if len(dense) < len(metrics):
        sparse_rows = base.transform_filter("datum.sparse")
        layers.append(sparse_rows.mark_line(point=True, strokeWidth=2).encode(y=_y("value", y_title, log_y)))
    chart = alt.layer(*layers, data=data)
    if facet:
        columns = min(data[facet].nunique(), 5)  # one row for up to 5 panels: no empty cells
        return chart.properties(width=max(130, 700 // max(columns, 1)), height=200).facet(
            facet=alt.Facet(f"{facet}:N", title=None), columns=columns, title=title
        )
    return chart.properties(title=title, height=260, autosize=FIT_WIDTH)


def eval_gap_rows(history: pd.DataFrame) -> pd.DataFrame:
    """History-shaped rows of the train/inference gap: held-out loss in eval mode (running
    statistics) minus with batch statistics, per norm and evaluation step (metric EVAL_GAP)."""
    rows = history[history["metric"].isin(["eval_loss", "eval_loss_batch_stats"]) & (history["layer"] == "all")]
    wide = rows.pivot_table(index=["norm", "step", "tokens"], columns="metric", values="value").reset_index()
    return wide.assign(metric=EVAL_GAP, layer="all", value=wide["eval_loss"] - wide["eval_loss_batch_stats"])[
        ["norm", "step", "tokens", "metric", "layer", "value"]
    ]


def loss_curves(history: pd.DataFrame, **kw) -> alt.LayerChart:
    """Train loss (noisy, one batch per step) and the two held-out losses, per norm."""
    kw.setdefault("title", "Loss")
    return step_curves(history, LOSS_SERIES, y_title=LOSS_TITLE, **kw)


def grad_norm_curves(history: pd.DataFrame, **kw) -> alt.LayerChart:
    """Global gradient norm per norm, before clipping."""
    kw.setdefault("title", "Global gradient norm (before clipping)")
    return step_curves(history, GRAD_SERIES, y_title=GRAD_TITLE, **kw)


# ---------------------------------------------------------------- several runs on one chart
PINNED_OPACITY = 0.55  # pinned runs stay readable but step back behind the current one


def runs_curve_data(runs: Mapping[str, pd.DataFrame], metric: str, smooth: float = 0.0) -> pd.DataFrame:
    """``metric`` (whole-model rows) of several runs' histories, each as ``curve_data`` makes it,
    with ``run``: the run's name (the mapping's key, its legend entry)."""
    parts = [curve_data(history, {metric: metric}, smooth).assign(run=name) for name, history in runs.items()]
    return pd.concat(parts, ignore_index=True)


def run_comparison(
    runs: Mapping[str, pd.DataFrame],
    metric: str,
    *,
    pinned: Sequence[str] = (),
    title: str,
    y_title: str,
    smooth: float = 0.0,
    log_y: bool = False,
    x: str = "step",
) -> alt.Chart:
    """One metric of several paired runs on one chart: a colour per norm as everywhere, a dash per
    run (in ``runs`` order: the first solid), and the runs named in ``pinned`` fainter. Dense
    metrics are drawn smoothed (``smooth``), sparse ones (held-out losses) as dots joined by lines."""
    data = runs_curve_data(runs, metric, smooth)
    names = list(runs)
    dash = alt.StrokeDash(
        "run:N",
        title=None,
        scale=alt.Scale(domain=names, range=[DASHES[i % len(DASHES)] for i in range(len(names))]),
        legend=alt.Legend(
            orient="bottom",
            direction="vertical",
            labelLimit=480,
            symbolType="stroke",
            symbolStrokeColor="#333",
            symbolStrokeWidth=2,
            symbolFillColor="transparent",
        ),
    )
    opacity = alt.condition(
        alt.FieldOneOfPredicate(field="run", oneOf=list(pinned) or [""]), alt.value(PINNED_OPACITY), alt.value(1.0)
    )
    tooltip = [
        alt.Tooltip("run:N", title="run"),
        alt.Tooltip("label:N", title="norm"),
        alt.Tooltip(f"{x}:Q", title=X_TITLES[x]),
        alt.Tooltip("value:Q", title="value", format=".4g"),
    ]
    sparse = metric in SPARSE_METRICS
    line = alt.Chart(data).mark_line(point=sparse, strokeWidth=2)
    return line.encode(
        x=_x_steps(x, None),
        y=_y("value" if sparse else "smoothed", y_title, log_y),
        color=norm_color(data["norm"].unique()),
        strokeDash=dash,
        opacity=opacity,
        detail="run:N",
        tooltip=tooltip,
    ).properties(title=title, height=260, autosize=FIT_WIDTH)


def block_heatmap(history: pd.DataFrame, log_color: bool = True, max_bins: int = 60) -> alt.FacetChart:
    """Gradient norm of each part of the model (embeddings, blocks, final norm, head) over steps,
    one panel per norm; steps are binned so any run length fits. Colour on a log scale by default:
    gradient norms of different parts differ by decades."""
    rows = history[history["metric"] == "grad_norm_block"]
    rows = labelled(rows).rename(columns={"layer": "block"})
    order = _block_order(rows["block"].unique())
    color_scale = alt.Scale(type="log", scheme="viridis") if log_color else alt.Scale(scheme="viridis")
    chart = (
        alt.Chart(rows)
        .mark_rect()
        .encode(
            x=alt.X("step:Q", bin=alt.Bin(maxbins=max_bins), title="step"),
            y=alt.Y("block:N", sort=order, title=None),
            color=alt.Color("mean(value):Q", title="grad norm", scale=color_scale),
            tooltip=[
                alt.Tooltip("label:N", title="norm"),
                "block:N",
                alt.Tooltip("step:Q", bin=True),
                alt.Tooltip("mean(value):Q", title="mean grad norm", format=".3g"),
            ],
        )
    )
    return chart.properties(width=560, height=22 * len(order)).facet(
        row=alt.Row("label:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelLimit=320)),
        title="Gradient norm per block over training",
    )


def _block_order(blocks) -> list[str]:
    """embed, block0, block1, ..., final_norm, head: the forward order."""

    def rank(b: str) -> tuple[int, int]:
        if b == "embed":
            return (0, 0)
        if b.startswith("block"):
            return (1, int(b[5:]))
        return (2, 0) if b == "final_norm" else (3, 0)

    return sorted(blocks, key=rank)


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


def _band_tooltip(x: str, x_title: str, y_title: str, extra: Sequence[str] = ()) -> list:
    return [
        alt.Tooltip("label:N", title="norm"),
        alt.Tooltip(f"{x}:Q", title=x_title, format=".3g"),
        *[alt.Tooltip(f"{k}:N") for k in extra],
        alt.Tooltip("mean:Q", title="mean over seeds", format=".4f"),
        alt.Tooltip("lo:Q", title="min over seeds", format=".4f"),
        alt.Tooltip("hi:Q", title="max over seeds", format=".4f"),
        alt.Tooltip("seeds:Q"),
    ]


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


def _label_order(df: pd.DataFrame) -> list[str]:
    return [NORM_LABELS[n] for n in NORMS if n in set(df["norm"])]


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
    hundred times smaller than the diagonal shows. Columns: norm, mode, i, j, influence (core.leak)."""
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


def eval_gaps_to_layer_norm(history: pd.DataFrame) -> pd.DataFrame:
    """History-shaped rows of each norm's held-out loss minus LayerNorm's at the same step, both
    ways (eval mode, batch statistics; LayerNorm's is the same both ways). Empty without LayerNorm."""
    rows = history[history["metric"].isin(["eval_loss", "eval_loss_batch_stats"]) & (history["layer"] == "all")]
    ln = rows[(rows["norm"] == "ln") & (rows["metric"] == "eval_loss")].set_index("step")["value"]
    others = rows[rows["norm"] != "ln"]
    return others.assign(value=others["value"] - others["step"].map(ln)).dropna(subset=["value"])[
        ["norm", "step", "tokens", "metric", "layer", "value"]
    ]


def gap_curves(
    history: pd.DataFrame, *, title: str = "Held-out loss minus LayerNorm's", x: str = "step"
) -> alt.LayerChart:
    """Each norm's held-out loss minus LayerNorm's over training, with a zero line: a gap of a few
    hundredths, lost on the 0-4 axis of the loss chart, is visible here. Dashed: eval mode (as
    deployed); dotted: batch statistics. Positive: worse than LayerNorm."""
    gaps = eval_gaps_to_layer_norm(history)
    series = {m: LOSS_SERIES[m] for m in ("eval_loss", "eval_loss_batch_stats")}
    curves = step_curves(gaps, series, title=title, y_title=GAP_TITLE, x=x)
    zero = alt.Chart(pd.DataFrame({"zero": [0.0]})).mark_rule(color="#888", strokeWidth=1).encode(y="zero:Q")
    return alt.layer(*curves.layer, zero, data=curves.data).properties(title=title, height=200, autosize=FIT_WIDTH)


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
    Columns: task, layer, grouping, share, chance (core.analysis.comparability)."""
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
    Columns: norm, mode, channel, mean_kl, max_kl (core.leak.channel_summary)."""
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
    loss, targets (core.deploy.deployment)."""
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


def init_grad_chart(profile: pd.DataFrame, log_y: bool = True) -> alt.FacetChart:
    """Per-part gradient norm at initialization, input to output, Pre vs Post placement (Xiong et
    al. 2020). Columns: placement, norm, block, layer_index, grad_norm."""
    data = labelled(profile).assign(placement_label=profile["placement"].map(PLACEMENT_LABELS))
    chart = (
        alt.Chart()
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=alt.X(
                "block:N",
                sort=_block_order(data["block"].unique()),
                title="part of the model (input → output)",
                axis=alt.Axis(labelAngle=-40, labelOverlap=False),
            ),
            y=_y("grad_norm", INIT_GRAD_TITLE, log_y),
            color=norm_color(data["norm"].unique()),
            tooltip=[
                alt.Tooltip("label:N", title="norm"),
                "placement_label:N",
                "block:N",
                alt.Tooltip("grad_norm:Q", format=".3g"),
            ],
        )
        .properties(width=360, height=260)
    )
    order = [PLACEMENT_LABELS[p] for p in PLACEMENT_LABELS if p in set(profile["placement"])]
    return alt.layer(chart, data=data).facet(
        column=alt.Column("placement_label:N", title=None, sort=order, header=alt.Header(labelFontSize=12)),
        title="Gradient norms at initialization, per layer",
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
