"""Showing results: a chart with its caption and CSV, the norm colour legend, and the summary
metrics of a paired run."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from core.charts import NORM_COLORS
from core.settings.config import NORM_LABELS, NORMS
from core.settings.norm_specs import NORM_SPECS
from core.studies.analysis import in_norm_order, last_values, mean_tail
from core.studies.generate import TEMPERATURE
from ui.i18n import DEFAULT, lang, t

# Metric labels are narrow: names as short as can be while still telling the norms apart.
SHORT_LABELS = {key: spec.short["en"] for key, spec in NORM_SPECS.items()}


def width_for(ch: alt.TopLevelMixin) -> str:
    """Plain charts stretch to the container; facets and concatenations keep their panel sizes."""
    return "stretch" if isinstance(ch, alt.LayerChart | alt.Chart) else "content"


# Columns of a chart's data whose values are names people read (legends, panel headers).
SHOWN_COLUMNS = frozenset({"label", "series", "mode_label", "placement_label", "stage", "batching", "fill"})


def localized(spec: Any) -> Any:
    """A Vega-Lite spec (or part of one) in the visitor's language: titles (of the chart, axes,
    legends, tooltips), the names in SHOWN_COLUMNS of its data, and the scale domains and sort
    orders that list them. core/charts/ builds every chart in English; this is the one place
    that translates them. Field names, filters and numbers are left alone."""
    if isinstance(spec, dict):
        out = {}
        for key, value in spec.items():
            if key == "datasets":
                out[key] = {name: [_shown_row(row) for row in rows] for name, rows in value.items()}
            elif key in ("title", "text") and isinstance(value, str):
                out[key] = t(value)
            elif key in ("domain", "sort") and isinstance(value, list):
                out[key] = [t(v) if isinstance(v, str) else v for v in value]
            else:
                out[key] = localized(value)
        return out
    if isinstance(spec, list):
        return [localized(v) for v in spec]
    return spec


def _shown_row(row: dict) -> dict:
    return {k: t(v) if k in SHOWN_COLUMNS and isinstance(v, str) else v for k, v in row.items()}


def localized_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A chart's data frame with the names in SHOWN_COLUMNS in the visitor's language."""
    if lang() == DEFAULT:
        return df
    return df.assign(**{c: df[c].map(lambda v: t(v) if isinstance(v, str) else v) for c in SHOWN_COLUMNS & set(df)})


def draw(ch: alt.TopLevelMixin, where=st):
    """Draw an altair chart in the visitor's language."""
    if lang() == DEFAULT:
        where.altair_chart(ch, width=width_for(ch))
    else:
        where.vega_lite_chart(localized(ch.to_dict()), width=width_for(ch))


def chart(ch: alt.TopLevelMixin, data: pd.DataFrame, caption: str, name: str):
    """The chart, a one-line caption saying what to look for, and the data behind it as CSV."""
    draw(ch)
    _caption_and_csv(caption, data, name, t("The data behind this chart"))


def table(df: pd.DataFrame, caption: str, name: str, data: pd.DataFrame | None = None):
    """A table, a one-line caption, and the data behind it as CSV (``data``, default the table)."""
    st.dataframe(df, width="stretch", hide_index=True)
    _caption_and_csv(caption, df if data is None else data, name, t("The data behind this table"))


def _caption_and_csv(caption: str, data: pd.DataFrame, name: str, help: str):
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
        help=help,
    )


def generations(frame: pd.DataFrame, name: str):
    """What each model wrote: one row per prompt, one column per norm (core.studies.generate)."""
    st.subheader(t("What each model writes"))
    if frame.empty:
        st.info(t("No model to write: every model diverged."))
        return
    shown = frame.assign(text=frame["continuation"] + frame["ended"].map({True: " ⏎", False: " …"}))
    wide = shown.pivot(index=["prompt_id", "prompt"], columns="norm", values="text").reset_index()
    norms = [n for n in NORMS if n in wide.columns]
    wide = wide[["prompt", *norms]].rename(columns={"prompt": t("prompt"), **{n: t(NORM_LABELS[n]) for n in norms}})
    table(
        wide,
        t(
            "Each model continues the same openings of held-out sentences in eval mode, as it would be deployed, "
            "sampling at temperature {temperature} with the same random numbers: where two lines differ, the models "
            "differ. ⏎: the model ended the sentence; …: it reached the last position.",
            temperature=TEMPERATURE,
        ),
        name,
        data=frame,
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
