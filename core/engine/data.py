"""Tasks' data: seeded sentences as padded batches with a valid-token mask.

What each task is, and its vocabulary, is in core/settings/tasks.py (one record per task); here are the
samplers that draw its sentences, one per ``Task.sampler``:

* ``markov`` (``text``): sentences of the synthetic language. Variable length, always BOS first
  and EOS as the last target; words follow a sparse first-order Markov chain whose word
  frequencies are Zipfian, like real text. Batches are padded (right) to their longest sentence,
  so BN's per-channel statistics pool BOS, frequent words, rare words and pads.
* ``control``: fixed length, no padding, no BOS/EOS, and a doubly stochastic chain (a mixture of
  permutations) whose stationary distribution is uniform and which starts in it: every position of
  every sequence has the same distribution, so the values BN pools are comparable, as in images.
* ``lines`` (``shakespeare``, ``tangshi``): a real text's lines, BOS, the characters, EOS; the
  lengths are the lines' own, so a batch is padded to its longest line.
* ``windows`` (``upload``): the visitor's own text at character level, with a vocabulary sized to
  it (core.engine.uploads reads and keeps it). A "sentence" is BOS and a window of the text whose
  length comes from cfg.lengths, so batches are padded exactly as in ``text``; the last 10% of the
  text is held out.

The synthetic languages are fixed (``LANGUAGE_SEED``); the run's seed only picks which sentences
are drawn and in what order. The held-out set is fixed per task and length setting (``EVAL_SEED``),
so losses from different seeds and batch sizes are scored on the same sentences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, lru_cache

import torch

import core.engine.torch_threads  # noqa: F401  (one intra-op thread per process: see there)
from core.engine.uploads import get_corpus
from core.settings.config import RunConfig
from core.settings.tasks import BOS, EOS, LANGUAGE_SEED, N_SPECIAL, N_WORDS, PAD, TASKS, Task, Vocab

IGNORE = -100  # target value at pad positions: cross_entropy skips it
EVAL_SEED = 7919
MASK_RATE = 0.15  # bidirectional runs: the share of real tokens hidden and predicted
SUCCESSORS = 4  # each word is followed by one of 4 words: sparse, hence learnable
CONTROL_MIX = (0.55, 0.25, 0.15, 0.05)  # weights of the permutations in the control chain
WORDS_VOCAB = N_SPECIAL + N_WORDS  # ids of the synthetic tasks: PAD, BOS, EOS and the words


@dataclass(frozen=True)
class Batch:
    """A padded batch. Shapes: tokens, targets, valid (B, T); lengths (B,)."""

    tokens: torch.Tensor  # (B, T) int64 inputs, PAD after each sentence's end
    targets: torch.Tensor  # (B, T) int64 next tokens, IGNORE at pads
    valid: torch.Tensor  # (B, T) bool, True for real tokens
    lengths: torch.Tensor  # (B,) int64 real tokens per sentence

    @property
    def pad_fraction(self) -> float:
        return 1.0 - self.lengths.sum().item() / self.valid.numel()

    def padded_to(self, length: int) -> Batch:
        """The same sentences padded (right) to ``length`` positions: the pad-length probe."""
        B, T = self.tokens.shape
        extra = length - T
        if extra < 0:
            raise ValueError(f"cannot pad a batch of length {T} to {length}")
        return Batch(
            tokens=torch.cat([self.tokens, self.tokens.new_full((B, extra), PAD)], 1),
            targets=torch.cat([self.targets, self.targets.new_full((B, extra), IGNORE)], 1),
            valid=torch.cat([self.valid, self.valid.new_zeros((B, extra))], 1),
            lengths=self.lengths,
        )

    def select(self, rows) -> Batch:
        """Rows ``rows`` as a batch, trimmed to their longest sentence."""
        rows = torch.as_tensor(rows)
        T = int(self.lengths[rows].max())
        return Batch(self.tokens[rows, :T], self.targets[rows, :T], self.valid[rows, :T], self.lengths[rows])


@cache
def _text_language() -> tuple[torch.Tensor, torch.Tensor]:
    """(first-word probs (V,), transition matrix (V, V)) of the synthetic language."""
    g = torch.Generator().manual_seed(LANGUAGE_SEED)
    zipf = 1.0 / torch.arange(1, N_WORDS + 1, dtype=torch.float64) ** 1.1
    zipf = zipf / zipf.sum()
    words = torch.arange(N_SPECIAL, WORDS_VOCAB)
    trans = torch.zeros(WORDS_VOCAB, WORDS_VOCAB, dtype=torch.float64)
    for prev in [BOS, *words.tolist()]:
        succ = words[torch.multinomial(zipf, SUCCESSORS, replacement=False, generator=g)]
        # Dirichlet(1) weights, drawn as normalised exponentials so that our generator is used.
        expo = -torch.log(torch.rand(SUCCESSORS, generator=g, dtype=torch.float64))
        trans[prev, succ] = expo / expo.sum()
    return trans[BOS].clone(), trans


@cache
def _control_language() -> torch.Tensor:
    """Permutations (K, N_WORDS) of the control chain: next = perm_k[prev] with prob CONTROL_MIX[k]."""
    g = torch.Generator().manual_seed(LANGUAGE_SEED + 1)
    return torch.stack([torch.randperm(N_WORDS, generator=g) for _ in CONTROL_MIX])


def sample_lengths(cfg: RunConfig, n: int, g: torch.Generator) -> torch.Tensor:
    """n sentence lengths from cfg.lengths: fixed=max_len, uniform[min,max], longtail (most short)."""
    lo, hi = cfg.min_len, cfg.max_len
    if cfg.lengths == "fixed":  # always so for control: RunConfig enforces it
        return torch.full((n,), hi, dtype=torch.long)
    if cfg.lengths == "uniform":
        return torch.randint(lo, hi + 1, (n,), generator=g)
    # longtail: lo + (hi-lo+1)*u^4; mean about lo + range/5, but a batch of 8 usually holds a
    # sentence longer than half the range, so most of its positions are pads.
    u = torch.rand(n, generator=g, dtype=torch.float64)
    return (lo + ((hi - lo + 1) * u**4).floor().long()).clamp(max=hi)


def _markov(cfg: RunConfig, n: int, g: torch.Generator, held_out: bool) -> Batch:
    """Sentences of the synthetic language (held out by seed: EVAL_SEED draws the held-out set)."""
    T = cfg.max_len
    lengths = sample_lengths(cfg, n, g)
    _, trans = _text_language()
    seq = torch.empty(n, T + 1, dtype=torch.long)
    seq[:, 0] = BOS
    for t in range(T):
        seq[:, t + 1] = torch.multinomial(trans[seq[:, t]], 1, generator=g).squeeze(1)
    pos = torch.arange(T + 1)
    seq[pos >= lengths[:, None] + 1] = PAD  # PAD after the sentence
    seq[torch.arange(n), lengths] = EOS  # the last target of each sentence is EOS
    valid = pos[:T] < lengths[:, None]  # (n, T)
    tokens = seq[:, :T].masked_fill(~valid, PAD)
    targets = seq[:, 1:].masked_fill(~valid, IGNORE)
    return Batch(tokens.contiguous(), targets.contiguous(), valid, lengths)


def _control(cfg: RunConfig, n: int, g: torch.Generator, held_out: bool) -> Batch:
    """Fixed-length sequences of the control chain, started in its (uniform) stationary distribution."""
    T = cfg.max_len
    perms = _control_language()
    mix = torch.tensor(CONTROL_MIX, dtype=torch.float64)
    states = torch.empty(n, T + 1, dtype=torch.long)
    states[:, 0] = torch.randint(0, N_WORDS, (n,), generator=g)
    choice = torch.multinomial(mix, n * T, replacement=True, generator=g).view(n, T)
    for t in range(T):
        states[:, t + 1] = perms[choice[:, t], states[:, t]]
    seq = states + N_SPECIAL  # (n, T+1)
    lengths = torch.full((n,), T, dtype=torch.long)
    return Batch(seq[:, :T].contiguous(), seq[:, 1:].contiguous(), torch.ones(n, T, dtype=torch.bool), lengths)


@dataclass(frozen=True)
class EncodedLines:
    """Lines of a text as one flat id tensor: line i is ids[starts[i] : starts[i] + lens[i]]."""

    ids: torch.Tensor  # (N,) int64
    starts: torch.Tensor  # (L,) int64
    lens: torch.Tensor  # (L,) int64 characters per line


@cache
def _encoded(task: str, split: str) -> EncodedLines:
    corpus = TASKS[task].lines()
    lines = corpus.train if split == "train" else corpus.held_out
    lens = torch.tensor([len(line) for line in lines], dtype=torch.long)
    starts = torch.cumsum(lens, 0) - lens
    ids = torch.tensor(corpus.vocab.encode("".join(lines)), dtype=torch.long)
    return EncodedLines(ids, starts, lens)


@lru_cache(maxsize=64)
def _eligible(task: str, split: str, min_len: int, max_len: int) -> torch.Tensor:
    """Indices of the lines that make sentences of min_len..max_len tokens (BOS and the characters)."""
    lens = _encoded(task, split).lens
    return torch.nonzero((lens + 1 >= min_len) & (lens + 1 <= max_len)).flatten()


def _lines(cfg: RunConfig, n: int, g: torch.Generator, held_out: bool) -> Batch:
    """n lines of a real text: BOS and the characters, EOS the last target; padded to max_len.
    Training lines are drawn with replacement; the held-out set takes distinct lines."""
    split = "held_out" if held_out else "train"
    text, eligible = _encoded(cfg.task, split), _eligible(cfg.task, split, cfg.min_len, cfg.max_len)
    if len(eligible) == 0:
        raise ValueError(f"no line of the {cfg.task} text has {cfg.min_len}-{cfg.max_len} tokens")
    if held_out and n <= len(eligible):
        rows = eligible[torch.randperm(len(eligible), generator=g)[:n]]
    else:
        rows = eligible[torch.randint(len(eligible), (n,), generator=g)]
    T = cfg.max_len
    chars = text.lens[rows]  # (n,)
    lengths = chars + 1  # BOS and the characters
    pos = torch.arange(T)
    index = (text.starts[rows, None] + pos).clamp(max=len(text.ids) - 1)  # (n, T): the line, then beyond it
    body = text.ids[index].masked_fill(pos >= chars[:, None], EOS)  # the characters, then EOS
    valid = pos < lengths[:, None]  # (n, T)
    tokens = torch.cat([torch.full((n, 1), BOS), body[:, :-1]], 1).masked_fill(~valid, PAD)
    targets = body.masked_fill(~valid, IGNORE)
    return Batch(tokens.contiguous(), targets.contiguous(), valid, lengths)


def _windows(cfg: RunConfig, n: int, g: torch.Generator, held_out: bool) -> Batch:
    """BOS, then a window of an uploaded text whose length comes from cfg.lengths, starting at a
    random place; the model predicts each character of the window (no EOS: a window ends
    mid-text). Padded to max_len."""
    T = cfg.max_len
    lengths = sample_lengths(cfg, n, g)
    corpus = get_corpus(cfg.corpus)
    ids = corpus.held_out if held_out else corpus.train
    starts = torch.randint(0, len(ids) - T + 1, (n,), generator=g)
    window = ids[starts[:, None] + torch.arange(T)].long()  # (n, T)
    valid = torch.arange(T) < lengths[:, None]  # (n, T)
    tokens = torch.cat([torch.full((n, 1), BOS), window[:, :-1]], 1).masked_fill(~valid, PAD)
    targets = window.masked_fill(~valid, IGNORE)
    return Batch(tokens.contiguous(), targets.contiguous(), valid, lengths)


SAMPLERS = {"markov": _markov, "control": _control, "lines": _lines, "windows": _windows}  # by Task.sampler


def task_of(cfg: RunConfig) -> Task:
    return TASKS[cfg.task]


def vocab_of(cfg: RunConfig) -> Vocab:
    """The run's vocabulary: its task's, or for an upload its text's."""
    if task_of(cfg).sampler == "windows":
        return get_corpus(cfg.corpus).vocab
    return task_of(cfg).vocab()


