"""Widgets -> RunConfig: the experiment form every page uses, and the chart display options.

The form batches its widgets (``st.form``), so moving a slider neither reruns the page nor
interrupts a run. Values persist for the session (a visitor who leaves a page finds their settings
again) and travel in the URL (``form_params``, read and written by ui/share.py). Every value goes through ``RunConfig`` validation: a bad combination shows an
error naming the setting, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import streamlit as st

from core.charts import PLACEMENT_LABELS
from core.settings import params as P
from core.settings.config import (
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
from core.settings.records import by_key
from core.settings.tasks import TASKS
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

# What an error calls a setting that is not one of the form's fields.
OTHER_LABELS = {"sweep": "sweep size", "corpus": "your own text"}

# Settings survive a visit to another page. They travel in the URL through ui/share.py, not through
# Streamlit's bind="query-params", which puts the on-screen (translated) label in the link.
PERSIST = {"persist_state": "session"}
DEFAULT_SMOOTH = 0.85  # one-batch losses at batch 2 are very noisy
X_LABELS = {"step": "steps", "tokens": "tokens seen"}


# ---------------------------------------------------------------- the form's fields, one record each
@dataclass(frozen=True)
class Field:
    """One setting of the experiment form, declared once: its widget, its URL parameter, its words
    in a run's one-line title and its name in an error message. ``label`` and ``help`` are English,
    shown translated."""

    key: str
    label: str
    widget: Callable[[Field, str, RunConfig], dict]  # draws it (session key, base); the config values it sets
    param: Callable[[str, Any], P.Param]  # (key, the form's default) -> its URL parameter
    words: Callable[[RunConfig], str] | None = None  # in a run's title (None: another field's words say it)
    help: str | None = None
    value: Callable[[RunConfig], Any] | None = None  # the widget's value for a config (default: its attribute)
    sets: tuple[str, ...] = ()  # the config's settings it sets, where not its key (what an error names)

    def form_value(self, cfg: RunConfig) -> Any:
        return self.value(cfg) if self.value else getattr(cfg, self.key)


def _choice(options: tuple, labels: dict[str, str]):
    """A selectbox for one of the config's choice settings, labelled for people."""

    def widget(f: Field, key: str, cfg: RunConfig) -> dict:
        index = options.index(getattr(cfg, f.key))
        value = st.selectbox(t(f.label), options, index=index, format_func=translated(labels), key=key, **_help(f))
        return {f.key: value}

    return widget, lambda key, default: P.choice(key, options, default)


def _help(f: Field) -> dict:
    return {"help": t(f.help), **PERSIST} if f.help else dict(PERSIST)


def _norms(f: Field, key: str, cfg: RunConfig) -> dict:
    value = st.pills(
        t(f.label), NORMS, selection_mode="multi", default=list(cfg.norms), format_func=translated(NORM_LABELS),
        key=key, **_help(f),
    )  # fmt: skip
    return {"norms": tuple(n for n in NORMS if n in value)}  # legend order, whatever the click order


def _select_slider(options: tuple, fmt: Callable[[Any], str] | None = None):
    def widget(f: Field, key: str, cfg: RunConfig) -> dict:
        value = st.select_slider(t(f.label), options, value=getattr(cfg, f.key), key=key, **_help(f), **_fmt(fmt))
        return {f.key: value}

    return widget, lambda key, default: P.choice(key, options, default)


def _fmt(fmt: Callable[[Any], str] | None) -> dict:
    return {"format_func": fmt} if fmt else {}


def _length_range(f: Field, key: str, cfg: RunConfig) -> dict:
    lo, hi = LIMITS["max_len"]
    low, high = st.slider(t(f.label), int(lo), int(hi), (cfg.min_len, cfg.max_len), key=key, **_help(f))
    return {"min_len": low, "max_len": high}


def _number(step: int = 1):
    """A number box for one of the config's integer settings, within its LIMITS."""

    def widget(f: Field, key: str, cfg: RunConfig) -> dict:
        lo, hi = (int(v) for v in LIMITS[f.key])
        return {f.key: st.number_input(t(f.label), lo, hi, getattr(cfg, f.key), step=step, key=key, **_help(f))}

    return widget, lambda key, default: P.integer(key, *(int(v) for v in LIMITS[key]), default)


def _lengths_words(cfg: RunConfig) -> str:
    if cfg.lengths == "fixed":
        return t("lengths fixed")
    if cfg.lengths == "natural":
        return t("lines of {lo}–{hi} tokens", lo=cfg.min_len, hi=cfg.max_len)
    return t("lengths {kind} {lo}–{hi}", kind=t(LENGTH_LABELS[cfg.lengths]), lo=cfg.min_len, hi=cfg.max_len)


def _task_words(cfg: RunConfig) -> str:
    return t("your text {key}", key=cfg.corpus[:6]) if cfg.task == "upload" else t(TASKS[cfg.task].names["en"])


_LEN_LO, _LEN_HI = (int(v) for v in LIMITS["max_len"])

