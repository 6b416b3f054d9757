"""Train vs inference: BN normalises with batch statistics in training and with running
averages at inference. The loss gap, the distance between the two statistics, and one sentence
whose outputs change with the batch it sits in."""

import streamlit as st

from core import charts
from core.engine.metrics import BN_METRICS
from core.settings import params as P
from core.studies import experiments
from core.studies.analysis import in_norm_order, last_values
from core.studies.leak import CHANNELS, channel_summary
from ui import controls, pins, runner, share, show
from ui.i18n import t, translated

PAGE = "train_vs_inference"
BASE, FIELDS = experiments.SETUPS[PAGE].base, list(experiments.SETUPS[PAGE].fields)  # batch 2: the gap shows
BN_METRIC_LABELS = {
    "bn_dist_mu": "batch vs running mean: (1/C)·‖μ_B − μ_run‖",
    "bn_dist_var": "batch vs running variance: (1/C)·‖σ²_B − σ²_run‖",
    "tid_mean": "TID of the mean: mean_c |μ_run − μ_B| / σ_B",
    "tid_var": "TID of the std: mean_c |σ_run / σ_B − 1|",
}
EVAL_SERIES = {k: v for k, v in charts.LOSS_SERIES.items() if k != "train_loss"}
PARAMS = (
    controls.form_params(BASE, FIELDS)
    + controls.display_params()
    + [P.choice("metric", tuple(BN_METRIC_LABELS), next(iter(BN_METRIC_LABELS)))]
)


def largest_leaks(summary) -> str:
    """One sentence per batch-statistics norm: its channels (a)-(c) with batch statistics, largest first."""
    rows = summary[(summary["mode"] == "batch_stats") & summary["channel"].isin(CHANNELS[:3])]
    lines = []
    for norm, g in rows.groupby("norm", sort=False):
        if g["max_kl"].max() <= 1e-6:  # float noise: nothing leaks
            continue
        g = g.sort_values("max_kl", ascending=False)
        parts = ", ".join(
            f"{t(charts.CHANNEL_LABELS[c])} {v:.1e}" for c, v in zip(g["channel"], g["max_kl"], strict=True)
        )
        lines.append(t("{norm}, largest KL: {parts}.", norm=t(show.SHORT_LABELS[norm]), parts=parts))
    return " ".join(lines)


def gap_metrics(out: runner.Outcome):
    history = out.data["history"]
    eval_mode = in_norm_order(last_values(history, "eval_loss"))
    batch_stats = last_values(history, "eval_loss_batch_stats")
    dependence = out.data["summary"].set_index("norm")["batch_dependence"] if "summary" in out.data else None
    cols = st.columns(len(eval_mode))
    for col, norm in zip(cols, eval_mode.index, strict=True):
        col.metric(
            t("{norm}: eval mode − batch stats", norm=t(show.SHORT_LABELS[norm])),
            f"{round(eval_mode[norm] - batch_stats[norm], 3) or 0.0:+.3f}",  # no "-0.000"
            help=t("Final held-out loss with running statistics minus with batch statistics (nats/token)"),
        )
        if dependence is not None:
            col.caption(t("batch dependence: max |Δ logit| = {value:.3g}", value=dependence[norm]))


