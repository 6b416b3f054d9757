"""Precomputed results of the guided scenarios, so a slow host or a workshop laptop shows them at once.

    python -m core.precompute                       # all scenarios into data/precomputed/
    python -m core.precompute --only shrink_batch   # one scenario
    python -m core.precompute --check               # exit 1 if a stored file is missing or stale

Each scenario's frames (the same ``core.studies.experiments.compute`` a page runs live) are written as
``<scenario>.<frame>.csv.gz``; ``index.json`` records, per scenario, its page, the full config and
its id, the page's other settings, each frame's columns and dtypes, and the seconds it took. A
table that is no scenario (``TABLES``: the overview's comparability of the tasks) is stored the
same way, recorded with the ids of the configs it trained. Floats
are written with 7 significant digits (the float32 precision the models compute in). A page loads
a scenario's files only if the stored config id and settings equal the scenario's current ones:
a changed scenario never shows stale numbers, and ``tests/test_presets.py`` fails until the files
are regenerated.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.settings.config import RunConfig
from core.studies import experiments
from core.studies.presets import BY_ID, PRESETS, Preset

ROOT = Path(__file__).resolve().parents[1] / "data" / "precomputed"
INDEX = "index.json"
FLOAT_FORMAT = "%.7g"
NA = "nan"


@dataclass(frozen=True)
class Stored:
    """A scenario's precomputed frames and how long computing them took."""

    frames: dict[str, pd.DataFrame]
    seconds: float


@dataclass(frozen=True)
class Table:
    """Stored frames that no scenario shows: ``compute(configs)`` makes them."""

    id: str
    configs: tuple[RunConfig, ...]
    compute: Callable[[Sequence[RunConfig]], dict[str, pd.DataFrame]]
    frames: tuple[str, ...]  # what compute returns: stored files of other frames are stale

    @property
    def config_ids(self) -> list[str]:
        return [c.config_id for c in self.configs]


TABLES = [
    Table(
        "comparability",
        experiments.COMPARABILITY_CONFIGS,
        experiments.comparability_table,
        ("comparability", "positions"),
    )
]
TABLE_BY_ID = {t.id: t for t in TABLES}


def settings_json(preset: Preset) -> dict:
    """The page's extra settings as JSON values (tuples become lists), for comparing with the index."""
    return json.loads(json.dumps(preset.settings))


def entry(preset: Preset, frames: dict[str, pd.DataFrame], seconds: float) -> dict:
    return {
        "page": preset.page,
        "config_id": preset.config.config_id,
        "config": preset.config.to_dict(),
        "settings": settings_json(preset),
        "seconds": round(seconds, 2),
        "frames": _dtypes(frames),
    }


def _dtypes(frames: dict[str, pd.DataFrame]) -> dict[str, dict[str, str]]:
    return {name: {c: str(t) for c, t in df.dtypes.items()} for name, df in frames.items()}


def file_name(preset_id: str, frame: str) -> str:
    return f"{preset_id}.{frame}.csv.gz"


def write_frame(df: pd.DataFrame, path: Path):
    # mtime=0: the same numbers give the same bytes, so regenerating changes no file needlessly
    df.to_csv(path, index=False, float_format=FLOAT_FORMAT, na_rep=NA, compression={"method": "gzip", "mtime": 0})


def _python_value(v):
    """An object column's cell as the code made it: None, not NaN; a whole number as an int."""
    if isinstance(v, float):
        return None if v != v else int(v) if v.is_integer() else v
    return v


def read_frame(path: Path, dtypes: dict[str, str]) -> pd.DataFrame:
    """A frame as written, with its dtypes: text stays text ("" is not missing), "nan" is NaN,
    and an object column (an int or None, as ``diverged_at``) holds ints and None again."""
    text = {c: "str" for c, t in dtypes.items() if t == "str"}
    df = pd.read_csv(path, keep_default_na=False, na_values=[NA], dtype=text)
    objects = [c for c, t in dtypes.items() if t == "object"]
    df = df.astype({c: t for c, t in dtypes.items() if t != "object"})
    for c in objects:
        df[c] = pd.Series([_python_value(v) for v in df[c]], index=df.index, dtype=object)
    return df


