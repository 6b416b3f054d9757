"""Property-based tests: no input, however odd, makes RunConfig or the command line fail with
anything but their own clear validation error.

RunConfig (constructor, ``from_dict``, ``replace``) must raise ``ConfigError`` naming the setting
(and, for a numeric one, its allowed range), or build a config that is within every bound and
survives a round trip. The CLI must exit with code 2 and one line that starts with ``error:`` and
names the flag, or accept the flags (training itself is replaced by a stub here: only parsing and
validation are under test).
"""

from __future__ import annotations

import contextlib
import io
import math
import time
from dataclasses import fields
from decimal import Decimal
from fractions import Fraction
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import cli
from core.settings.config import BATCHING, LENGTHS, LIMITS, NORMS, PLACEMENTS, TASKS, ConfigError, RunConfig, fmt_number
from core.studies.sweep import MAX_SWEEP_RUNS

FIELDS = [f.name for f in fields(RunConfig)]
# Settings a rule about two settings may name, and the settings whose value can break that rule.
CROSS_FIELD = {"min_len": {"max_len"}, "n_heads": {"d_model"}, "lengths": {"task"}, "corpus": {"task"}}
CHOICES = {"task": TASKS, "lengths": LENGTHS, "batching": BATCHING, "placement": PLACEMENTS}
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Weird:
    """An object whose comparisons and hash misbehave, as a careless caller's might."""

    def __eq__(self, other):
        raise RuntimeError("no comparisons")

    __hash__ = None


# ---------------------------------------------------------------- values of every kind
def _numbers_near(field: str) -> st.SearchStrategy:
    lo, hi = LIMITS[field]
    span = max(hi - lo, 1)
    return st.one_of(
        st.integers(int(lo) - 3, int(lo) + 3),
        st.integers(int(hi) - 3, int(hi) + 3),
        st.integers(-(2**70), 2**70),
        st.floats(lo - span, hi + span),
        st.sampled_from([lo, hi, float(lo), float(hi), -0.0, math.nan, math.inf, -math.inf]),
    )


ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.binary(max_size=6),
    st.complex_numbers(max_magnitude=1e6),
    st.decimals(allow_nan=True),
    st.fractions(max_denominator=7),
    st.lists(st.one_of(st.integers(), st.text(max_size=4), st.none()), max_size=4),
    st.tuples(st.text(max_size=4), st.integers()),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
    st.frozensets(st.integers(), max_size=3),
    st.builds(Weird),
    st.builds(np.int64, st.integers(-1000, 1000)),
    st.builds(np.float32, st.floats(-1e3, 1e3, width=32)),
    st.builds(np.array, st.lists(st.integers(0, 9), min_size=2, max_size=3)),
    st.sampled_from([Decimal("0.01"), Fraction(1, 3), b"ln", bytearray(b"bn"), range(3), ...]),
)

NORM_WORDS = st.sampled_from([*NORMS, "LN", " ln", "bn ", "layernorm", "", ",", "ln,ln", "bn,ln", "ln;bn"])
NORMS_VALUES = st.one_of(
    NORM_WORDS,
    st.lists(NORM_WORDS, max_size=4),
    st.lists(NORM_WORDS, max_size=4).map(tuple),
    st.lists(st.sampled_from(NORMS), max_size=5, unique=True).map(tuple),
    ODD,
)


def value_for(field: str) -> st.SearchStrategy:
    """Plausible values (in, at and beyond the bounds; near-miss words) and values of any type."""
    if field == "norms":
        return NORMS_VALUES
    if field in CHOICES:
        words = [*CHOICES[field], *(c.upper() for c in CHOICES[field]), *(f" {c}" for c in CHOICES[field]), ""]
        return st.one_of(st.sampled_from(words), ODD)
    if field in LIMITS:
        return st.one_of(_numbers_near(field), ODD)
    # a text field (the uploaded corpus's key): well-formed keys, near misses, anything
    return st.one_of(st.sampled_from(["", "0123456789abcdef", "0123456789ABCDEF", "0123456789abcde", "../etc"]), ODD)


