"""Can BatchNorm be saved? The papers' fixes (PowerNorm, Batch Renormalization, GroupNorm) against
LayerNorm and BatchNorm, in a decoder and in an encoder, at small and large batches: each fix seen
against each failure (loss as deployed, the train/inference gap, batch dependence)."""

from core import charts
from core.settings.config import ATTENTIONS
from core.studies import experiments
from ui import controls, runner, share, show
from ui.i18n import t

PAGE = "fixes"
SETUP = experiments.SETUPS[PAGE]
BASE, FIELDS = SETUP.base, list(SETUP.fields)
MAX_SEEDS = 3
GRID = (
    controls.GridField("sizes", "batch sizes", controls.BATCH_SIZES, width=3),
    controls.GridField("attentions", "attention", ATTENTIONS, charts.ATTENTION_TITLES, width=3),
    controls.GridField("seeds", "seeds", max_seeds=MAX_SEEDS),
)
PARAMS = controls.form_params(BASE, FIELDS) + controls.grid_params(GRID, SETUP.extras)


def loss_chart(summary):
    return charts.batch_size_chart(
        summary,
        column="attention",
        title=t("Held-out loss as deployed (eval mode)"),
    )


def results(out: runner.Outcome):
    summary = out.data["summary"]  # a stopped grid's outcome holds at least one finished paired run
    show.chart(
        loss_chart(summary),
        summary,
        t(
            "Each fix against LayerNorm and BatchNorm, as it would be deployed (running statistics where a norm "
            "keeps them). Mean over seeds, band from min to max. Look at batch 2: that is where batch statistics "
            "are noisiest."
        ),
        f"{PAGE}_loss",
    )
    gaps = summary.assign(gap=summary["final_eval_loss"] - summary["final_eval_loss_batch_stats"])
    show.chart(
        charts.batch_size_chart(
            gaps,
            y="gap",
            y_title=t("eval-mode minus batch-stats loss (nats/token)"),
            zero_rule=True,
            column="attention",
            title=t("Train/inference gap"),
        ),
        gaps,
        t(
            "Held-out loss with running statistics (as deployed) minus with the statistics of the batch (as in "
            "training). 0 for per-token norms; above 0, a norm trained on one normalisation is served another."
        ),
        f"{PAGE}_gap",
    )
    show.chart(
        charts.dependence_chart(summary, title=t("A sentence's logits across 8 batches")),
        summary[["norm", "attention", "batch_size", "seed", "batch_dependence"]],
        t(
            "Forward: one held-out sentence placed in 8 random batches after training, normalised as in training: "
            "the largest difference of its logits (log axis; exact zeros drawn at 1e-8). BatchNorm depends on the "
            "batch; per-token norms and a warm PowerNorm do not, nor does Batch Renormalization where none of its "
            "corrections is clipped (its training forward then equals its inference forward)."
        ),
        f"{PAGE}_dependence",
    )
    show.chart(
        charts.dependence_chart(
            summary, title=t("The same sentence's gradient across 8 batches"), y="grad_batch_dependence"
        ),
        summary[["norm", "attention", "batch_size", "seed", "grad_batch_dependence"]],
        t(
            "Backward: the same placements, each a training-mode forward and backward of that sentence's own loss; "
            "the relative spread of the parameter gradient (log axis). Batch Renormalization's backward goes "
            "through the batch mean and variance and PowerNorm's approximated backward through the batch's "
            "quadratic mean, so both still learn from a sentence differently with different companions; "
            "LayerNorm and GroupNorm do not."
        ),
        f"{PAGE}_grad_dependence",
    )
    clipped = summary[summary["clipped_share"].notna()]
    if len(clipped):
        cells = clipped.assign(attention=clipped["attention"].map(lambda a: t(charts.ATTENTION_TITLES[a])))
        cells = cells[["attention", "batch_size", "seed", "clipped_share"]].rename(
            columns={
                "attention": t("attention"),
                "batch_size": t("batch size"),
                "seed": t("seed"),
                "clipped_share": t("channel-steps clipped"),
            }
        )
        show.table(
            cells.style.format({t("channel-steps clipped"): "{:.0%}"}),
            t(
                "Batch Renormalization: the share of its channel-steps over training whose r or d was at its bound "
                "(per step: the metric renorm_clipped). Its first 50 steps are plain BatchNorm (every channel "
                "clipped); a clipped channel normalises with the batch's statistics."
            ),
            f"{PAGE}_clipped",
            data=clipped[["attention", "batch_size", "seed", "clipped_share"]],
        )


def main():
    share.settings(PAGE, PARAMS)
    cfg, extra, submitted = controls.config_form(PAGE, BASE, FIELDS, extra=controls.grid_form(PAGE, GRID, SETUP.extras))
    cfgs = None
    if cfg is not None:
        cfgs = controls.checked(lambda: experiments.grid(PAGE, cfg, extra))
    request = (cfg, extra) if submitted and cfgs else None
    out = runner.experiment(
        PAGE,
        request,
        t(
            "Press Run to train LayerNorm, BatchNorm and the three fixes side by side in a decoder and an "
            "encoder, at batch 2 and 32 (about half a minute)."
        ),
        chart=loss_chart,
    )
    if out is not None:
        results(out)


main()
