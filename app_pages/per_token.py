"""Per-token statistics: each token's mean and std before and after a chosen norm layer, at
initialization and after training, and the within- vs between-sequence variance split."""

import pandas as pd
import streamlit as st

from core import charts
from core.analysis import token_offsets, token_statistics
from core.config import RunConfig
from core.data import VOCAB_SIZE
from core.model import build_models
from ui import controls, runner, show

PAGE = "per_token"
BASE = RunConfig(norms=("bn", "masked_bn", "ln"), lengths="longtail", steps=150)  # many pads to see
FIELDS = ["task", "norms", "batch_size", "lengths", "batching", "placement", "steps", "seed"]
WHEN_LABELS = {"trained": "after training", "init": "at initialization"}


def work(live: runner.Live, cfg: RunConfig) -> dict:
    res = runner.train(live, cfg, smooth=controls.smoothing(PAGE))
    stats_init, split_init = token_statistics(build_models(cfg, VOCAB_SIZE), cfg, "init")
    stats_trained, split_trained = token_statistics(res.models, cfg, "trained")
    return {
        "history": res.history,
        "stats": pd.concat([stats_init, stats_trained], ignore_index=True),
        "splits": pd.concat([split_init, split_trained], ignore_index=True),
    }


def pick(stats: pd.DataFrame) -> tuple[str, str]:
    layers = list(dict.fromkeys(stats["layer"]))
    cols = st.columns([2, 3])
    layer = cols[0].selectbox(
        "norm layer",
        layers,
        key=f"{PAGE}.layer",
        help="block{i}.norm1 precedes attention, norm2 the MLP; 'final' precedes the head.",
    )
    when = cols[1].radio("model", list(WHEN_LABELS), format_func=WHEN_LABELS.get, horizontal=True, key=f"{PAGE}.when")
    return layer, when


def results(out: runner.Outcome):
    if "stats" not in out.data:
        st.info("The run was stopped before training finished; per-token statistics need the trained models.")
        return
    stats, splits = out.data["stats"], out.data["splits"]
    if stats.empty:
        st.info("'no norm' has no norm layer to look into: choose another norm.")
        return
    layer, when = pick(stats)
    rows = stats[(stats["layer"] == layer) & (stats["when"] == when)]
    rows = rows.assign(stage=rows["stage"].map(charts.STAGE_LABELS))
    split = splits[(splits["layer"] == layer) & (splits["when"] == when)]
    offsets = token_offsets(stats[(stats["layer"] == layer) & (stats["when"] == when)], split)
    cols = st.columns(len(offsets))
    for col, (norm, row) in zip(cols, offsets.iterrows(), strict=True):
        col.metric(
            f"{show.SHORT_LABELS[norm]}: each token off (0, 1)",
            f"{row.per_token:.3f}",
            help="After the norm, over each real token's channels: mean |mean| + mean |std − 1|. "
            "LayerNorm's target: 0 under LayerNorm.",
        )
        col.metric(
            "each channel off (0, 1)",
            f"{row.per_channel:.3f}",
            help="After the norm, over the real tokens of each channel: mean |mean| + mean |std − 1|. "
            "BatchNorm's target: 0 under masked BatchNorm; pads spoil it under naive BatchNorm.",
        )
    where = f"{layer}, {WHEN_LABELS[when]}"
    show.chart(
        charts.token_grid(
            rows,
            "mean",
            value_title="mean over channels",
            split="stage",
            diverging=True,
            title=f"Each token's mean over channels ({where})",
        ),
        rows,
        "Left: the norm's input; right: its output x̂ (before gain and bias), each with its own colour scale. After LayerNorm every token's mean is 0; "
        "after BatchNorm tokens keep their own offsets, and naive BatchNorm's pads (×) pull the shared mean.",
        f"{PAGE}_mean",
    )
    show.chart(
        charts.token_grid(
            rows,
            "std",
            value_title="std over channels",
            split="stage",
            title=f"Each token's std over channels ({where})",
        ),
        rows,
        "After LayerNorm every token's std is 1 (one flat colour); after BatchNorm it varies from token to token "
        "and from the first position to the rest.",
        f"{PAGE}_std",
    )
    show.chart(
        charts.variance_split_chart(split),
        split,
        "How much of each channel's variance over real tokens lies between sequences (whole sentences sitting "
        "higher or lower) rather than within them: what a batch statistic mixes.",
        f"{PAGE}_split",
    )


def main():
    st.title("Per-token statistics")
    st.caption(
        "Train a run, then pick a norm layer: each token's mean and standard deviation over its channels, "
        "before and after the norm, for one held-out batch of the training size (batch statistics)."
    )
    cfg, _, submitted = controls.config_form(PAGE, BASE, FIELDS)
    job = runner.Job(cfg.config_id, controls.describe(cfg), lambda live: work(live, cfg)) if submitted else None
    out = runner.experiment(PAGE, job, "Press Run to train and look inside the norm layers (a few seconds).")
    if out is not None:
        results(out)


main()