def read_index(root: Path | None = None) -> dict:
    path = (root or ROOT) / INDEX
    return json.loads(path.read_text()) if path.exists() else {}


def is_current(item: Preset | Table, stored: dict | None) -> bool:
    """Stored results belong to the scenario as it is now (same page, config and settings), or to
    the table as it is now (the same configs)."""
    if stored is None:
        return False
    if isinstance(item, Table):
        return stored.get("config_ids") == item.config_ids and tuple(stored.get("frames", ())) == item.frames
    return (
        stored.get("page") == item.page
        and stored.get("config_id") == item.config.config_id
        and stored.get("settings") == settings_json(item)
    )


def load(item: Preset | Table, root: Path | None = None) -> Stored | None:
    """A scenario's (or table's) precomputed frames, or None if there are none for it as it is now."""
    root = root or ROOT
    stored = read_index(root).get(item.id)
    if not is_current(item, stored):
        return None
    try:
        frames = {
            name: read_frame(root / file_name(item.id, name), dtypes) for name, dtypes in stored["frames"].items()
        }
    except (OSError, ValueError, KeyError):  # a missing or damaged file: the page runs live instead
        return None
    return Stored(frames, stored["seconds"])


def precompute(item: Preset | Table, root: Path = ROOT) -> dict:
    """Compute one scenario (or table) headless, write its frames, and return its index entry."""
    started = time.perf_counter()
    if isinstance(item, Table):
        frames = item.compute(item.configs)
    else:
        frames = experiments.compute(item.page, item.config, item.settings)
    seconds = time.perf_counter() - started
    root.mkdir(parents=True, exist_ok=True)
    for name, df in frames.items():
        write_frame(df, root / file_name(item.id, name))
    if isinstance(item, Table):
        return {"config_ids": item.config_ids, "seconds": round(seconds, 2), "frames": _dtypes(frames)}
    return entry(item, frames, seconds)


def stale(root: Path | None = None) -> list[str]:
    """Scenarios whose stored results are missing or were made for other settings."""
    root = root or ROOT
    index = read_index(root)
    return [
        p.id
        for p in [*PRESETS, *TABLES]
        if not is_current(p, index.get(p.id))
        or not all((root / file_name(p.id, f)).exists() for f in index[p.id]["frames"])
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.precompute", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT, help="folder (default data/precomputed)")
    parser.add_argument("--only", help="comma list of scenario (or table) ids (default: all)")
    parser.add_argument("--check", action="store_true", help="only check that every scenario's files are current")
    a = parser.parse_args(argv)
    if a.check:
        missing = stale(a.out)
        print("stale or missing: " + ", ".join(missing) if missing else "all scenarios precomputed and current")
        return 1 if missing else 0
    items = {**BY_ID, **TABLE_BY_ID}
    ids = [s.strip() for s in a.only.split(",")] if a.only else list(items)
    unknown = [i for i in ids if i not in items]
    if unknown:
        parser.exit(2, f"error: --only: unknown scenario {unknown[0]!r}; known: {', '.join(items)}\n")
    index = {k: v for k, v in read_index(a.out).items() if k in items}  # drop scenarios that no longer exist
    for i in ids:
        index[i] = precompute(items[i], a.out)
        print(f"{i}: {index[i]['seconds']:.1f} s", file=sys.stderr)
    index = {i: index[i] for i in items if i in index}  # tour order, then the tables
    (a.out / INDEX).write_text(json.dumps(index, indent=1) + "\n")
    known = {file_name(i, f) for i, e in index.items() for f in e["frames"]} | {INDEX}
    for path in a.out.iterdir():  # files of removed scenarios or frames
        if path.name not in known:
            path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
