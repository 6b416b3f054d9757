"""Widgets -> RunConfig: the experiment form every page uses, and the chart display options.

The form batches its widgets (``st.form``), so moving a slider neither reruns the page nor
interrupts a run. Values persist for the session (a visitor who leaves a page finds their settings
again) and are bound to the URL (a link shares them). Every value goes through ``RunConfig`` validation: a bad combination shows an
error naming the setting, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core.charts import PLACEMENT_LABELS
from core.config import BATCHING, LENGTHS, LIMITS, NORM_LABELS, NORMS, PLACEMENTS, TASKS, ConfigError, RunConfig

TASK_LABELS = {
    "text": "text: variable-length sentences, padded",
    "control": "control: fixed length, no pads (BN-friendly)",
}
LENGTH_LABELS = {"fixed": "fixed (no pads)", "uniform": "uniform", "longtail": "long tail (many pads)"}
BATCHING_LABELS = {"random": "random", "bucketed": "bucketed by length"}
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)

# What the error message calls a setting (ConfigError.field -> words on the form).
FIELD_LABELS = {
    "task": "task",
    "norms": "norms",
    "batch_size": "batch size",
    "lengths": "sentence lengths",
    "min_len": "sentence length range",
    "max_len": "sentence length range",
    "batching": "batching",
    "placement": "norm placement",
    "steps": "training steps",
    "lr": "learning rate",
    "seed": "seed",
    "sweep": "sweep size",
}

# Settings live in the URL (a link shares them) and survive a visit to another page.
PERSIST = {"persist_state": "session", "bind": "query-params"}
DEFAULT_SMOOTH = 0.85  # one-batch losses at batch 2 are very noisy


def _choice(field: str, label: str, options: tuple[str, ...], labels: dict[str, str], help: str | None = None):
    """A selectbox for one of the config's choice fields, labelled for people, bound to the URL."""

    def widget(key: str, cfg: RunConfig) -> dict:
        value = st.selectbox(
            label,
            options,
            index=options.index(getattr(cfg, field)),
            format_func=labels.get,
            key=key,
            help=help,
            **PERSIST,
        )
        return {field: value}

    return widget


def _norms(key: str, cfg: RunConfig) -> dict:
    value = st.pills(
        "norms",
        NORMS,
        selection_mode="multi",
        default=list(cfg.norms),
        format_func=NORM_LABELS.get,
        key=key,
        help="Trained side by side from the same initial weights on the same batches.",
        **PERSIST,
    )
    return {"norms": tuple(n for n in NORMS if n in value)}  # legend order, whatever the click order


def _batch_size(key: str, cfg: RunConfig) -> dict:
    return {
        "batch_size": st.select_slider("batch size (sequences)", BATCH_SIZES, value=cfg.batch_size, key=key, **PERSIST)
    }


def _length_range(key: str, cfg: RunConfig) -> dict:
    lo, hi = LIMITS["max_len"]
    low, high = st.slider(
        "sentence length range (tokens)", int(lo), int(hi), (cfg.min_len, cfg.max_len), key=key, **PERSIST
    )
    return {"min_len": low, "max_len": high}


def _steps(key: str, cfg: RunConfig) -> dict:
    lo, hi = LIMITS["steps"]
    return {"steps": st.number_input("training steps", int(lo), int(hi), cfg.steps, step=50, key=key, **PERSIST)}


def _lr(key: str, cfg: RunConfig) -> dict:
    value = st.select_slider(
        "peak learning rate",
        LEARNING_RATES,
        value=cfg.lr,
        format_func="{:g}".format,
        key=key,
        help="AdamW; linear warm-up, then cosine decay.",
        **PERSIST,
    )
    return {"lr": value}


def _seed(key: str, cfg: RunConfig) -> dict:
    lo, hi = LIMITS["seed"]
    return {
        "seed": st.number_input(
            "seed", int(lo), int(hi), cfg.seed, key=key, help="Initial weights and data order.", **PERSIST
        )
    }


