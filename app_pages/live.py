"""Live comparison: any norms, trained in lockstep from the same init on the same batches."""

import streamlit as st

from core import charts
from core.engine.metrics import with_config
from core.studies import experiments
from core.studies.analysis import compares_to_layer_norm
from ui import controls, pins, runner, share, show, upload
from ui.i18n import t

PAGE = "live"
BASE, FIELDS = experiments.SETUPS[PAGE].base, list(experiments.SETUPS[PAGE].fields)  # batch 2, long-tailed lengths
PARAMS = controls.form_params(BASE, FIELDS) + controls.display_params()


def results(out: runner.Outcome):
    history = out.data["history"]
    show.run_metrics(history, out.seconds, tail=BASE.eval_every)
    pins.pin_button(PAGE, out)
    opts = controls.display_options(PAGE)
    left, right = st.columns(2)
    with left:
        loss_rows = history[history["metric"].isin(list(charts.LOSS_SERIES))]
        show.chart(
            charts.loss_curves(history, title=t("Loss"), **opts),
            loss_rows,
            t(
                "Solid: the training batch's loss (faint: raw); dashed: held-out loss in eval mode, as deployed; "
                "dotted: held-out with batch statistics. Look for BatchNorm's dashed line above LayerNorm's, and its "
                "dotted line below: batch statistics flatter it (see Train vs inference)."
            ),
            "live_loss",
        )
    with right:
        grad_rows = history[history["metric"] == "grad_norm"]
        show.chart(
            charts.grad_norm_curves(history, title=t("Global gradient norm (before clipping)"), **opts),
            grad_rows,
            t(
                "Global gradient norm before clipping (clipped at 1). Spikes and drift show which norm trains less "
                "smoothly."
            ),
            "live_grad_norm",
        )
    if compares_to_layer_norm(history):
        gaps = charts.eval_gaps_to_layer_norm(history)
        show.chart(
            charts.gap_curves(history, title=t("Held-out loss minus LayerNorm's"), x=opts["x"]),
            gaps,
            t(
                "The held-out gap to LayerNorm, zoomed in: above the grey zero line a norm is worse than LayerNorm. "
                "Dashed: eval mode, as deployed; dotted: with batch statistics."
            ),
            "live_gap",
        )
    if "generations" in out.data:
        show.generations(out.data["generations"], "live_generations")
    elif out.config is not None and out.config.attention == "bidirectional":
        st.caption(t("A bidirectional model predicts hidden tokens: it does not write, so there are no generations."))
    pins.compare(PAGE, out, opts)
    with st.expander(t("Export: summary and full history")):
        if "summary" in out.data:
            st.dataframe(out.data["summary"], width="stretch")
        st.download_button(
            t("full history CSV (every metric, every step, every setting)"),
            lambda: with_config(history, out.config).to_csv(index=False),  # made on click
            "live_history.csv",
            "text/csv",
            key="csv.live_history",
            on_click="ignore",
            icon=":material/download:",
        )


def main():
    share.settings(PAGE, PARAMS)
    upload.uploader(PAGE)
    cfg, _, submitted = controls.config_form(PAGE, BASE, FIELDS)
    request = (cfg, {}) if submitted and cfg is not None else None
    out = runner.experiment(
        PAGE,
        request,
        t(
            "Press Run to train the default comparison: BatchNorm vs LayerNorm on batches of 2 mostly short, padded "
            "sentences (a few seconds)."
        ),
    )
    if out is not None:
        results(out)


main()
