"""Pinned runs: keep finished paired runs of the session, compare later runs with them on the same
charts, download them all as one CSV.

Kept in ``st.session_state`` (a visitor's pins are their own), at most MAX_PINS runs, and of each run
only its whole-model rows (losses, global gradient norm, pad fraction, learning rate): the per-block
and per-layer rows would make a session's memory grow several-fold with every pin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from core import charts
from core.engine.metrics import with_config
from core.settings.config import RunConfig
from ui import controls, show
from ui.i18n import t
from ui.runner import Outcome

KEY = "pinned"
MAX_PINS = 5


@dataclass(frozen=True)
class Pin:
    config: RunConfig
    history: pd.DataFrame  # the run's whole-model rows (layer "all"), with the run columns


def pinned() -> list[Pin]:
    return st.session_state.get(KEY, [])


def is_pinned(cfg: RunConfig | None) -> bool:
    return any(p.config == cfg for p in pinned())


def pin(out: Outcome):
    history = out.data["history"]
    st.session_state[KEY] = [*pinned(), Pin(out.config, history[history["layer"] == "all"])][-MAX_PINS:]


def unpin(cfg: RunConfig):
    st.session_state[KEY] = [p for p in pinned() if p.config != cfg]


def pinned_csv(pins: list[Pin]) -> str:
    """Every pinned run's rows with every setting as ``cfg_*`` columns, one table."""
    return pd.concat([with_config(p.history, p.config) for p in pins], ignore_index=True).to_csv(index=False)


def pin_button(page: str, out: Outcome):
    """Pin (or unpin) the run on show. Only a finished paired run can be pinned."""
    if is_pinned(out.config):
        st.button(
            t("Unpin this run"), key=f"{page}.pin", icon=":material/keep_off:", on_click=unpin, args=(out.config,)
        )
        return
    why_not = None
    if out.config is None or out.stopped or "history" not in out.data:
        why_not = t("Only a run that finished can be pinned.")
    elif len(pinned()) >= MAX_PINS:
        why_not = t("At most {n} pinned runs: unpin one first.", n=MAX_PINS)
    st.button(
        t("Pin this run"),
        key=f"{page}.pin",
        icon=":material/keep:",
        on_click=pin,
        args=(out,),
        disabled=why_not is not None,
        help=why_not or t("Keep this run on the charts while you try other settings (at most {n}).", n=MAX_PINS),
    )


def run_names(current: RunConfig | None, pins: list[Pin]) -> dict[RunConfig, str]:
    """Legend names: "this run: …" and "pinned: …", each naming only the settings that differ."""
    cfgs = list(dict.fromkeys([*([current] if current else []), *(p.config for p in pins)]))
    names = {}
    for cfg, summary in zip(cfgs, controls.summaries(cfgs), strict=True):
        if cfg == current and is_pinned(cfg):
            names[cfg] = t("this run (pinned): {summary}", summary=summary)
        elif cfg == current:
            names[cfg] = t("this run: {summary}", summary=summary)
        else:
            names[cfg] = t("pinned: {summary}", summary=summary)
    return names


def compare(page: str, out: Outcome, opts: dict[str, Any]):
    """The pinned runs beside the run on show: its loss curves with theirs, the list with unpin
    buttons, and the CSV of all of them. Nothing if nothing is pinned."""
    pins = pinned()
    if not pins:
        return
    st.subheader(t("Pinned runs"))
    names = run_names(out.config, pins)
    runs = {names[out.config]: out.data["history"]} if "history" in out.data and out.config else {}
    runs.update({names[p.config]: p.history for p in pins if p.config != out.config})
    faint = [names[p.config] for p in pins if p.config != out.config]
    if faint and runs:
        titles = {
            "eval_loss": t("Held-out loss (eval mode): this run and pinned runs"),
            "train_loss": t("Training loss: this run and pinned runs"),
        }
        for col, (metric, title) in zip(st.columns(2), titles.items(), strict=True):
            with col:
                show.chart(
                    charts.run_comparison(
                        runs,
                        metric,
                        pinned=faint,
                        title=title,
                        y_title=charts.HELD_OUT_TITLE if metric == "eval_loss" else charts.LOSS_TITLE,
                        smooth=opts["smooth"],
                        log_y=opts["log_y"],
                        x=opts["x"],
                    ),
                    charts.runs_curve_data(runs, metric, opts["smooth"]),
                    t(
                        "Colour: the norm, as everywhere. Solid: this run; dashed and fainter: pinned runs, "
                        "named by the settings in which they differ."
                    ),
                    f"{page}_pinned_{metric}",
                )
    for p in pins:
        text, button = st.columns([6, 1], vertical_alignment="center")
        text.markdown(f"{names[p.config]}  \n:gray[{controls.describe(p.config)} · `{p.config.config_id}`]")
        button.button(
            t("Unpin"), key=f"{page}.unpin.{p.config.config_id}", on_click=unpin, args=(p.config,), type="tertiary"
        )
    st.download_button(
        t("All pinned runs as one CSV (every setting as columns)"),
        lambda: pinned_csv(pinned()),  # made on click
        "pinned_runs.csv",
        "text/csv",
        key=f"{page}.pinned_csv",
        on_click="ignore",
        icon=":material/download:",
    )
