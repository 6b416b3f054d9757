"""Widgets -> RunConfig: the experiment form every page uses, and the chart display options.

The form batches its widgets (``st.form``), so moving a slider neither reruns the page nor
interrupts a run. Values persist for the session (a visitor who leaves a page finds their settings
again) and travel in the URL (``form_params``, read and written by ui/share.py). Every value goes through ``RunConfig`` validation: a bad combination shows an
error naming the setting, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import streamlit as st

from core import params as P
from core.charts import PLACEMENT_LABELS
from core.config import (
    ATTENTIONS,
    BATCHING,
    LENGTHS,
    LIMITS,
    NORM_LABELS,
    NORMS,
    PLACEMENTS,
    ConfigError,
    RunConfig,
    lengths_for,
)
from core.tasks import TASKS
from ui import upload
from ui.i18n import t, translated
from ui.present import presenting

TASK_LABELS = {key: task.labels["en"] for key, task in TASKS.items()}  # translated from the records (ui/i18n.py)
LENGTH_LABELS = {
    "fixed": "fixed (no pads)",
    "uniform": "uniform",
    "longtail": "long tail (many pads)",
    "natural": "natural (a real text's own lines)",
}
BATCHING_LABELS = {"random": "random", "bucketed": "bucketed by length"}
ATTENTION_LABELS = {
    "causal": "causal: predict the next token (a decoder)",
    "bidirectional": "bidirectional: predict hidden tokens (an encoder)",
}
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
    "attention": "attention",
    "steps": "training steps",
    "lr": "learning rate",
    "seed": "seed",
    "sweep": "sweep size",
    "corpus": "your own text",
}

# Settings survive a visit to another page. They travel in the URL through ui/share.py, not through
# Streamlit's bind="query-params", which puts the on-screen (translated) label in the link.
PERSIST = {"persist_state": "session"}
DEFAULT_SMOOTH = 0.85  # one-batch losses at batch 2 are very noisy
X_LABELS = {"step": "steps", "tokens": "tokens seen"}


def _choice(field: str, label: str, options: tuple[str, ...], labels: dict[str, str], help: str | None = None):
    """A selectbox for one of the config's choice fields, labelled for people; ``label``, ``labels``
    and ``help`` are English, shown translated."""

    def widget(key: str, cfg: RunConfig) -> dict:
        value = st.selectbox(
            t(label),
            options,
            index=options.index(getattr(cfg, field)),
            format_func=translated(labels),
            key=key,
            help=help and t(help),
            **PERSIST,
        )
        return {field: value}

    return widget


def _norms(key: str, cfg: RunConfig) -> dict:
    value = st.pills(
        t("norms"),
        NORMS,
        selection_mode="multi",
        default=list(cfg.norms),
        format_func=translated(NORM_LABELS),
        key=key,
        help=t("Trained side by side from the same initial weights on the same batches."),
        **PERSIST,
    )
    return {"norms": tuple(n for n in NORMS if n in value)}  # legend order, whatever the click order


def _batch_size(key: str, cfg: RunConfig) -> dict:
    return {
        "batch_size": st.select_slider(
            t("batch size (sequences)"), BATCH_SIZES, value=cfg.batch_size, key=key, **PERSIST
        )
    }


def _length_range(key: str, cfg: RunConfig) -> dict:
    lo, hi = LIMITS["max_len"]
    low, high = st.slider(
        t("sentence length range (tokens)"), int(lo), int(hi), (cfg.min_len, cfg.max_len), key=key, **PERSIST
    )
    return {"min_len": low, "max_len": high}


def _steps(key: str, cfg: RunConfig) -> dict:
    lo, hi = LIMITS["steps"]
    return {"steps": st.number_input(t("training steps"), int(lo), int(hi), cfg.steps, step=50, key=key, **PERSIST)}


def _lr(key: str, cfg: RunConfig) -> dict:
    value = st.select_slider(
        t("peak learning rate"),
        LEARNING_RATES,
        value=cfg.lr,
        format_func="{:g}".format,
        key=key,
        help=t("AdamW; linear warm-up, then cosine decay."),
        **PERSIST,
    )
    return {"lr": value}


def _seed(key: str, cfg: RunConfig) -> dict:
    lo, hi = LIMITS["seed"]
    return {
        "seed": st.number_input(
            t("seed"), int(lo), int(hi), cfg.seed, key=key, help=t("Initial weights and data order."), **PERSIST
        )
    }


# The form's widgets by field name ("norms" is drawn on its own row, see config_form).
WIDGETS: dict[str, Callable[[str, RunConfig], dict]] = {
    "task": _choice(
        "task",
        "task",
        tuple(TASKS),
        TASK_LABELS,
        "Synthetic text, the control task (BatchNorm-friendly), real English or Chinese text, or your own. Each "
        "task sets the sentence lengths it takes. Your own text: upload it on the Live comparison page.",
    ),
    "batch_size": _batch_size,
    "lengths": _choice(
        "lengths", "sentence lengths", LENGTHS, LENGTH_LABELS, "Batches are padded to their longest sentence."
    ),
    "length_range": _length_range,
    "batching": _choice(
        "batching",
        "batching",
        BATCHING,
        BATCHING_LABELS,
        "Random: any sentences share a batch. Bucketed: sentences of similar length share a batch (fewer pads).",
    ),
    "placement": _choice(
        "placement",
        "norm placement",
        PLACEMENTS,
        PLACEMENT_LABELS,
        "Where the norm sits: before each sublayer (Pre-norm) or after the residual sum (Post-norm, as in the "
        "2017 Transformer).",
    ),
    "attention": _choice(
        "attention",
        "attention",
        ATTENTIONS,
        ATTENTION_LABELS,
        "Causal: a language model, each token predicts the next and sees only earlier ones. Bidirectional: 15% of "
        "the real tokens are hidden and predicted, and every token sees every real token: the encoder setting "
        "where the PowerNorm and TID papers studied BatchNorm. Generations and the causality map need a causal "
        "model.",
    ),
    "steps": _steps,
    "lr": _lr,
    "seed": _seed,
}


def _parts(cfg: RunConfig) -> dict[str, str]:
    """The settings of a run in words, by field."""
    if cfg.lengths == "fixed":
        lengths = t("lengths fixed")
    elif cfg.lengths == "natural":
        lengths = t("lines of {lo}–{hi} tokens", lo=cfg.min_len, hi=cfg.max_len)
    else:
        lengths = t("lengths {kind} {lo}–{hi}", kind=t(LENGTH_LABELS[cfg.lengths]), lo=cfg.min_len, hi=cfg.max_len)
    return {
        "norms": ", ".join(t(NORM_LABELS[n]) for n in cfg.norms),
        "task": t("your text {key}", key=cfg.corpus[:6]) if cfg.task == "upload" else t(TASKS[cfg.task].names["en"]),
        "batch_size": t("batch {n}", n=cfg.batch_size),
        "lengths": lengths,
        "batching": {"random": t("random batching"), "bucketed": t("bucketed batching")}[cfg.batching],
        "placement": {"pre": t("pre-norm"), "post": t("post-norm")}[cfg.placement],
        "attention": {"causal": t("causal"), "bidirectional": t("bidirectional, masked tokens")}[cfg.attention],
        "steps": t("{n} steps", n=cfg.steps),
        "lr": t("lr {lr:g}", lr=cfg.lr),
        "seed": t("seed {n}", n=cfg.seed),
    }


def describe(cfg: RunConfig, omit: tuple[str, ...] = ()) -> str:
    """One line naming the settings of a run, for the header of its results; ``omit`` leaves out
    settings a sweep varies."""
    return " · ".join(text for field, text in _parts(cfg).items() if field not in omit)


def summaries(cfgs: list[RunConfig]) -> list[str]:
    """A short name for each of several runs: only the settings in which they differ (all of them
    for a single run); the config id where that is not enough to tell two apart."""
    parts = [_parts(c) for c in cfgs]
    same = tuple(f for f in parts[0] if len({p[f] for p in parts}) == 1) if len(cfgs) > 1 else ()
    names = [describe(c, omit=same) for c in cfgs]
    return [n if n and names.count(n) == 1 else f"{n} {c.config_id}".strip() for n, c in zip(names, cfgs, strict=True)]


def show_config_error(err: ConfigError):
    if err.field == "corpus":  # no text uploaded (or it was removed): the setting to fix is the task
        detail = t("upload a plain-text file on the Live comparison page first, or choose another task.")
    else:
        detail = err.detail  # the engine's own words, in English
    st.error(f"**{t(FIELD_LABELS.get(err.field, err.field))}**: {detail}", icon=":material/error:")


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
    fold = st.expander("Settings", icon=":material/tune:") if presenting() else nullcontext()
    with fold, st.form(f"{page}.form"):
        if "norms" in fields:  # the main choice gets a full-width row of toggles
            values.update(_norms(f"{page}.norms", base))
        cols = st.columns(4)
        for i, field in enumerate(f for f in fields if f != "norms"):
            with cols[i % 4]:
                values.update(WIDGETS[field](f"{page}.{field}", base))
        extras = extra() if extra else {}
        submitted = st.form_submit_button(
            t("Run"),
            type="primary",
            icon=":material/play_arrow:",
            key=f"{page}.run",
            on_click=_fit_lengths,
            args=(page,),
        )
    if fitted := st.session_state.pop(f"{page}.lengths_fitted", None):
        st.info(
            t("Sentence lengths set to “{lengths}”: the task {task} takes no other.", lengths=t(LENGTH_LABELS[fitted[1]]),
              task=t(TASKS[fitted[0]].names["en"])),
            icon=":material/info:",
        )  # fmt: skip
    submitted = submitted or st.session_state.pop(run_request_key(page), False)
    if values.get("task") == "upload":  # the text travels beside the config; the config names it by its hash
        values["corpus"] = upload.active_key()
    try:
        cfg = base.replace(**values)
    except ConfigError as err:
        show_config_error(err)
        return None, extras, False
    if "task" in fields:  # what the text is, and whose: the shipped corpora are credited where they are used
        st.caption(f":material/menu_book: {t(TASKS[cfg.task].about['en'])}")
    return cfg, extras, submitted


def _fit_lengths(page: str):
    """On Run, before the page reruns: a task that takes other sentence lengths than the form holds
    (control: fixed; real text: natural) gets its own, and the form shows them."""
    task, lengths = st.session_state.get(f"{page}.task"), st.session_state.get(f"{page}.lengths")
    if task in TASKS and lengths is not None and (fit := lengths_for(task, lengths)) != lengths:
        st.session_state[f"{page}.lengths"] = fit
        st.session_state[f"{page}.lengths_fitted"] = (task, fit)


def run_request_key(page: str) -> str:
    """Set this session key to True to run the form's settings as if Run was pressed (the guided
    tour's Re-run live, a scenario without precomputed results)."""
    return f"{page}.run_request"


