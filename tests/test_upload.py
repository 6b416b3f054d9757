"""Your own text: parsing an upload (good, empty, binary, not UTF-8, too large, too short), the
character-level task built from it, and the Live page's upload box: a bad file gets a clear message
and no exception, a good one switches the task and trains."""

from __future__ import annotations

import hashlib

import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.engine.data import BOS, IGNORE, N_SPECIAL, PAD, BatchStream, eval_set
from core.engine.train import train_paired
from core.engine.uploads import (
    KEEP_ALL_CHARS,
    MIN_COUNT,
    UPLOAD_MAX_BYTES,
    UPLOAD_MIN_CHARS,
    CorpusError,
    get_corpus,
    parse_corpus,
    register_corpus,
)
from core.settings.config import ConfigError, RunConfig
from core.settings.tasks import TASKS
from tests.helpers import CHARTS

pytestmark = pytest.mark.usefixtures("empty_store")  # every Run trains
TEXT = (
    "It was the best of times, it was the worst of times; the quick brown fox jumps over the lazy dog.\n" * 3
    + "天地玄黄，宇宙洪荒。日月盈昃，辰宿列张。\n"
) * 15  # 4.7k characters, 50 distinct ones


def corpus_config(**kw) -> RunConfig:
    key = register_corpus(parse_corpus(TEXT.encode()))
    return RunConfig(task="upload", corpus=key, **kw)


# ---------------------------------------------------------------- parsing
def test_a_good_text_becomes_a_character_vocabulary_and_a_held_out_tail():
    c = parse_corpus(TEXT.encode())
    assert c.key == hashlib.sha256(TEXT.encode()).hexdigest()[:16]
    assert c.n_chars == len(TEXT) and c.n_distinct == len(set(TEXT)) == 50
    assert sorted(c.chars) == sorted(set(TEXT)) and c.unk_fraction == 0, "a short text keeps every character"
    assert c.chars[0] == " ", "the most frequent first"
    vocab = c.vocab
    assert vocab.size == N_SPECIAL + 50 + 1 and vocab.unk == vocab.size - 1  # PAD, BOS, EOS, the characters, UNK
    ids = torch.cat([c.train, c.held_out])
    assert len(c.held_out) == pytest.approx(0.1 * len(TEXT), abs=1)
    assert int(ids.min()) >= N_SPECIAL and int(ids.max()) < vocab.unk
    assert vocab.decode(c.train[:30].tolist()) == "It was the best of times, it w"
    assert parse_corpus(b"\xef\xbb\xbf" + TEXT.encode()).key == c.key, "a byte-order mark is not text"
    assert parse_corpus(TEXT.replace("\n", "\r\n").encode()).key == c.key, "Windows line ends are newlines"


def test_a_large_text_drops_only_its_rarest_characters():
    rare = "".join(chr(0x4E00 + i) for i in range(MIN_COUNT - 1)) * (MIN_COUNT - 1)  # seen MIN_COUNT - 1 times each
    text = TEXT * (KEEP_ALL_CHARS // len(TEXT) + 1) + rare
    c = parse_corpus(text.encode())
    assert set(c.chars) == set(TEXT), "every character seen at least MIN_COUNT times is kept, the rarer ones not"
    assert c.unk_fraction == pytest.approx(len(rare) / len(text))
    assert c.vocab.encode(rare[:2]) == [c.vocab.unk] * 2


def test_a_chinese_text_is_not_mostly_unk():
    """A Chinese text of a few thousand characters (the article this project grew from is one): a
    vocabulary sized to it keeps its characters, so almost none are UNK (the old fixed vocabulary of
    44 characters made 42% of the article UNK)."""
    lines = TASKS["tangshi"].lines().train
    text = "\n".join(lines[:800])  # about 5,600 characters, over 1,500 distinct
    c = parse_corpus(text.encode())
    assert c.n_distinct > 1000 and c.unk_fraction < 0.05, (c.n_distinct, c.unk_fraction)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b" \n\t\n ", "empty"),
        (b"PK\x03\x04\x00\x00" + b"a" * 2000, "nul_bytes"),  # a zip, an image, a torch file...
        (bytes(range(1, 32)) * 100, "control_chars"),  # valid UTF-8, but not text
        ("café ".encode("latin-1") * 400, "not_utf8"),
        ("text".encode("utf-16") * 500, "not_utf8"),
        (b"a" * (UPLOAD_MAX_BYTES + 1), "too_large"),
        (b"just a few words", "too_short"),
    ],
    ids=["empty", "blank", "nul-bytes", "control-chars", "latin-1", "utf-16", "too-large", "too-short"],
)
def test_a_bad_upload_says_what_is_wrong(data, reason):
    with pytest.raises(CorpusError) as err:
        parse_corpus(data)
    assert err.value.reason == reason and str(err.value)


