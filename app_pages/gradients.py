"""Gradients: global and per-block gradient norms over training, and per-layer gradient norms
at initialization for Pre- vs Post-norm placement (Xiong et al. 2020)."""

import streamlit as st

from core import charts
from core.config import RunConfig
from core.sweep import init_grad_profile
from ui import controls, runner, show

PAGE = "gradients"
BASE = RunConfig(steps=200)
FIELDS = ["norms", "placement", "batch_size", "lengths", "steps", "lr", "seed"]
PROFILE_LAYERS = 6  # deep enough for Post-norm's growth towards the output to show


def depth() -> dict:
    return {
        "layers": st.slider(
            "layers for the initialization profile",
            2,
            8,
            PROFILE_LAYERS,
            key=f"{PAGE}.layers",
            help="The profile uses a deeper model than the training run.",
            **controls.PERSIST,
        )
    }


def work(live: runner.Live, cfg: RunConfig, layers: int) -> dict:
    res = runner.train(live, cfg, smooth=controls.smoothing(PAGE))
    live.progress(1.0, "gradients at initialization, Pre and Post…")
    return {"history": res.history, "profile": init_grad_profile(cfg.replace(n_layers=layers))}


def results(out: runner.Outcome):
    history = out.data["history"]
    opts = controls.display_options(PAGE, log_default=True)
    show.chart(
        charts.grad_norm_curves(history, **opts),
        history[history["metric"] == "grad_norm"],
        "Global gradient norm before clipping (the run clips at 1). Compare the level and the spikes across norms.",
        f"{PAGE}_global",
    )
    show.chart(
        charts.block_heatmap(history),
        history[history["metric"] == "grad_norm_block"],
        "Which part of the model the gradient flows into, step by step (colour on a log scale, steps binned): "
        "look for blocks that go dark (vanishing) or bright (exploding) under one norm only.",
        f"{PAGE}_blocks",
    )
    if "profile" in out.data:
        profile = out.data["profile"]
        show.chart(
            charts.init_grad_chart(profile, log_y=opts["log_y"]),
            profile,
            "At step 0, averaged over 4 batches. Pre-norm: every block gets a gradient of similar size. Post-norm: "
            "the norm sits on the residual path, and the gradient reaching the blocks differs by orders of "
            "magnitude from the embeddings' and the head's: the uneven start that makes it need warm-up "
            "(Xiong et al. 2020).",
            f"{PAGE}_init",
        )


def main():
    st.title("Gradients")
    st.caption("Gradient norms over training, per block, and at initialization for Pre- vs Post-norm.")
    cfg, extra, submitted = controls.config_form(PAGE, BASE, FIELDS, extra=depth)
    job = None
    if submitted:
        title = f"{controls.describe(cfg)} · init profile with {extra['layers']} layers"
        job = runner.Job(f"{cfg.config_id}:{extra['layers']}", title, lambda live: work(live, cfg, extra["layers"]))
    out = runner.experiment(PAGE, job, "Press Run to train and record gradient norms (a few seconds).")
    if out is not None:
        results(out)


main()
