"""Your own text (task "upload"): an uploaded file checked and read as characters
(``parse_corpus``), with a vocabulary sized to it, and the process-wide store of such texts that a
RunConfig names by key (``register_corpus``, ``get_corpus``). core.engine.data draws its windows."""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass

import torch

from core.settings.tasks import N_SPECIAL, Vocab, char_vocab

UPLOAD_MAX_BYTES = 1024 * 1024  # Streamlit's "1 MB": the app's server.maxUploadSize and file_uploader limit
UPLOAD_MIN_CHARS = 1000  # enough to hold out 10% and still fill a window of the longest sentence (64)
HELD_OUT_FRACTION = 0.1  # the end of the text: the held-out windows never overlap the training ones
KEEP_ALL_CHARS = 50_000  # a text up to this long keeps every character it has
MIN_COUNT = 3  # in a longer text, characters seen fewer times share UNK: they cannot be learned
MAX_CHARS = 8000  # the most characters a vocabulary keeps (the model's embedding and head grow with it)
MAX_NONPRINTABLE = 0.05  # a larger share of control characters: not a text file
CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline
MAX_CORPORA = 32  # texts kept in memory for all sessions (4 bytes per character each)

# What can be wrong with an upload: English templates (the app translates them), formatted with the
# values a CorpusError carries.
CORPUS_ERRORS = {
    "empty": "The file is empty (or blank).",
    "too_large": "The file has {size:,} bytes; the limit is {limit:,} bytes (1 MB).",
    "nul_bytes": "This is not a plain-text file: it contains NUL bytes.",
    "control_chars": "This is not a plain-text file: {share:.0%} of its characters are control characters.",
    "not_utf8": "The file is not UTF-8 text (the byte at position {position:,} is not valid UTF-8). Save it as "
    "UTF-8 and upload it again.",
    "too_short": "The text has {n:,} characters; at least {minimum:,} are needed.",
    "missing": "The uploaded text {key} is no longer in memory: upload the file again.",
}


class CorpusError(ValueError):
    """An upload that cannot be trained on. ``reason`` is a key of CORPUS_ERRORS, ``values`` fill it."""

    def __init__(self, reason: str, **values):
        super().__init__(CORPUS_ERRORS[reason].format(**values))
        self.reason, self.values = reason, values


@dataclass(frozen=True)
class Corpus:
    """An uploaded text as token ids, with a vocabulary sized to it: every character of a text of
    up to KEEP_ALL_CHARS characters; in a longer one, those seen at least MIN_COUNT times (at most
    MAX_CHARS). The rest share UNK."""

    key: str  # first 16 hex digits of the SHA-256 of the text (RunConfig.corpus)
    vocab: Vocab
    train: torch.Tensor  # (N_train,) int32 ids of the first 90% of the text
    held_out: torch.Tensor  # (N_held,) int32 ids of the last 10%
    n_chars: int  # characters in the text (after newline normalisation)
    n_distinct: int  # distinct characters in the text
    unk_fraction: float  # share of the text mapped to UNK

    @property
    def chars(self) -> str:
        """The kept characters, most frequent first."""
        return "".join(self.vocab.symbols[N_SPECIAL : self.vocab.unk])


def parse_corpus(data: bytes) -> Corpus:
    """Bytes of an uploaded file -> Corpus, or CorpusError saying what is wrong. Decoded as UTF-8
    text and nothing else (no pickle, no torch.load): a file is only ever read as characters."""
    if len(data) > UPLOAD_MAX_BYTES:
        raise CorpusError("too_large", size=len(data), limit=UPLOAD_MAX_BYTES)
    if not data.strip():
        raise CorpusError("empty")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16's byte-order marks; its NULs are not binary
        raise CorpusError("not_utf8", position=0)
    if b"\x00" in data:
        raise CorpusError("nul_bytes")
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is not part of the text
    except UnicodeDecodeError as err:
        raise CorpusError("not_utf8", position=err.start) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    control = len(CONTROL_CHARS.findall(text))
    if control > MAX_NONPRINTABLE * len(text):
        raise CorpusError("control_chars", share=control / len(text))
    if len(text) < UPLOAD_MIN_CHARS:
        raise CorpusError("too_short", n=len(text), minimum=UPLOAD_MIN_CHARS)
    counts = Counter(text)
    vocab = char_vocab(counts, 1 if len(text) <= KEEP_ALL_CHARS else MIN_COUNT, MAX_CHARS)
    ids = torch.tensor(vocab.encode(text), dtype=torch.int32)  # (N,)
    cut = round(len(ids) * (1 - HELD_OUT_FRACTION))
    return Corpus(
        key=hashlib.sha256(text.encode()).hexdigest()[:16],
        vocab=vocab,
        train=ids[:cut],
        held_out=ids[cut:],
        n_chars=len(ids),
        n_distinct=len(counts),
        unk_fraction=float((ids == vocab.unk).float().mean()),
    )


_corpora: OrderedDict[str, Corpus] = OrderedDict()  # key -> corpus, least recently used first
_corpora_lock = threading.Lock()  # sessions of a hosted app register and train concurrently


def register_corpus(corpus: Corpus) -> str:
    """Make ``corpus`` trainable as RunConfig(task="upload", corpus=key); returns the key. Kept
    in one process-wide store of MAX_CORPORA texts (least recently used dropped first), so a
    config stays a small, hashable value while the text travels beside it."""
    with _corpora_lock:
        _corpora[corpus.key] = corpus
        _corpora.move_to_end(corpus.key)
        while len(_corpora) > MAX_CORPORA:
            _corpora.popitem(last=False)
    return corpus.key


def get_corpus(key: str) -> Corpus:
    with _corpora_lock:
        if key not in _corpora:
            raise CorpusError("missing", key=key)
        _corpora.move_to_end(key)
        return _corpora[key]
