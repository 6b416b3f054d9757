"""Showing results: a chart with its caption and CSV, the norm colour legend, and the summary
metrics of a paired run."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.analysis import in_norm_order, last_values, mean_tail
from core.charts import NORM_COLORS
from core.config import NORM_LABELS, NORMS
from ui.i18n import t

# Metric labels are narrow: names as short as can be while still telling the norms apart.
SHORT_LABELS = {"ln": "LayerNorm", "bn": "naive BN", "masked_bn": "masked BN", "rms": "RMSNorm", "none": "no norm"}


def width_for(ch: alt.TopLevelMixin) -> str:
    """Plain charts stretch to the container; facets and concatenations keep their panel sizes."""
    return "stretch" if isinstance(ch, alt.LayerChart | alt.Chart) else "content"


def chart(ch: alt.TopLevelMixin, data: pd.DataFrame, caption: str, name: str):
    """The chart, a one-line caption saying what to look for, and the data behind it as CSV."""
    st.altair_chart(ch, width=width_for(ch))
    text, button = st.columns([5, 1], vertical_alignment="top")
    text.caption(caption)
    button.download_button(
        "CSV",
        lambda: data.to_csv(index=False),  # made on click, not on every rerun
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"csv.{name}",
        on_click="ignore",
        icon=":material/download:",
        type="tertiary",
        help=t("The data behind this chart"),
    )


def norm_legend(where=st.sidebar):
    """The colour of each norm, the same on every chart of every page."""
    swatches = "".join(
        f'<div style="margin:2px 0"><span style="color:{NORM_COLORS[n]};font-size:1.1em">&#9632;</span> '
        f"{t(NORM_LABELS[n])}</div>"
        for n in NORMS
    )
    where.markdown(f"**{t('Colours')}**{swatches}", unsafe_allow_html=True)


def run_metrics(history: pd.DataFrame, seconds: float, tail: int):
    """Final held-out losses, each norm's gap to LayerNorm, padding fraction and speed; computed
    from the history so a stopped run shows them too. ``tail``: steps averaged for train loss."""
    eval_loss = last_values(history, "eval_loss")
    batch_stats = last_values(history, "eval_loss_batch_stats")
    train_loss = mean_tail(history, "train_loss", tail)
    norms = [n for n in NORMS if n in eval_loss.index]
    cols = st.columns(len(norms) + 2)
    for col, norm in zip(cols[: len(norms)], norms, strict=True):
        gap = eval_loss[norm] - eval_loss["ln"] if "ln" in eval_loss.index and norm != "ln" else None
        col.metric(
            t("{norm}: held-out loss", norm=t(SHORT_LABELS[norm])),
            f"{eval_loss[norm]:.3f}",
            delta=None if gap is None else t("{gap:+.3f} vs LayerNorm", gap=round(gap, 3) or 0.0),  # never "-0.000"
            delta_color="inverse",
            help=t(
                "{norm}: final held-out loss in eval mode (BN uses its running statistics), nats/token",
                norm=t(NORM_LABELS[norm]),
            ),
        )
    pads = history.loc[history["metric"] == "pad_fraction", "value"]
    steps = int(history["step"].max()) if len(history) else 0
    cols[-2].metric(
        t("padding fraction"),
        f"{pads.mean():.0%}" if len(pads) else "–",
        help=t("Share of batch positions that are pads"),
    )
    cols[-1].metric(
        t("steps per second"),
        f"{steps / seconds:.1f}" if seconds > 0 else "–",
        help=t("{steps} steps in {seconds:.1f} s, all models", steps=steps, seconds=seconds),
    )
    table = pd.DataFrame(
        {
            t("train loss (last steps)"): train_loss,
            t("held-out, eval mode"): eval_loss,
            t("held-out, batch stats"): batch_stats,
        }
    )
    table = in_norm_order(table).rename(index=lambda n: t(NORM_LABELS[n])).rename_axis(t("norm"))
    st.dataframe(table.style.format("{:.3f}"), width="content")