SETTINGS = st.lists(st.sampled_from(FIELDS), max_size=6, unique=True).flatmap(
    lambda names: st.fixed_dictionaries({n: value_for(n) for n in names})
)
# Mostly valid settings with one field knocked off: probes each check on its own.
ONE_BAD = st.sampled_from(FIELDS).flatmap(lambda n: st.fixed_dictionaries({n: value_for(n)}))


def assert_valid(cfg: RunConfig):
    """A config that was accepted is within every bound and survives a round trip."""
    for name, (lo, hi) in LIMITS.items():
        v = getattr(cfg, name)
        assert not isinstance(v, bool) and isinstance(v, int | float) and lo <= v <= hi, (name, v)
    assert cfg.norms and isinstance(cfg.norms, tuple) and set(cfg.norms) <= set(NORMS)
    assert len(set(cfg.norms)) == len(cfg.norms)
    for name, choices in CHOICES.items():
        assert getattr(cfg, name) in choices
    assert cfg.min_len <= cfg.max_len and cfg.d_model % cfg.n_heads == 0
    again = RunConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.config_id == cfg.config_id


def assert_clear(err: ConfigError, given: dict):
    """The error names a setting, says what is allowed and, for a number, its range."""
    text = str(err)
    assert isinstance(err.field, str) and text.startswith(f"{err.field}: ") and err.detail, text
    if err.field in LIMITS and err.field in given and ("must be in" in text or "must be an" in text):
        lo, hi = (fmt_number(v) for v in LIMITS[err.field])
        assert f"[{lo}, {hi}]" in text, text
    assert "\n" not in text, text


# ---------------------------------------------------------------- RunConfig
def accepts_or_names_the_setting(kw):
    try:
        cfg = RunConfig(**kw)
    except ConfigError as err:
        # the offending setting; a setting not given is named only by a rule about two settings,
        # when the other one was given (min_len against a given max_len, ...)
        if err.field not in kw:
            assert CROSS_FIELD.get(err.field, set()) & set(kw), (err.field, kw)
        assert_clear(err, kw)
        return
    assert_valid(cfg)


@PROPS
@given(SETTINGS)
def test_run_config_accepts_or_names_the_setting(kw):
    accepts_or_names_the_setting(kw)


@PROPS
@given(ONE_BAD)
def test_one_setting_at_a_time(kw):
    accepts_or_names_the_setting(kw)


@PROPS
@given(
    st.one_of(
        st.dictionaries(
            st.one_of(st.sampled_from(FIELDS), st.text(max_size=8), st.integers(), st.none(), st.tuples(st.integers())),
            st.one_of(ODD, st.sampled_from(NORMS), st.lists(st.sampled_from(NORMS), max_size=3)),
            max_size=5,
        ),
        SETTINGS,
        ODD,  # not a dict at all
    )
)
def test_from_dict_accepts_or_names_the_setting(d):
    try:
        cfg = RunConfig.from_dict(d)
    except ConfigError as err:
        assert_clear(err, d if isinstance(d, dict) else {})
        return
    assert_valid(cfg)


@PROPS
@given(st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(min_size=1, max_size=8)), ODD, max_size=3))
def test_replace_accepts_or_names_the_setting(changes):
    try:
        cfg = RunConfig().replace(**changes)
    except ConfigError as err:
        assert_clear(err, changes)
        return
    assert_valid(cfg)


def test_known_odd_inputs_are_named():
    """Inputs that once escaped as TypeError / ValueError, each now a ConfigError on its setting."""
    cases = [
        ({"norms": 5}, "norms"),
        ({"norms": None}, "norms"),
        ({"task": np.array([1, 2])}, "task"),
        ({"task": Weird()}, "task"),
        ({"norms": [Weird()]}, "norms"),
        ({"steps": np.array([1, 2])}, "steps"),
    ]
    for kw, field in cases:
        with pytest.raises(ConfigError) as e:
            RunConfig(**kw)
        assert e.value.field == field
    for bad in (None, [("steps", 3)], "steps=3", 7):
        with pytest.raises(ConfigError):
            RunConfig.from_dict(bad)
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict({1: 2, "a": 3})  # keys of mixed types
    assert e.value.field in {"1", "a"}
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict({"steps\nx": 3})  # a key that would break the message's one line
    assert e.value.field == "'steps\\nx'" and "\n" not in str(e.value)
    with pytest.raises(ConfigError) as e:
        RunConfig().replace(bogus=1)
    assert e.value.field == "bogus" and "unknown setting" in str(e.value)


