"""RunConfig: the one validated description of an experiment.

Widgets, URL parameters and CLI flags all become a RunConfig; every metric row and CSV export
carries it (``asdict``), so a number can always be traced back to the settings that made it.
Every field has hard bounds (``LIMITS``) so that no input, however it arrives, can ask a shared
host for an unbounded amount of work.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace

from core.settings import tasks
from core.settings.norm_specs import NORM_SPECS

TASKS = tuple(tasks.TASKS)  # upload: the visitor's own text, at character level (``corpus``)
NORMS = tuple(NORM_SPECS)  # core/settings/norm_specs.py: one record per norm
LENGTHS = ("fixed", "uniform", "longtail", "natural")  # natural: a real text's own line lengths
BATCHING = ("random", "bucketed")
PLACEMENTS = ("pre", "post")
# causal: next-token prediction with a causal mask (a decoder); bidirectional: masked-token
# prediction, 15% of real tokens hidden, every token sees every real token (an encoder, the
# setting of the PowerNorm and TID papers)
ATTENTIONS = ("causal", "bidirectional")
CORPUS_KEY = "[0-9a-f]{16}"  # core.engine.uploads.Corpus.key: the first 16 hex digits of the text's SHA-256

NORM_LABELS = {key: spec.labels["en"] for key, spec in NORM_SPECS.items()}

# (low, high) inclusive bounds of numeric fields. Caps keep one visitor from starving others.
LIMITS: dict[str, tuple[float, float]] = {
    "batch_size": (1, 64),
    "min_len": (2, 64),
    "max_len": (2, 64),
    "steps": (1, 3000),
    "lr": (1e-5, 1.0),
    "weight_decay": (0.0, 1.0),
    "warmup": (0, 1000),
    "grad_clip": (0.0, 100.0),
    "d_model": (8, 256),
    "n_layers": (1, 8),
    "n_heads": (1, 16),
    "eval_every": (1, 1000),
    "eval_size": (8, 512),
    "bn_momentum": (0.001, 1.0),
    "eps": (1e-8, 1e-1),
    "seed": (0, 2**31 - 1),
    "diverge_grad_norm": (1.0, 1e12),
}


MAX_SWEEP_RUNS = 60  # paired runs in one sweep: a cap for shared hosts
EXECUTORS = ("local", "ray")  # where a sweep's cells train: this machine, or Ray tasks (core.studies.sweep)


class ConfigError(ValueError):
    """A setting is unknown or out of range. ``field`` names it, for CLI and UI messages."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


