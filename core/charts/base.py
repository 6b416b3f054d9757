"""Shared by every chart builder: the fixed colour and name of each norm, axis titles, smoothing,
thinning, and the encodings several charts use."""

from __future__ import annotations

import math
from collections.abc import Sequence

import altair as alt
import pandas as pd

from core.settings.config import NORM_LABELS, NORMS
from core.settings.norm_specs import NORM_SPECS

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


def _label_order(df: pd.DataFrame) -> list[str]:
    return [NORM_LABELS[n] for n in NORMS if n in set(df["norm"])]


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
