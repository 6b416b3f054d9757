"""Padding and lengths: naive BN vs masked BN vs LN across length distributions and batching,
and the pad-length probe: the same batch padded longer, and how far each real token moves."""

import streamlit as st

from core import charts
from core.settings.config import BATCHING
from core.studies import experiments
from core.studies.analysis import compares_to_layer_norm, in_norm_order
from ui import controls, runner, share, show
from ui.i18n import t

PAGE = "padding"
SETUP = experiments.SETUPS[PAGE]
BASE, FIELDS = SETUP.base, list(SETUP.fields)
MAX_SEEDS = 3
GRID = (
    # the synthetic text task's length distributions
    controls.GridField("lengths", "length distributions", SETUP.extras["lengths"], controls.LENGTH_LABELS, width=2),
    controls.GridField("batching", "batching", BATCHING, controls.BATCHING_LABELS, width=2),
    controls.GridField("seeds", "seeds", max_seeds=MAX_SEEDS),
)
PARAMS = controls.form_params(BASE, FIELDS) + controls.grid_params(GRID, SETUP.extras)


def loss_chart(summary):
    return charts.padding_chart(summary, title=t("Final held-out loss per length distribution and batching"))


def results(out: runner.Outcome):
    summary = out.data["summary"]  # a stopped grid's outcome holds at least one finished paired run
    show.chart(
        loss_chart(summary),
        summary,
        t(
            "Each panel: one batching; along the axis, the length distributions with the padding they cause. "
            "Each setting has its own held-out sentences, so compare norms within a setting."
        ),
        f"{PAGE}_loss",
    )
    if compares_to_layer_norm(summary):
        gaps = charts.gap_to(summary)
        show.chart(
            charts.padding_chart(
                gaps,
                y="gap",
                y_title=t("loss minus LayerNorm's (nats/token)"),
                zero_rule=True,
                title=t("Gap to LayerNorm in the same run"),
            ),
            gaps,
            t(
                "LayerNorm is the zero line: it never sees pads. Masking removes the pads from BatchNorm's "
                "statistics but leaves fewer values in them. Bucketing removes most pads but puts sentences of "
                "one length in each batch, so BatchNorm's batch statistics carry the length (when the sentence "
                "ends): a shortcut the model learns and loses at inference, with running averages."
            ),
            f"{PAGE}_gap",
        )
    if "probe" in out.data:
        probe = out.data["probe"]
        st.subheader(t("Pad-length probe: the same batch, padded longer"))
        show.chart(
            charts.token_grid(
                probe,
                "movement",
                value_title=t("max |Δ logit|"),
                title=t("How far each real token's output moves when its batch gets more pads"),
            ),
            probe,
            t(
                "Short held-out sentences padded to their longest, then to the maximum length, scored with batch "
                "statistics. Naive BatchNorm's outputs move (the pads shift its statistics); masked BatchNorm "
                "and LayerNorm stay at exactly 0. × = pad."
            ),
            f"{PAGE}_probe",
        )
        moved = in_norm_order(probe.groupby("norm")["movement"].max())
        cols = st.columns(len(moved))
        for col, (norm, value) in zip(cols, moved.items(), strict=True):
            col.metric(t("{norm}: largest move", norm=t(show.SHORT_LABELS[norm])), f"{value:.3g}")


def main():
    share.settings(PAGE, PARAMS)
    cfg, extra, submitted = controls.config_form(PAGE, BASE, FIELDS, extra=controls.grid_form(PAGE, GRID, SETUP.extras))
    cfgs = None
    if cfg is not None and extra["lengths"] and extra["batching"]:
        cfgs = controls.checked(lambda: experiments.grid(PAGE, cfg, extra))
    request = (cfg, extra) if submitted and cfgs else None
    if submitted and not cfgs:
        st.error(t("Choose at least one length distribution and one batching."))
    out = runner.experiment(
        PAGE,
        request,
        t("Press Run to sweep length distributions and batching (well under a minute)."),
        chart=loss_chart,
    )
    if out is not None:
        results(out)


main()