# The form's widgets by field name ("norms" is drawn on its own row, see config_form).
WIDGETS: dict[str, Callable[[str, RunConfig], dict]] = {
    "task": _choice("task", "task", TASKS, TASK_LABELS, "The control task needs sentence lengths = fixed."),
    "batch_size": _batch_size,
    "lengths": _choice(
        "lengths", "sentence lengths", LENGTHS, LENGTH_LABELS, "Batches are padded to their longest sentence."
    ),
    "length_range": _length_range,
    "batching": _choice("batching", "batching", BATCHING, BATCHING_LABELS),
    "placement": _choice("placement", "norm placement", PLACEMENTS, PLACEMENT_LABELS),
    "steps": _steps,
    "lr": _lr,
    "seed": _seed,
}


def describe(cfg: RunConfig, omit: tuple[str, ...] = ()) -> str:
    """One line naming the settings of a run, for the header of its results; ``omit`` leaves out
    settings a sweep varies."""
    lengths = "fixed" if cfg.lengths == "fixed" else f"{cfg.lengths} {cfg.min_len}–{cfg.max_len}"
    parts = {
        "norms": ", ".join(NORM_LABELS[n] for n in cfg.norms),
        "task": f"{cfg.task} task",
        "batch_size": f"batch {cfg.batch_size}",
        "lengths": f"lengths {lengths}",
        "batching": f"{cfg.batching} batching",
        "placement": f"{cfg.placement}-norm",
        "steps": f"{cfg.steps} steps",
        "lr": f"lr {cfg.lr:g}",
        "seed": f"seed {cfg.seed}",
    }
    return " · ".join(text for field, text in parts.items() if field not in omit)


def show_config_error(err: ConfigError):
    st.error(f"**{FIELD_LABELS.get(err.field, err.field)}**: {err.detail}", icon=":material/error:")


def config_form(
    page: str,
    base: RunConfig,
    fields: list[str],
    extra: Callable[[], dict[str, Any]] | None = None,
) -> tuple[RunConfig | None, dict[str, Any], bool]:
    """The page's settings form: ``fields`` ("norms" and keys of WIDGETS) over ``base``, plus the page's own
    ``extra`` widgets (their values returned as a dict). Returns (config or None if invalid,
    extra values, whether Run was pressed with valid settings)."""
    values: dict[str, Any] = {}
    with st.form(f"{page}.form"):
        if "norms" in fields:  # the main choice gets a full-width row of toggles
            values.update(_norms(f"{page}.norms", base))
        cols = st.columns(4)
        for i, field in enumerate(f for f in fields if f != "norms"):
            with cols[i % 4]:
                values.update(WIDGETS[field](f"{page}.{field}", base))
        extras = extra() if extra else {}
        submitted = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:", key=f"{page}.run")
    try:
        cfg = base.replace(**values)
    except ConfigError as err:
        show_config_error(err)
        return None, extras, False
    return cfg, extras, submitted


def checked(make: Callable[[], Any]) -> Any:
    """``make()``, or None after showing the error if it raised a ConfigError (e.g. a sweep grid)."""
    try:
        return make()
    except ConfigError as err:
        show_config_error(err)
        return None


def display_options(page: str, log_default: bool = False) -> dict[str, Any]:
    """Smoothing, log y-axis, and steps or tokens seen on the x axis. Outside the form: they only
    redraw charts from stored results, so they apply at once."""
    cols = st.columns([3, 2, 2, 3])
    return {
        "smooth": cols[0].slider(
            "smoothing (EMA)",
            0.0,
            0.99,
            DEFAULT_SMOOTH,
            0.01,
            key=f"{page}.smooth",
            help="The raw curve stays, faint, under the smoothed one.",
            **PERSIST,
        ),
        "log_y": cols[1].toggle("log y-axis", log_default, key=f"{page}.log_y", **PERSIST),
        "x": cols[2].radio(
            "x axis",
            ["step", "tokens"],
            horizontal=True,
            key=f"{page}.x",
            format_func={"step": "steps", "tokens": "tokens seen"}.get,
            **PERSIST,
        ),
    }


def smoothing(page: str) -> float:
    """The page's current smoothing, for a live chart drawn before the options are."""
    return st.session_state.get(f"{page}.smooth", DEFAULT_SMOOTH)