def test_messages_name_the_numbers():
    with pytest.raises(CorpusError, match=f"at least {UPLOAD_MIN_CHARS:,}"):
        parse_corpus(b"x" * 10)
    with pytest.raises(CorpusError, match="position 4"):
        parse_corpus(b"abcd\xff" * 400)


# ---------------------------------------------------------------- the task built from a text
def test_upload_batches_are_padded_windows_of_the_text():
    cfg = corpus_config(lengths="longtail", batch_size=8)
    stream = BatchStream.for_run(cfg)
    batches = [next(stream) for _ in range(6)]
    for b in batches:
        assert (b.tokens[:, 0] == BOS).all()
        assert ((b.tokens >= 0) & (b.tokens < get_corpus(cfg.corpus).vocab.size)).all()
        valid = b.valid
        assert (b.tokens[~valid] == PAD).all() and (b.targets[~valid] == IGNORE).all()
        # each input is the previous target: next-character prediction
        assert (b.tokens[:, 1:][valid[:, 1:]] == b.targets[:, :-1][valid[:, 1:]]).all()
    assert sum(b.pad_fraction for b in batches) > 0, "long-tailed lengths pad the batches"
    again = next(BatchStream.for_run(cfg))
    assert torch.equal(again.tokens, batches[0].tokens), "same config, same batches"


def test_held_out_windows_come_from_the_end_of_the_text():
    cfg = corpus_config()
    corpus = get_corpus(cfg.corpus)
    held = "".join(map(chr, corpus.held_out.tolist()))  # compare id sequences as strings
    data = eval_set(cfg)
    for row in range(8):
        window = data.targets[row][data.valid[row]].tolist()
        assert "".join(map(chr, window)) in held


def test_the_config_names_its_text_and_keeps_other_ids():
    assert "corpus" not in RunConfig().to_dict(), "configs without a text keep their ids"
    with pytest.raises(ConfigError) as err:
        RunConfig(task="upload")
    assert err.value.field == "corpus"
    with pytest.raises(ConfigError):
        RunConfig(task="text", corpus="0123456789abcdef")
    cfg = corpus_config()
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(CorpusError, match="no longer in memory"):
        next(BatchStream.for_run(cfg.replace(corpus="f" * 16)))


def test_a_good_upload_trains():
    res = train_paired(corpus_config(steps=30, eval_every=30, eval_size=32, batch_size=8, lr=1e-2))
    losses = res.history[res.history["metric"] == "eval_loss"].groupby("norm")["value"]
    assert (losses.last() < losses.first() - 0.3).all(), losses.agg(["first", "last"])


# ---------------------------------------------------------------- the Live page's upload box
def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="live.upload").set_value((name, data, "text/plain")).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"\x00\x01binary" * 200, "not a plain-text file"),
        ("naïve".encode("latin-1") * 300, "not UTF-8"),
        (b"a" * (UPLOAD_MAX_BYTES + 1), "the limit is"),
        (b"short", "at least"),
    ],
    ids=["empty", "binary", "latin-1", "too-large", "too-short"],
)
def test_the_page_explains_a_bad_upload(data, words, live_page):
    at = upload(live_page, "mine.txt", data)
    assert len(at.error) == 1 and words in at.error[0].value and "mine.txt" in at.error[0].value
    assert at.selectbox(key="live.task").value == "text", "a bad file does not switch the task"


def test_a_good_upload_switches_the_task_trains_and_a_removal_switches_back(live_page):
    at = upload(live_page, "dickens.txt", TEXT.encode())
    assert not at.error and at.success and "dickens.txt" in at.success[0].value
    assert at.selectbox(key="live.task").value == "upload"
    at.number_input(key="live.steps").set_value(8)
    at.button(key="live.run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    out = at.session_state["live.outcome"]
    assert out.config.task == "upload" and out.config.corpus == parse_corpus(TEXT.encode()).key
    assert out.data["history"]["step"].max() == 8 and len(at.get("vega_lite_chart")) == CHARTS["live"]
    at.file_uploader(key="live.upload").clear().run()
    assert not at.exception and at.selectbox(key="live.task").value == "text"


def test_choosing_the_upload_task_without_a_text_names_what_to_do(live_page):
    at = live_page
    at.selectbox(key="live.task").set_value("upload")
    at.button(key="live.run").click().run()
    assert not at.exception
    assert len(at.error) == 1 and "upload a plain-text file" in at.error[0].value
