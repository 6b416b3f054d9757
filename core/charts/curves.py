"""Curves over training: losses, gradient norms, gaps to LayerNorm, several runs on one chart, the
per-block heatmap, and the gradient profile at initialization."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import altair as alt
import pandas as pd

from core.charts.base import (
    DASHES,
    EVAL_GAP,
    FIT_WIDTH,
    GAP_TITLE,
    GRAD_SERIES,
    GRAD_TITLE,
    INIT_GRAD_TITLE,
    LOSS_SERIES,
    LOSS_TITLE,
    METRIC_DASHES,
    PLACEMENT_LABELS,
    RAW_OPACITY,
    SPARSE_METRICS,
    X_TITLES,
    _x_steps,
    _y,
    labelled,
    norm_color,
    thin,
)
from core.engine.report import HISTORY_COLUMNS
from core.settings.config import NORM_LABELS

# ---------------------------------------------------------------- curves over training
CURVE_COLUMNS = ["norm", "label", "series", "metric", "layer", "step", "tokens", "sparse", "value", "smoothed"]


class Curves:
    """The data of one chart of curves over training, built a step's rows at a time: each row of
    ``metrics`` (one ``layer``, or every layer if None) is kept with its legend name and a smoothed
    value carried forward (one running debiased EMA per curve, as ``ema``; held-out losses are
    dots, never smoothed), so a live chart's redraw only turns a list into a frame, and the final
    chart (``curve_data``) is the same rows. Recomputing every curve from the whole history on each
    redraw held the GIL the training threads need for about 25 ms a time."""

    def __init__(self, metrics: Mapping[str, str], smooth: float, layer: str | None = "all"):
        self.metrics, self.smooth, self.layer = metrics, smooth, layer
        self._ema: dict[tuple, tuple[float, float]] = {}  # (norm, metric, layer) -> (weighted sum, sum of weights)
        self._rows: list[tuple] = []
        self.seen = 0  # rows offered so far (see ``extend``)

    def add(self, rows) -> Curves:
        """Rows (norm, step, tokens, metric, layer, value), in step order."""
        for norm, step, tokens, metric, layer, value in rows:
            if metric in self.metrics and (self.layer is None or layer == self.layer):
                sparse = metric in SPARSE_METRICS
                smoothed = value if sparse else self._smoothed((norm, metric, layer), value)
                label, series = NORM_LABELS[norm], self.metrics[metric]
                self._rows.append((norm, label, series, metric, layer, step, tokens, sparse, value, smoothed))
        return self

    def extend(self, history: Sequence[tuple], upto: int) -> Curves:
        """Add the rows of a growing ``history`` from the last one seen up to ``upto``."""
        if upto > self.seen:
            self.add(history[self.seen : upto])
            self.seen = upto
        return self

    def _smoothed(self, curve: tuple, value: float) -> float:
        if self.smooth <= 0:
            return float(value)
        total, weights = (w * self.smooth for w in self._ema.get(curve, (0.0, 0.0)))
        if not math.isnan(value):  # as pandas' ewm: a missing value adds nothing, the older ones still decay
            total, weights = total + value, weights + 1.0
        self._ema[curve] = total, weights
        return total / weights if weights else math.nan

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self._rows, columns=CURVE_COLUMNS)
        return thin(df.sort_values("step", kind="stable", ignore_index=True))


def curve_data(
    history: pd.DataFrame, metrics: Mapping[str, str], smooth: float = 0.0, layer: str | None = "all"
) -> pd.DataFrame:
    """The rows of ``metrics`` (one ``layer``, or every layer if None) with ``series`` (legend
    name), ``label`` (norm), ``sparse`` and a ``smoothed`` value (dense metrics only), thinned: the
    live chart's ``Curves`` of the whole history."""
    rows = history[history["metric"].isin(list(metrics))].sort_values("step", kind="stable")
    return Curves(metrics, smooth, layer).add(rows[HISTORY_COLUMNS].itertuples(index=False, name=None)).frame()


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