def form_params(base: RunConfig, fields: list[str] | tuple[str, ...]) -> list[P.Param]:
    """The form's settings as URL parameters: the widgets' options and bounds, the page's base as
    defaults, values as the widgets hold them (``form_values``)."""
    lo, hi = (int(v) for v in LIMITS["max_len"])
    steps, seed = (tuple(int(v) for v in LIMITS[f]) for f in ("steps", "seed"))
    made = {
        "task": lambda v: P.choice("task", tuple(TASKS), v),
        "norms": lambda v: P.choices("norms", NORMS, v),
        "batch_size": lambda v: P.choice("batch_size", BATCH_SIZES, v),
        "lengths": lambda v: P.choice("lengths", LENGTHS, v),
        "length_range": lambda v: P.int_range("length_range", lo, hi, v),
        "batching": lambda v: P.choice("batching", BATCHING, v),
        "placement": lambda v: P.choice("placement", PLACEMENTS, v),
        "attention": lambda v: P.choice("attention", ATTENTIONS, v),
        "steps": lambda v: P.integer("steps", *steps, v),
        "lr": lambda v: P.choice("lr", LEARNING_RATES, v),
        "seed": lambda v: P.integer("seed", *seed, v),
    }
    defaults = form_values(base, fields)
    return [made[f](defaults[f]) for f in fields]


