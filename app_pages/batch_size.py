"""Batch size: final held-out loss vs batch size per norm, mean and band over seeds."""

import streamlit as st

from core import charts
from core.analysis import compares_to_layer_norm
from core.config import RunConfig
from core.sweep import sweep_configs
from ui import controls, runner, show

PAGE = "batch_size"
# Short runs, scored once at the end: 5 batch sizes x 2 seeds finish in well under a minute.
BASE = RunConfig(steps=100, eval_every=100)
FIELDS = ["task", "norms", "lengths", "batching", "steps", "lr"]
SIZES = (2, 4, 8, 16, 32)
SEEDS = 2


def grid() -> dict:
    cols = st.columns([3, 1])
    return {
        "batch_sizes": cols[0].pills(
            "batch sizes",
            controls.BATCH_SIZES,
            selection_mode="multi",
            default=list(SIZES),
            key=f"{PAGE}.sizes",
            **controls.PERSIST,
        ),
        "seeds": cols[1].slider("seeds per batch size", 1, 5, SEEDS, key=f"{PAGE}.seeds", **controls.PERSIST),
    }


def loss_chart(summary):
    return charts.sweep_chart(
        summary,
        x="batch_size",
        x_title="batch size (sequences, log2 axis)",
        log2_x=True,
        title="Final held-out loss vs batch size",
    )


def gap_chart(gaps):
    return charts.sweep_chart(
        gaps,
        x="batch_size",
        x_title="batch size (sequences, log2 axis)",
        log2_x=True,
        y="gap",
        y_title="held-out loss minus LayerNorm's (nats/token)",
        zero_rule=True,
        title="Gap to LayerNorm in the same run",
    )


def results(out: runner.Outcome):
    summary = out.data["summary"]
    if summary.empty:
        st.info("No paired run finished before the stop.")
        return
    left, right = st.columns(2)
    with left:
        show.chart(
            loss_chart(summary),
            summary,
            "Mean over seeds, band from min to max. LayerNorm's curve is the control: it normalises each "
            "token alone, and falls with batch size only because bigger batches see more sentences.",
            f"{PAGE}_loss",
        )
    with right:
        if compares_to_layer_norm(summary):
            gaps = charts.gap_to(summary)
            show.chart(
                gap_chart(gaps),
                gaps,
                "BatchNorm's gap to LayerNorm widens as the batch shrinks: fewer values per batch statistic, "
                "noisier normalisation (Group Norm paper, Fig. 1).",
                f"{PAGE}_gap",
            )
        else:
            st.info("Include LayerNorm and another norm to see the gap chart.")


def main():
    st.title("Batch size")
    st.caption(
        "The Group Norm figure, live: final held-out loss against batch size for each norm. The default "
        f"sweep ({len(SIZES)} batch sizes × {SEEDS} seeds × {BASE.steps} steps) takes well under a minute; "
        "raise steps or seeds for smoother curves."
    )
    cfg, extra, submitted = controls.config_form(PAGE, BASE, FIELDS, extra=grid)
    cfgs = None
    if cfg is not None:
        cfg = cfg.replace(eval_every=cfg.steps)  # the sweep needs the final score only
        cfgs = controls.checked(
            lambda: sweep_configs(cfg, batch_sizes=sorted(extra["batch_sizes"]), seeds=range(extra["seeds"]))
        )
    job = None
    sizes = sorted(extra["batch_sizes"])
    if submitted and cfgs and sizes:
        title = (
            f"{controls.describe(cfg, omit=('batch_size', 'seed'))} · batch sizes {sizes} · {extra['seeds']} seed(s)"
        )
        key = f"{cfg.config_id}:{sizes}:{extra['seeds']}"
        job = runner.Job(key, title, lambda live: {"summary": runner.sweep(live, cfgs, loss_chart)})
    elif submitted and not sizes:
        st.error("Choose at least one batch size.")
    out = runner.experiment(PAGE, job, "Press Run to sweep the batch size (takes well under a minute).")
    if out is not None:
        results(out)


main()