# ---------------------------------------------------------------- the command line
class Accepted(Exception):
    """Raised by the training stubs: the flags passed validation."""

    def __init__(self, cfgs):
        super().__init__()
        self.cfgs = cfgs


def _stub_train(cfg, *a, **k):
    raise Accepted([cfg])


def _stub_sweep(cfgs, *a, **k):
    raise Accepted(list(cfgs))


def _flags(command: str) -> list[str]:
    parser = cli.build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    return [o for a in sub._actions for o in a.option_strings if o not in ("-h", "--help", "--out")]


FLAG_VALUES = st.one_of(
    st.text(max_size=10),
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "1", "2", "64", "65", "3000", "3001", "1e-5", "1e-6", "1.0", "nan", "inf", "-1", "1_0"]),
    st.sampled_from([*NORMS, *TASKS, *LENGTHS, *BATCHING, *PLACEMENTS, "ln,bn", "bn,bn", ",", "2,4", "2,x", ""]),
    st.lists(st.integers(-5, 70).map(str), min_size=1, max_size=8).map(",".join),
)


@st.composite
def argv_lists(draw):
    command = draw(st.sampled_from(["compare", "sweep", "bogus", ""]))
    flags = _flags(command) if command in ("compare", "sweep") else _flags("compare")
    argv = [command] if command else []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            argv.append(draw(st.text(max_size=8)))  # a stray token
        elif kind == 1:
            argv.append(draw(st.sampled_from(flags)))  # a flag missing its value (or --json)
        else:
            argv += [draw(st.sampled_from(flags)), draw(FLAG_VALUES)]
    return argv


def run_cli(argv: list[str]) -> tuple[object, str]:
    """(what main did: Accepted, or the SystemExit code, or its return value), stderr."""
    err = io.StringIO()
    with (
        mock.patch("core.engine.train.train_paired", _stub_train),  # the CLI imports the engine when it runs
        mock.patch("core.studies.sweep.run_sweep", _stub_sweep),
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        try:
            result = cli.main(argv)
        except Accepted as a:
            result = a
        except SystemExit as e:
            result = e.code
    return result, err.getvalue()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argv_lists())
def test_cli_accepts_or_exits_2_with_one_line_naming_the_flag(argv):
    result, err = run_cli(argv)
    if isinstance(result, Accepted):
        assert 1 <= len(result.cfgs) <= MAX_SWEEP_RUNS
        for cfg in result.cfgs:
            assert_valid(cfg)
        assert not err
        return
    assert result == 2, (argv, result, err)
    assert err.count("\n") == 1 and err.startswith("error: "), (argv, err)
    assert "Traceback" not in err
    named = "--" in err or "unrecognized arguments" in err or "argument command" in err or "required: command" in err
    assert named, (argv, err)
    if err.startswith("error: --"):  # our own message: the flag it names exists
        command = argv[0] if argv and argv[0] in ("compare", "sweep") else "compare"
        real = set(_flags(command)) | {"--out"}
        assert set(err[len("error: ") :].split(":")[0].split("/")) <= real, (argv, err)


def test_cli_odd_inputs():
    # The upload task has no CLI flag for its text: the message names --task, a flag that exists.
    result, err = run_cli(["compare", "--task", "upload"])
    assert result == 2 and err.startswith("error: --task:"), err
    # A newline inside a stray argument still gives one line.
    result, err = run_cli(["compare", "a\nb"])
    assert result == 2 and err.count("\n") == 1
    # A sweep grid far over the cap is refused at once, before any config is built.
    t0 = time.perf_counter()
    result, err = run_cli(["sweep", "--batch-sizes", ",".join(["2"] * 3000), "--seeds", ",".join(["0"] * 3000)])
    assert result == 2 and "--batch-sizes" in err and str(MAX_SWEEP_RUNS) in err
    assert time.perf_counter() - t0 < 2
    # An --out path that cannot be written is refused before training, naming --out.
    result, err = run_cli(["compare", "--out", "/nonexistent-dir/x.csv"])
    assert result == 2 and err.startswith("error: --out:") and err.count("\n") == 1