def form_values(cfg: RunConfig, fields: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The form's widget values (by field) that make ``cfg``: the inverse of the widgets' mapping."""
    special = {"norms": list(cfg.norms), "length_range": (cfg.min_len, cfg.max_len)}
    return {f: special[f] if f in special else getattr(cfg, f) for f in fields}


def display_params(log_default: bool = False) -> list[P.Param]:
    """``display_options``' settings as URL parameters."""
    return [
        P.real("smooth", 0.0, 0.99, DEFAULT_SMOOTH),
        P.flag("log_y", log_default),
        P.choice("x", tuple(X_LABELS), "step"),
    ]


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
            t("smoothing (EMA)"),
            0.0,
            0.99,
            DEFAULT_SMOOTH,
            0.01,
            key=f"{page}.smooth",
            help=t("The raw curve stays, faint, under the smoothed one."),
            **PERSIST,
        ),
        "log_y": cols[1].toggle(t("log y-axis"), log_default, key=f"{page}.log_y", **PERSIST),
        "x": cols[2].radio(
            t("x axis"),
            list(X_LABELS),
            horizontal=True,
            key=f"{page}.x",
            format_func=translated(X_LABELS),
            help=t("Steps, or real tokens seen (pads not counted)."),
            **PERSIST,
        ),
    }


def smoothing(page: str) -> float:
    """The page's current smoothing, for a live chart drawn before the options are."""
    return st.session_state.get(f"{page}.smooth", DEFAULT_SMOOTH)
