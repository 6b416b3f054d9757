"""Batch size: final held-out loss vs batch size per norm, mean and band over seeds."""

import streamlit as st

from core import charts
from core.studies import experiments
from core.studies.analysis import compares_to_layer_norm
from ui import controls, runner, share, show
from ui.i18n import t

PAGE = "batch_size"
SETUP = experiments.SETUPS[PAGE]  # short runs, scored once at the end: well under a minute
BASE, FIELDS = SETUP.base, list(SETUP.fields)
MAX_SEEDS = 5
GRID = (
    controls.GridField("sizes", "batch sizes", controls.BATCH_SIZES, width=3),
    controls.GridField("seeds", "seeds per batch size", max_seeds=MAX_SEEDS),
)
PARAMS = controls.form_params(BASE, FIELDS) + controls.grid_params(GRID, SETUP.extras)


def loss_chart(summary):
    return charts.batch_size_chart(
        summary,
        title=t("Final held-out loss vs batch size"),
    )


def gap_chart(gaps):
    return charts.batch_size_chart(
        gaps,
        y="gap",
        y_title=t("held-out loss minus LayerNorm's (nats/token)"),
        zero_rule=True,
        title=t("Gap to LayerNorm in the same run"),
    )


def results(out: runner.Outcome):
    summary = out.data["summary"]  # a stopped grid's outcome holds at least one finished paired run
    left, right = st.columns(2)
    with left:
        show.chart(
            loss_chart(summary),
            summary,
            t(
                "Mean over seeds, band from min to max. LayerNorm's curve is the control: it normalises each "
                "token alone, and falls with batch size only because bigger batches see more sentences."
            ),
            f"{PAGE}_loss",
        )
    with right:
        if compares_to_layer_norm(summary):
            gaps = charts.gap_to(summary)
            show.chart(
                gap_chart(gaps),
                gaps,
                t(
                    "BatchNorm's gap to LayerNorm widens as the batch shrinks: fewer values per batch statistic, "
                    "noisier normalisation (Group Norm paper, Fig. 1)."
                ),
                f"{PAGE}_gap",
            )
        else:
            st.info(t("Include LayerNorm and another norm to see the gap chart."))


def main():
    share.settings(PAGE, PARAMS)
    cfg, extra, submitted = controls.config_form(PAGE, BASE, FIELDS, extra=controls.grid_form(PAGE, GRID, SETUP.extras))
    cfgs, sizes = None, sorted(extra["sizes"])
    if cfg is not None and sizes:
        cfgs = controls.checked(lambda: experiments.grid(PAGE, cfg, extra))
    if submitted and not sizes:
        st.error(t("Choose at least one batch size."))
    request = (cfg, extra) if submitted and cfgs else None
    out = runner.experiment(
        PAGE, request, t("Press Run to sweep the batch size (takes well under a minute)."), chart=loss_chart
    )
    if out is not None:
        results(out)


main()
