"""The documents' links: every relative link and picture of the READMEs and of docs/ points to a
file that exists (the pictures are made by python -m benchmarks.screenshots)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import ROOT

DOCUMENTS = [ROOT / "README.md", ROOT / "README.zh-CN.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")  # [text](target "title")


def relative_links(text: str) -> list[str]:
    """The link targets of a markdown text that are files of this repository (no scheme, no bare anchor)."""
    out = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        out.append(target.split("#", 1)[0])
    return out


def test_the_link_pattern_finds_links_and_pictures_and_skips_the_web():
    text = '[a](docs/x.md) ![p](img/a.png "t") [w](https://example.org) [s](#here) [b](y.md#part) `[c](z)`'
    assert relative_links(text) == ["docs/x.md", "img/a.png", "y.md", "z"]


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_picture_exists(doc: Path):
    links = relative_links(doc.read_text())
    missing = [t for t in links if not (doc.parent / t).exists()]
    assert not missing, f"{doc.name} links what is not there: {missing}"


def test_the_readmes_show_the_pictures_in_their_language():
    for readme, lang in ((ROOT / "README.md", "en"), (ROOT / "README.zh-CN.md", "zh")):
        pictures = [t for t in relative_links(readme.read_text()) if t.endswith(".png")]
        assert len(pictures) >= 4, readme.name
        assert all(t.endswith(f".{lang}.png") for t in pictures), (readme.name, pictures)
    assert len(DOCUMENTS) >= 10, "the details live in docs/"