def results(out: runner.Outcome):
    history = out.data["history"]
    gap_metrics(out)
    pins.pin_button(PAGE, out)
    opts = controls.display_options(PAGE)
    left, right = st.columns(2)
    with left:
        gaps = charts.eval_gap_rows(history)
        show.chart(
            charts.step_curves(
                gaps,
                charts.EVAL_GAP_SERIES,
                title=t("Train/inference gap over training"),
                y_title=t("eval-mode minus batch-stats loss (nats/token)"),
                **opts,
            ),
            gaps,
            t(
                "Held-out loss with running averages (as deployed) minus with batch statistics (as in training). "
                "LayerNorm sits at 0: it computes the same thing in both modes."
            ),
            f"{PAGE}_gap",
        )
    with right:
        show.chart(
            charts.step_curves(
                history, EVAL_SERIES, title=t("Held-out loss, both ways"), y_title=charts.HELD_OUT_TITLE, **opts
            ),
            history[history["metric"].isin(list(EVAL_SERIES))],
            t(
                "Batch statistics carry what the batch holds: the other sentences, every sentence's length and its "
                "later tokens (see What moves a sentence's predictions below). With them BatchNorm's batch-stats "
                "loss (dotted) can be optimistically low while its eval-mode loss (dashed) is worse."
            ),
            f"{PAGE}_losses",
        )
    bn_rows = history[history["metric"].isin(BN_METRICS)]
    if bn_rows.empty:
        st.info(t("Add a BatchNorm variant to see the distance between batch and running statistics."))
    else:
        metric = st.selectbox(
            t("statistic"),
            list(BN_METRIC_LABELS),
            format_func=translated(BN_METRIC_LABELS),
            key=f"{PAGE}.metric",
            **controls.PERSIST,
        )
        show.chart(
            charts.step_curves(
                bn_rows,
                {metric: BN_METRIC_LABELS[metric]},
                facet="layer",
                layer=None,
                title=t("Batch statistics vs running statistics, per BN layer"),
                y_title=t(BN_METRIC_LABELS[metric]).split(":")[0],
                **opts,
            ),
            bn_rows[bn_rows["metric"] == metric],
            t(
                "Each training batch's statistics against the running averages inference will use (PowerNorm, "
                "Fig. 2; TID: Wang et al. 2022). Large or spiky values: the model trains on one normalisation and "
                "is served another."
            ),
            f"{PAGE}_bn_stats",
        )
    probe = out.data.get("probe")
    if probe is not None:
        show.chart(
            charts.probe_chart(probe),
            probe,
            t(
                "One held-out sentence placed in 8 different random batches, scored with batch statistics: one line "
                "per batch. Under LayerNorm the lines coincide; under BatchNorm the same sentence gets different "
                "predictions depending on its companions."
            ),
            f"{PAGE}_probe",
        )
    leak = out.data.get("leak")
    if leak is not None and len(leak):
        summary = channel_summary(leak)
        show.chart(
            charts.leak_chart(summary),
            summary,
            t(
                "The KL divergence of a held-out sentence's next-token distributions when one thing changes: "
                "(a) one of its own later tokens, (b) one token of another sentence in its batch, (c) its length "
                "(cut shorter, the rest pads), (d) the batch around it. Causal attention keeps (a) and (c) at 0 for "
                "a per-token norm, and running statistics keep (a) to (c) at 0 for every norm. {leaks}",
                leaks=largest_leaks(summary),
            ),
            f"{PAGE}_leak",
        )
    causality = out.data.get("causality")
    if causality is not None and len(causality):
        show.chart(
            charts.causality_chart(causality),
            causality,
            t(
                "Each cell: the KL divergence of the prediction at position i (row) when the token at position j "
                "(column) of the same sentence is changed, on the longest held-out sentences. Above the diagonal, a "
                "later token changes an earlier prediction: channel (a) above, position by position. Causal "
                "attention forbids it; BatchNorm's batch statistics let it in, and with running statistics it is gone."
            ),
            f"{PAGE}_causality",
        )
    deploy = out.data.get("deploy")
    if deploy is not None and (deploy["norm"] != "ln").any():
        show.chart(
            charts.deploy_chart(deploy),
            deploy,
            t(
                "The held-out loss of each norm with running statistics, batch statistics, statistics re-estimated "
                "after training over 300 training batches (precise BN: as batched in the run, or random), and one "
                "set re-estimated per padded length; dashed line: LayerNorm. Where per-length statistics recover the "
                "batch-statistics loss and no single estimate does, the statistics carry the sentence's length and "
                "the model learned to read it: that is the leak, not a fix, since a model writing a sentence does "
                "not know its length in advance."
            ),
            f"{PAGE}_deploy",
        )
    if "generations" in out.data:
        show.generations(out.data["generations"], f"{PAGE}_generations")
    elif out.config is not None and out.config.attention == "bidirectional":
        st.caption(
            t(
                "A bidirectional model may read every token, so there is no causality map and nothing written; the "
                "train/inference gap and the probe above are what BatchNorm changes here."
            )
        )
    pins.compare(PAGE, out, opts)


def main():
    share.settings(PAGE, PARAMS)
    cfg, _, submitted = controls.config_form(PAGE, BASE, FIELDS)
    request = (cfg, {}) if submitted and cfg is not None else None
    out = runner.experiment(
        PAGE, request, t("Press Run to train BatchNorm, masked BatchNorm and LayerNorm (a few seconds).")
    )
    if out is not None:
        results(out)


main()