def uniform_loss(cfg: RunConfig) -> float:
    """The run's 'learned nothing' line: cross-entropy of guessing uniformly (nats/token). A hidden
    token is a symbol, never EOS."""
    if cfg.attention == "bidirectional":
        return math.log(vocab_of(cfg).size - N_SPECIAL)
    return task_of(cfg).uniform_loss(vocab_of(cfg))


def sample_sentences(cfg: RunConfig, n: int, g: torch.Generator, held_out: bool = False) -> Batch:
    """n sentences of cfg.task, padded to max_len (use ``Batch.select`` to trim). ``held_out``: from
    the held-out part of a text (the synthetic tasks hold out by seed instead)."""
    return SAMPLERS[task_of(cfg).sampler](cfg, n, g, held_out)


class BatchStream:
    """The run's training batches, in order; every model of a paired run sees exactly these.

    ``random``: each batch is batch_size fresh sentences. ``bucketed``: draw a pool of 16 batches'
    worth, sort by length, cut into batches and shuffle their order (less padding per batch).
    """

    POOL_BATCHES = 16

    def __init__(self, cfg: RunConfig, g: torch.Generator):
        self.cfg, self.g = cfg, g
        self.masking = g  # bidirectional runs: what hides tokens (for_run gives it its own seed)
        self._queue: list[Batch] = []

    @classmethod
    def for_run(cls, cfg: RunConfig) -> BatchStream:
        """The training batches of the run ``cfg`` describes: seeded from cfg.seed, but a stream
        of its own, apart from the generator that draws the initial weights. A bidirectional run
        draws the same sentences in the same batches and hides tokens with a generator of its own."""
        stream = cls(cfg, torch.Generator().manual_seed(cfg.seed + 1_000_003))
        stream.masking = torch.Generator().manual_seed(cfg.seed + 2_000_003)
        return stream

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        if not self._queue:
            self._refill()
        batch = self._queue.pop()
        if self.cfg.attention == "bidirectional":
            return hide_tokens(batch, mask_id(self.cfg), self.masking)
        return batch

    def _refill(self):
        B, k = self.cfg.batch_size, self.POOL_BATCHES
        pool = sample_sentences(self.cfg, B * k, self.g)
        if self.cfg.batching == "bucketed":
            order = torch.argsort(pool.lengths, stable=True)
            chunks = [order[i * B : (i + 1) * B] for i in range(k)]
            chunks = [chunks[i] for i in torch.randperm(k, generator=self.g).tolist()]
        else:
            chunks = [torch.arange(i * B, (i + 1) * B) for i in range(k)]
        self._queue = [pool.select(c) for c in reversed(chunks)]


