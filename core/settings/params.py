"""A page's settings as URL query parameters: named, parsed, checked, and written back.

A link reproduces an experiment only if every setting can travel in it and a bad one cannot
break the page. Each ``Param`` is one setting: its name in the URL, its default, the words that
say what it allows, and a strict parser. ``read`` turns a query string's values into settings and
a list of ``Problem``s (unknown names, unparsable or out-of-range values), never an exception;
``write`` turns settings back into query values. Values travel as the program's own option
names (``norms=bn,ln``, ``task=control``, ``lr=0.001``), never as the labels people read, so a
link works whatever language the page is shown in.

No Streamlit here: ``ui/share.py`` applies the values to widgets and shows the problems.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.settings.config import fmt_number


@dataclass(frozen=True)
class Param:
    """One setting in the URL. ``decode`` raises ValueError for anything outside ``allowed``."""

    name: str
    default: Any
    allowed: str  # what the setting accepts, in words: "one of 1, 2, 4" / "an integer from 1 to 3000"
    decode: Callable[[str], Any]
    encode: Callable[[Any], str]


@dataclass(frozen=True)
class Problem:
    """A query parameter that was not used, and why, in one sentence naming it."""

    name: str
    given: str
    message: str


def _word(v: Any) -> str:
    return fmt_number(v) if isinstance(v, int | float) and not isinstance(v, bool) else str(v)


def _one_of(options: Sequence) -> str:
    return "one of " + ", ".join(_word(o) for o in options)


def _match(text: str, options: Sequence) -> Any:
    """The option ``text`` names: exact for names, by value for numbers (``1e-3`` is ``0.001``)."""
    text = text.strip()
    for o in options:
        if isinstance(o, str):
            if text == o:
                return o
        else:
            try:
                number = float(text)
            except ValueError:
                continue
            if math.isclose(number, o, rel_tol=1e-9, abs_tol=0.0):
                return o
    raise ValueError(text)


def choice(name: str, options: Sequence, default: Any) -> Param:
    """One of ``options`` (names or numbers)."""
    opts = tuple(options)
    return Param(name, default, _one_of(opts), lambda text: _match(text, opts), _word)


def choices(name: str, options: Sequence, default: Sequence) -> Param:
    """A non-empty, comma-separated subset of ``options``; kept in the options' order, no repeats."""
    opts = tuple(options)

    def decode(text: str) -> list:
        picked = {_match(t, opts) for t in text.split(",") if t.strip()}
        if not picked:
            raise ValueError(text)
        return [o for o in opts if o in picked]

    return Param(
        name,
        [o for o in opts if o in set(default)],
        f"a comma-separated list of {_one_of(opts)} (at least one)",
        decode,
        lambda values: ",".join(_word(o) for o in opts if o in set(values)),
    )


def integer(name: str, lo: int, hi: int, default: int) -> Param:
    """An integer from ``lo`` to ``hi``."""

    def decode(text: str) -> int:
        value = int(text.strip())  # "1.5", "abc", "" raise ValueError
        if not lo <= value <= hi:
            raise ValueError(text)
        return value

    return Param(name, default, f"an integer from {lo} to {hi}", decode, str)


def real(name: str, lo: float, hi: float, default: float) -> Param:
    """A finite number from ``lo`` to ``hi``."""

    def decode(text: str) -> float:
        value = float(text.strip())
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ValueError(text)
        return value

    return Param(name, default, f"a number from {_word(lo)} to {_word(hi)}", decode, lambda v: f"{v:g}")


FLAG_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def flag(name: str, default: bool) -> Param:
    """On or off: 1/0, true/false, yes/no, on/off."""

    def decode(text: str) -> bool:
        word = text.strip().lower()
        if word not in FLAG_WORDS:
            raise ValueError(text)
        return FLAG_WORDS[word]

    return Param(name, default, "1 or 0", decode, lambda v: "1" if v else "0")


def int_range(name: str, lo: int, hi: int, default: tuple[int, int]) -> Param:
    """Two integers ``a-b`` with lo <= a <= b <= hi, as a (low, high) pair."""

    def decode(text: str) -> tuple[int, int]:
        parts = text.replace("..", "-").split("-")
        if len(parts) != 2:
            raise ValueError(text)
        a, b = (int(p.strip()) for p in parts)
        if not lo <= a <= b <= hi:
            raise ValueError(text)
        return (a, b)

    return Param(name, tuple(default), f"two integers low-high from {lo} to {hi}, low <= high", decode, _pair)


def _pair(v: Sequence[int]) -> str:
    return f"{v[0]}-{v[1]}"


def read(
    query: Mapping[str, str | Sequence[str]], params: Iterable[Param], ignore: Iterable[str] = ()
) -> tuple[dict[str, Any], list[Problem]]:
    """The settings a query string gives (by name) and the problems with the rest. A repeated
    parameter counts once, with its last value (as a browser's URLSearchParams.get would not, but
    as Streamlit does). Names in ``ignore`` belong to someone else and are passed over."""
    by_name = {p.name: p for p in params}
    skip = set(ignore)
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, raw in query.items():
        text = raw if isinstance(raw, str) else (list(raw)[-1] if len(raw) else "")
        if name in skip:
            continue
        p = by_name.get(name)
        if p is None:
            known = ", ".join(by_name) or "none"
            problems.append(Problem(name, text, f"`{name}` is not a setting of this page (its settings: {known})"))
            continue
        try:
            values[name] = p.decode(text)
        except (ValueError, TypeError):
            problems.append(
                Problem(
                    name,
                    text,
                    f"`{name}={text}` is not allowed: `{name}` takes {p.allowed}; using the default, "
                    f"`{p.encode(p.default)}`",
                )
            )
    return values, problems


def write(values: Mapping[str, Any], params: Iterable[Param], full: bool = False) -> dict[str, str]:
    """Query values for ``values`` (missing ones are the defaults); only those that differ from
    the default unless ``full``, in the order of ``params``."""
    out = {}
    for p in params:
        value = values.get(p.name, p.default)
        text = p.encode(value)
        if full or text != p.encode(p.default):
            out[p.name] = text
    return out