# The form's fields, in the order a run's title names them ("norms" is drawn on its own row, see
# config_form; a page's setup lists which fields its form has, in its own order).
FIELDS: dict[str, Field] = by_key(
    Field(
        "norms", "norms", _norms, lambda key, v: P.choices(key, NORMS, v),
        lambda c: ", ".join(t(NORM_LABELS[n]) for n in c.norms),
        "Trained side by side from the same initial weights on the same batches.",
        value=lambda c: list(c.norms),
    ),
    Field(
        "task", "task", *_choice(tuple(TASKS), TASK_LABELS), _task_words,
        "Synthetic text, the control task (BatchNorm-friendly), real English or Chinese text, or your own. Each "
        "task sets the sentence lengths it takes. Your own text: upload it on the Live comparison page.",
    ),
    Field(
        "batch_size", "batch size (sequences)", *_select_slider(BATCH_SIZES),
        lambda c: t("batch {n}", n=c.batch_size),
    ),
    Field(
        "lengths", "sentence lengths", *_choice(LENGTHS, LENGTH_LABELS), _lengths_words,
        "Batches are padded to their longest sentence.",
    ),
    Field(
        "length_range", "sentence length range (tokens)", _length_range,
        lambda key, v: P.int_range(key, _LEN_LO, _LEN_HI, v),
        value=lambda c: (c.min_len, c.max_len), sets=("min_len", "max_len"),
    ),
    Field(
        "batching", "batching", *_choice(BATCHING, BATCHING_LABELS),
        lambda c: {"random": t("random batching"), "bucketed": t("bucketed batching")}[c.batching],
        "Random: any sentences share a batch. Bucketed: sentences of similar length share a batch (fewer pads).",
    ),
    Field(
        "placement", "norm placement", *_choice(PLACEMENTS, PLACEMENT_LABELS),
        lambda c: {"pre": t("pre-norm"), "post": t("post-norm")}[c.placement],
        "Where the norm sits: before each sublayer (Pre-norm) or after the residual sum (Post-norm, as in the "
        "2017 Transformer).",
    ),
    Field(
        "attention", "attention", *_choice(ATTENTIONS, ATTENTION_LABELS),
        lambda c: {"causal": t("causal"), "bidirectional": t("bidirectional, masked tokens")}[c.attention],
        "Causal: a language model, each token predicts the next and sees only earlier ones. Bidirectional: 15% "
        "of the real tokens are hidden and predicted, and every token sees every real token: the encoder "
        "setting where the PowerNorm and TID papers studied BatchNorm. Generations and the causality map need "
        "a causal model.",
    ),
    Field("steps", "training steps", *_number(step=50), lambda c: t("{n} steps", n=c.steps)),
    Field(
        "lr", "peak learning rate", *_select_slider(LEARNING_RATES, "{:g}".format),
        lambda c: t("lr {lr:g}", lr=c.lr), "AdamW; linear warm-up, then cosine decay.",
    ),
    Field(
        "seed", "seed", *_number(), lambda c: t("seed {n}", n=c.seed), "Initial weights and data order.",
    ),
)  # fmt: skip

# What an error message calls a setting (ConfigError.field -> the words on the form).
FIELD_LABELS = {name: f.label for f in FIELDS.values() for name in f.sets or (f.key,)} | OTHER_LABELS


@dataclass(frozen=True)
class GridField:
    """One setting of a grid page's sweep, beside its form's fields, declared once for its widget and
    its URL parameter: the values swept (pills over ``options``, named by ``labels``, English) or, with
    no options, the seeds per setting (a slider from 1 to ``max_seeds``). ``width``: its column's share."""

    key: str
    label: str
    options: tuple = ()
    labels: dict | None = None
    max_seeds: int = 0
    width: int = 1

    def param(self, default) -> P.Param:
        if self.options:
            return P.choices(self.key, self.options, default)
        return P.integer(self.key, 1, self.max_seeds, default)

    def widget(self, page: str, col, default):
        if not self.options:
            return col.slider(t(self.label), 1, self.max_seeds, default, key=f"{page}.{self.key}", **PERSIST)
        named = {"format_func": translated(self.labels)} if self.labels else {}
        return col.pills(
            t(self.label), self.options, selection_mode="multi", default=list(default), key=f"{page}.{self.key}",
            **named, **PERSIST,
        )  # fmt: skip


def grid_params(grid: tuple[GridField, ...], extras: dict) -> list[P.Param]:
    """A grid page's sweep settings as URL parameters, its setup's extras as defaults."""
    return [g.param(extras[g.key]) for g in grid]


def grid_form(page: str, grid: tuple[GridField, ...], extras: dict) -> Callable[[], dict[str, Any]]:
    """The widgets of a grid page's sweep settings, in one row inside its form (``config_form``'s extra)."""

    def draw() -> dict[str, Any]:
        cols = st.columns([g.width for g in grid])
        return {g.key: g.widget(page, col, extras[g.key]) for g, col in zip(grid, cols, strict=True)}

    return draw


def _parts(cfg: RunConfig) -> dict[str, str]:
    """The settings of a run in words, by field."""
    return {f.key: f.words(cfg) for f in FIELDS.values() if f.words}


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
    """The page's settings form: ``fields`` (keys of FIELDS) over ``base``, plus the page's own
    ``extra`` widgets (their values returned as a dict). Returns (config or None if invalid,
    extra values, whether Run was pressed with valid settings)."""
    values: dict[str, Any] = {}
    fold = st.expander("Settings", icon=":material/tune:") if presenting() else nullcontext()
    with fold, st.form(f"{page}.form"):
        if "norms" in fields:  # the main choice gets a full-width row of toggles
            values.update(_norms(FIELDS["norms"], f"{page}.norms", base))
        cols = st.columns(4)
        for i, field in enumerate(f for f in fields if f != "norms"):
            with cols[i % 4]:
                values.update(FIELDS[field].widget(FIELDS[field], f"{page}.{field}", base))
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
    defaults = form_values(base, fields)
    return [FIELDS[f].param(f, defaults[f]) for f in fields]


def form_values(cfg: RunConfig, fields: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The form's widget values (by field) that make ``cfg``: the inverse of the widgets' mapping."""
    return {f: FIELDS[f].form_value(cfg) for f in fields}


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