@lru_cache(maxsize=32)
def eval_sentences(task: str, lengths: str, min_len: int, max_len: int, n: int, corpus: str = "") -> Batch:
    """The fixed held-out set for a task and length setting (same for every seed and batch size)."""
    cfg = RunConfig(task=task, lengths=lengths, min_len=min_len, max_len=max_len, corpus=corpus)
    return sample_sentences(cfg, n, torch.Generator().manual_seed(EVAL_SEED), held_out=True)


def eval_set(cfg: RunConfig) -> Batch:
    """The held-out sentences; in a bidirectional run, with the same tokens hidden in every run."""
    if cfg.attention == "bidirectional":
        return _hidden_eval_sentences(cfg.task, cfg.lengths, cfg.min_len, cfg.max_len, cfg.eval_size, cfg.corpus)
    return eval_sentences(cfg.task, cfg.lengths, cfg.min_len, cfg.max_len, cfg.eval_size, cfg.corpus)


@lru_cache(maxsize=32)
def _hidden_eval_sentences(task: str, lengths: str, min_len: int, max_len: int, n: int, corpus: str) -> Batch:
    cfg = RunConfig(task=task, lengths=lengths, min_len=min_len, max_len=max_len, corpus=corpus)
    data = eval_sentences(task, lengths, min_len, max_len, n, corpus)
    return hide_tokens(data, mask_id(cfg), torch.Generator().manual_seed(EVAL_SEED + 1))


