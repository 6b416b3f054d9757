"""Gradients: global and per-block gradient norms over training, and per-layer gradient norms
at initialization for Pre- vs Post-norm placement (Xiong et al. 2020)."""

import streamlit as st

from core import charts
from core.settings import params as P
from core.settings.config import LIMITS
from core.studies import experiments
from ui import controls, pins, runner, share, show
from ui.i18n import t

PAGE = "gradients"
SETUP = experiments.SETUPS[PAGE]
BASE, FIELDS = SETUP.base, list(SETUP.fields)
PROFILE_LAYERS = SETUP.extras["layers"]  # deep enough for Post-norm's growth towards the output to show
MAX_LAYERS = int(LIMITS["n_layers"][1])
PARAMS = (
    controls.form_params(BASE, FIELDS)
    + [P.integer("layers", 2, MAX_LAYERS, PROFILE_LAYERS)]
    + controls.display_params(log_default=True)
)


def depth() -> dict:
    return {
        "layers": st.slider(
            t("layers for the initialization profile"),
            2,
            MAX_LAYERS,
            PROFILE_LAYERS,
            key=f"{PAGE}.layers",
            help=t("The profile uses a deeper model than the training run."),
            **controls.PERSIST,
        )
    }


def results(out: runner.Outcome):
    history = out.data["history"]
    pins.pin_button(PAGE, out)
    opts = controls.display_options(PAGE, log_default=True)
    show.chart(
        charts.grad_norm_curves(history, title=t("Global gradient norm (before clipping)"), **opts),
        history[history["metric"] == "grad_norm"],
        t("Global gradient norm before clipping (the run clips at 1). Compare the level and the spikes across norms."),
        f"{PAGE}_global",
    )
    show.chart(
        charts.block_heatmap(history),
        history[history["metric"] == "grad_norm_block"],
        t(
            "Which part of the model the gradient flows into, step by step (colour on a log scale, steps binned): "
            "look for blocks that go dark (vanishing) or bright (exploding) under one norm only."
        ),
        f"{PAGE}_blocks",
    )
    if "profile" in out.data:
        profile = out.data["profile"]
        show.chart(
            charts.init_grad_chart(profile, log_y=opts["log_y"]),
            profile,
            t(
                "At step 0, averaged over 4 batches. Pre-norm: every block gets a gradient of similar size. "
                "Post-norm: the norm sits on the residual path, and the gradient reaching the blocks differs by "
                "orders of magnitude from the embeddings' and the head's: the uneven start that makes it need "
                "warm-up (Xiong et al. 2020)."
            ),
            f"{PAGE}_init",
        )
    pins.compare(PAGE, out, opts)


def main():
    share.settings(PAGE, PARAMS)
    cfg, extra, submitted = controls.config_form(PAGE, BASE, FIELDS, extra=depth)
    request = (cfg, {"layers": extra["layers"]}) if submitted and cfg is not None else None
    out = runner.experiment(PAGE, request, t("Press Run to train and record gradient norms (a few seconds)."))
    if out is not None:
        results(out)


main()
