"""Per-token statistics: each token's mean and std before and after a chosen norm layer, at
initialization and after training, and the within- vs between-sequence variance split."""

import pandas as pd
import streamlit as st

from core import charts
from core.settings import params as P
from core.settings.config import LIMITS
from core.studies import experiments
from core.studies.analysis import token_offsets
from ui import controls, runner, share, show
from ui.i18n import t, translated

PAGE = "per_token"
BASE, FIELDS = experiments.SETUPS[PAGE].base, list(experiments.SETUPS[PAGE].fields)  # long-tailed: many pads
WHEN_LABELS = {"trained": "after training", "init": "at initialization"}
# Every norm layer a model of the allowed depths has, in forward order (core.engine.model.norm_layers).
LAYERS = [f"block{i}.norm{j}" for i in range(int(LIMITS["n_layers"][1])) for j in (1, 2)] + ["final"]
PARAMS = controls.form_params(BASE, FIELDS) + [
    P.choice("layer", LAYERS, LAYERS[0]),
    P.choice("when", tuple(WHEN_LABELS), "trained"),
]


def pick(stats: pd.DataFrame) -> tuple[str, str]:
    layers = list(dict.fromkeys(stats["layer"]))
    if st.session_state.get(f"{PAGE}.layer", layers[0]) not in layers:  # from a link, for a model without it
        del st.session_state[f"{PAGE}.layer"]
    cols = st.columns([2, 3])
    layer = cols[0].selectbox(
        t("norm layer"),
        layers,
        key=f"{PAGE}.layer",
        help=t("block{i}.norm1 precedes attention, norm2 the MLP; 'final' precedes the head."),
        **controls.PERSIST,
    )
    when = cols[1].radio(
        t("model"),
        list(WHEN_LABELS),
        format_func=translated(WHEN_LABELS),
        horizontal=True,
        key=f"{PAGE}.when",
        **controls.PERSIST,
    )
    return layer, when


def results(out: runner.Outcome):
    if "stats" not in out.data:
        st.info(t("The run was stopped before training finished; per-token statistics need the trained models."))
        return
    stats, splits = out.data["stats"], out.data["splits"]
    if stats.empty:
        st.info(t("'no norm' has no norm layer to look into: choose another norm."))
        return
    layer, when = pick(stats)
    rows = stats[(stats["layer"] == layer) & (stats["when"] == when)]
    rows = rows.assign(stage=rows["stage"].map(charts.STAGE_LABELS))
    split = splits[(splits["layer"] == layer) & (splits["when"] == when)]
    offsets = token_offsets(stats[(stats["layer"] == layer) & (stats["when"] == when)], split)
    cols = st.columns(len(offsets))
    for col, (norm, row) in zip(cols, offsets.iterrows(), strict=True):
        col.metric(
            t("{norm}: each token off (0, 1)", norm=t(show.SHORT_LABELS[norm])),
            f"{row.per_token:.3f}",
            help=t(
                "After the norm, over each real token's channels: mean |mean| + mean |std − 1|. "
                "LayerNorm's target: 0 under LayerNorm."
            ),
        )
        col.metric(
            t("each channel off (0, 1)"),
            f"{row.per_channel:.3f}",
            help=t(
                "After the norm, over the real tokens of each channel: mean |mean| + mean |std − 1|. "
                "BatchNorm's target: 0 under masked BatchNorm; pads spoil it under naive BatchNorm."
            ),
        )
    where = f"{layer}, {t(WHEN_LABELS[when])}"
    show.chart(
        charts.token_grid(
            rows,
            "mean",
            value_title=t("mean over channels"),
            split="stage",
            diverging=True,
            title=t("Each token's mean over channels ({where})", where=where),
        ),
        rows,
        t(
            "Left: the norm's input; right: its output x̂ (before gain and bias), each with its own colour scale. "
            "After LayerNorm every token's mean is 0; after BatchNorm tokens keep their own offsets, and naive "
            "BatchNorm's pads (×) pull the shared mean."
        ),
        f"{PAGE}_mean",
    )
    show.chart(
        charts.token_grid(
            rows,
            "std",
            value_title=t("std over channels"),
            split="stage",
            title=t("Each token's std over channels ({where})", where=where),
        ),
        rows,
        t(
            "After LayerNorm every token's std is 1 (one flat colour); after BatchNorm it varies from token to token "
            "and from the first position to the rest."
        ),
        f"{PAGE}_std",
    )
    show.chart(
        charts.variance_split_chart(split),
        split,
        t(
            "How much of each channel's variance over real tokens lies between sequences (whole sentences sitting "
            "higher or lower) rather than within them: what a batch statistic mixes."
        ),
        f"{PAGE}_split",
    )


def main():
    share.settings(PAGE, PARAMS)
    cfg, _, submitted = controls.config_form(PAGE, BASE, FIELDS)
    request = (cfg, {}) if submitted and cfg is not None else None
    out = runner.experiment(PAGE, request, t("Press Run to train and look inside the norm layers (a few seconds)."))
    if out is not None:
        results(out)


main()
