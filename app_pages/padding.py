"""Padding and lengths: naive BN vs masked BN vs LN across length distributions and batching,
and the pad-length probe: the same batch padded longer, and how far each real token moves."""

import streamlit as st

from core import charts
from core.analysis import compares_to_layer_norm, in_norm_order, pad_probe, pad_probe_batch
from core.config import BATCHING, LENGTHS, RunConfig
from core.sweep import sweep_configs
from ui import controls, runner, show

PAGE = "padding"
BASE = RunConfig(norms=("bn", "masked_bn", "ln"), batch_size=4, steps=100, eval_every=100)
FIELDS = ["norms", "batch_size", "length_range", "steps", "lr"]


def grid() -> dict:
    cols = st.columns([2, 2, 1])
    pills = {"selection_mode": "multi", **controls.PERSIST}
    return {
        "lengths": cols[0].pills(
            "length distributions",
            LENGTHS,
            default=list(LENGTHS),
            key=f"{PAGE}.lengths",
            format_func=controls.LENGTH_LABELS.get,
            **pills,
        ),
        "batching": cols[1].pills(
            "batching",
            BATCHING,
            default=list(BATCHING),
            key=f"{PAGE}.batching",
            format_func=controls.BATCHING_LABELS.get,
            **pills,
        ),
        "seeds": cols[2].slider("seeds", 1, 3, 1, key=f"{PAGE}.seeds", **controls.PERSIST),
    }


def configs(cfg: RunConfig, extra: dict) -> list[RunConfig]:
    """The lengths x batching x seeds grid; fixed lengths have no pads, so bucketing them is skipped."""
    cfgs = []
    for batching in extra["batching"]:
        lengths = [ln for ln in extra["lengths"] if batching == "random" or ln != "fixed"]
        if lengths:
            cfgs += sweep_configs(cfg.replace(batching=batching), lengths=lengths, seeds=range(extra["seeds"]))
    return cfgs


def probe_config(cfgs: list[RunConfig]) -> RunConfig | None:
    """The paired run whose models the pad-length probe uses: the first with variable lengths
    (uniform lengths, random batching by default), so its batches hold real pads."""
    return next((c for c in cfgs if c.lengths != "fixed"), None)


def loss_chart(summary):
    return charts.padding_chart(summary, title="Final held-out loss per length distribution and batching")


def work(live: runner.Live, cfgs: list[RunConfig]) -> dict:
    probe_cfg, models = probe_config(cfgs), {}

    def keep_probe_models(result):
        if result.config == probe_cfg:
            models.update(result.models)

    summary = runner.sweep(live, cfgs, loss_chart, on_result=keep_probe_models)
    batch = pad_probe_batch(probe_cfg) if probe_cfg else None
    if batch is None:
        return {"summary": summary}
    return {"summary": summary, "probe": pad_probe(models, batch, probe_cfg.max_len)}


def results(out: runner.Outcome):
    summary = out.data["summary"]
    if summary.empty:
        st.info("No paired run finished before the stop.")
    else:
        show.chart(
            loss_chart(summary),
            summary,
            "Each panel: one batching; along the axis, the length distributions with the padding they cause. "
            "Each setting has its own held-out sentences, so compare norms within a setting.",
            f"{PAGE}_loss",
        )
        if compares_to_layer_norm(summary):
            gaps = charts.gap_to(summary)
            show.chart(
                charts.padding_chart(
                    gaps,
                    y="gap",
                    y_title="loss minus LayerNorm's (nats/token)",
                    zero_rule=True,
                    title="Gap to LayerNorm in the same run",
                ),
                gaps,
                "LayerNorm is the zero line: it never sees pads. Masking removes the pads from BatchNorm's "
                "statistics but leaves fewer values in them. Bucketing removes most pads but puts sentences of one "
                "length in each batch, so BatchNorm's batch statistics carry the length (when the sentence ends): "
                "a shortcut the model learns and loses at inference, with running averages.",
                f"{PAGE}_gap",
            )
    if "probe" in out.data:
        probe = out.data["probe"]
        st.subheader("Pad-length probe: the same batch, padded longer")
        show.chart(
            charts.token_grid(
                probe,
                "movement",
                value_title="max |Δ logit|",
                title="How far each real token's output moves when its batch gets more pads",
            ),
            probe,
            "Short held-out sentences padded to their longest, then to the maximum length, scored with batch "
            "statistics. Naive BatchNorm's outputs move (the pads shift its statistics); masked BatchNorm "
            "and LayerNorm stay at exactly 0. × = pad.",
            f"{PAGE}_probe",
        )
        moved = in_norm_order(probe.groupby("norm")["movement"].max())
        cols = st.columns(len(moved))
        for col, (norm, value) in zip(cols, moved.items(), strict=True):
            col.metric(f"{show.SHORT_LABELS[norm]}: largest move", f"{value:.3g}")


def main():
    st.title("Padding and lengths")
    st.caption(
        "Pads are not tokens, yet naive BatchNorm counts them in every channel's mean and variance. Sweep the "
        "length distribution and batching, then see the pad-length probe. Default: 5 paired runs of "
        f"{BASE.steps} steps, well under a minute."
    )
    cfg, extra, submitted = controls.config_form(PAGE, BASE, FIELDS, extra=grid)
    cfgs = None
    if cfg is not None:
        cfg = cfg.replace(eval_every=cfg.steps)  # the sweep needs the final score only
        cfgs = controls.checked(lambda: configs(cfg, extra))
    job = None
    if submitted and cfgs:
        title = (
            f"{controls.describe(cfg, omit=('lengths', 'batching', 'seed', 'task'))} · lengths "
            f"{', '.join(extra['lengths'])} · batching {', '.join(extra['batching'])} · {extra['seeds']} seed(s)"
        )
        job = runner.Job(f"{cfg.config_id}:{extra}", title, lambda live: work(live, cfgs))
    elif submitted:
        st.error("Choose at least one length distribution and one batching.")
    out = runner.experiment(PAGE, job, "Press Run to sweep length distributions and batching (well under a minute).")
    if out is not None:
        results(out)


main()