def mask_id(cfg: RunConfig) -> int:
    """The id of the hidden-token symbol: one past the task's vocabulary (bidirectional models only)."""
    return vocab_of(cfg).size


def hide_tokens(batch: Batch, mask: int, g: torch.Generator) -> Batch:
    """Masked-token prediction (BERT's objective, without its 80/10/10 replacement): each real
    symbol (not BOS, not a pad) is hidden with probability MASK_RATE, and a sentence in which none
    was drawn gets one hidden at random, so every sentence has a target. Hidden tokens become
    ``mask``; the targets are the hidden tokens' own ids, IGNORE everywhere else."""
    symbols = batch.valid & (batch.tokens >= N_SPECIAL)  # (B, T)
    hidden = (torch.rand(batch.tokens.shape, generator=g) < MASK_RATE) & symbols
    none = ~hidden.any(1) & symbols.any(1)  # (B,): sentences left without a target
    pick = torch.multinomial(symbols[none].float(), 1, generator=g).squeeze(1) if none.any() else None
    if pick is not None:
        hidden[torch.nonzero(none).squeeze(1), pick] = True
    tokens = batch.tokens.masked_fill(hidden, mask)
    targets = batch.tokens.masked_fill(~hidden, IGNORE)
    return Batch(tokens, targets, batch.valid, batch.lengths)


def eval_batches(cfg: RunConfig) -> list[Batch]:
    """The held-out set cut into training-sized batches (batched as in training), for scoring
    with batch statistics, which depend on the batch a sentence is in."""
    data = eval_set(cfg)
    B = cfg.batch_size
    order = torch.argsort(data.lengths, stable=True) if cfg.batching == "bucketed" else torch.arange(len(data.lengths))
    return [data.select(order[i : i + B]) for i in range(0, len(order), B)]