@dataclass(frozen=True)
class RunConfig:
    """One paired run: every model in ``norms`` trains from the same init on the same batches."""

    task: str = "text"  # a key of core.settings.tasks.TASKS: synthetic text, control (BN-friendly), real text, upload
    norms: tuple[str, ...] = ("bn", "ln")  # the variants trained side by side
    batch_size: int = 8  # small enough that BN's batch statistics are visibly noisy
    lengths: str = "uniform"  # fixed | uniform | longtail, or natural (real text's own lines): see the task
    min_len: int = 4  # shortest sentence (tokens fed to the model)
    max_len: int = 32  # longest sentence; batches are padded to their longest member
    batching: str = "random"  # random | bucketed (groups similar lengths, less padding)
    placement: str = "pre"  # pre: x + f(norm(x)); post: norm(x + f(x)) as in the 2017 Transformer
    steps: int = 300  # a few seconds on a 2-core CPU
    lr: float = 3e-3  # AdamW peak learning rate; tiny models like it high
    weight_decay: float = 0.01  # applied to tensors with dim >= 2 only, whatever module holds them
    warmup: int = 20  # linear warm-up steps, then cosine decay to 10%
    grad_clip: float = 1.0  # global L2 clip (0 disables); norms are recorded before clipping
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    eval_every: int = 25  # held-out loss every N steps (and at the last step)
    eval_size: int = 128  # held-out sentences, a fixed set per task and length setting
    bn_momentum: float = 0.1  # as nn.BatchNorm1d
    eps: float = 1e-5  # as nn.LayerNorm / nn.BatchNorm1d
    seed: int = 0  # init weights and data order; same seed, same numbers
    diverge_grad_norm: float = 1e4  # a model whose grad norm exceeds this is marked diverged
    corpus: str = ""  # task "upload" only: the key (content hash) of the text, see core.engine.uploads.register_corpus
    attention: str = "causal"  # causal (next token) | bidirectional (masked tokens, 15%), see ATTENTIONS

    def __post_init__(self):
        _check_choice("task", self.task, TASKS)
        norms = self.norms
        if isinstance(norms, str):
            norms = tuple(n.strip() for n in norms.split(",") if n.strip())
            object.__setattr__(self, "norms", norms)
        if not isinstance(norms, tuple):
            try:
                norms = tuple(norms)
            except TypeError:  # not a list of names at all (a number, None, ...)
                raise ConfigError("norms", f"must be a list of {', '.join(NORMS)}, got {norms!r}") from None
            object.__setattr__(self, "norms", norms)
        if not norms:
            raise ConfigError("norms", f"choose at least one of {', '.join(NORMS)}")
        for n in norms:
            _check_choice("norms", n, NORMS)
        if len(set(norms)) != len(norms):
            raise ConfigError("norms", f"each norm at most once, got {','.join(norms)}")
        _check_choice("lengths", self.lengths, LENGTHS)
        _check_choice("batching", self.batching, BATCHING)
        _check_choice("placement", self.placement, PLACEMENTS)
        _check_choice("attention", self.attention, ATTENTIONS)
        for f in fields(self):
            if f.name in LIMITS:
                _check_number(f.name, getattr(self, f.name), f.type)
        if self.min_len > self.max_len:
            raise ConfigError("min_len", f"must be <= max_len ({self.max_len}), got {self.min_len}")
        if self.d_model % self.n_heads:
            raise ConfigError("n_heads", f"must divide d_model ({self.d_model}), got {self.n_heads}")
        for n in norms:
            if self.d_model % (k := NORM_SPECS[n].channels_multiple):
                raise ConfigError("d_model", f"must be a multiple of {k} for {n}, got {self.d_model}")
        allowed = tasks.TASKS[self.task].lengths
        if self.lengths not in allowed:
            raise ConfigError(
                "lengths", f"the {self.task} task takes lengths {' or '.join(allowed)}, got {self.lengths!r}"
            )
        if not isinstance(self.corpus, str) or (self.task == "upload" and not re.fullmatch(CORPUS_KEY, self.corpus)):
            raise ConfigError("corpus", f"the upload task needs the key of an uploaded text, got {self.corpus!r}")
        if self.task != "upload" and self.corpus:
            raise ConfigError("corpus", f"only the upload task takes a text, not {self.task!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["norms"] = list(self.norms)
        if not self.corpus:  # configs without a text keep the ids (and CSV columns) they had before the field
            del d["corpus"]
        if self.attention == "causal":  # and so do causal ones, from before the attention setting
            del d["attention"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        if not isinstance(d, dict):
            raise ConfigError("config", f"must be a mapping of setting names to values, got {type(d).__name__}")
        _check_known(d)
        return cls(**{k: tuple(v) if k == "norms" and isinstance(v, list) else v for k, v in d.items()})

    def replace(self, **changes) -> RunConfig:
        _check_known(changes)
        return replace(self, **changes)

    @property
    def config_id(self) -> str:
        """Short stable hash of all settings: equal ids, equal numbers."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:10]


def _check_known(settings: dict):
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted((k for k in settings if k not in known), key=repr)  # keys may be of any type
    if unknown:
        name = unknown[0] if isinstance(unknown[0], str) and unknown[0].isidentifier() else repr(unknown[0])
        raise ConfigError(name, f"unknown setting; known: {', '.join(sorted(known))}")


def _check_choice(name: str, value, choices):
    if not isinstance(value, str) or value not in choices:  # "in" alone trips over arrays and odd __eq__
        raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")


def fmt_number(v: float) -> str:
    """A bound as people write it: 2147483647, not 2.14748e+09; 0.001 and 1e-05 stay short."""
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _check_number(name: str, value, annotation):
    lo, hi = (fmt_number(v) for v in LIMITS[name])
    is_int = annotation in (int, "int")
    ok_type = isinstance(value, int) if is_int else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if is_int else "a number"
        raise ConfigError(name, f"must be {kind} in [{lo}, {hi}], got {value!r}")
    if not (LIMITS[name][0] <= value <= LIMITS[name][1]):  # also rejects NaN
        raise ConfigError(name, f"must be in [{lo}, {hi}], got {value!r}")


def lengths_for(task: str, lengths: str = "uniform") -> str:
    """``lengths`` if ``task`` takes it, else the default's (uniform) if it does, else the task's
    own (control: fixed; real text: natural). An unknown task keeps ``lengths`` (RunConfig names it)."""
    allowed = tasks.TASKS[task].lengths if task in tasks.TASKS else (lengths,)
    return next(ln for ln in (lengths, RunConfig.lengths, *allowed) if ln in allowed)


def sweep_configs(
    base: RunConfig,
    batch_sizes: Sequence[int] = (),
    seeds: Sequence[int] = (),
    lengths: Sequence[str] = (),
    attentions: Sequence[str] = (),
) -> list[RunConfig]:
    """The grid, each cell a validated RunConfig; an empty axis keeps base's value."""
    grid = itertools.product(
        attentions or [base.attention],
        lengths or [base.lengths],
        batch_sizes or [base.batch_size],
        seeds or [base.seed],
    )
    cfgs = [base.replace(attention=at, lengths=ln, batch_size=bs, seed=s) for at, ln, bs, s in grid]
    if len(cfgs) > MAX_SWEEP_RUNS:
        raise ConfigError("sweep", f"at most {MAX_SWEEP_RUNS} paired runs, got {len(cfgs)}")
    return cfgs
