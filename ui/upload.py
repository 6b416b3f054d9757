"""Your own text: the Live page's upload box.

The file is read as UTF-8 text and nothing else (``core.engine.uploads.parse_corpus``: no pickle, no
torch.load), registered for training under its content hash, and kept for the session. A form whose
task is "your own text" trains on it: ``controls.config_form`` puts its key into the RunConfig, and
the data layer finds the text by that key.
"""

from __future__ import annotations

import re

import streamlit as st

from core.engine.uploads import (
    CORPUS_ERRORS,
    HELD_OUT_FRACTION,
    KEEP_ALL_CHARS,
    MAX_CHARS,
    MIN_COUNT,
    UPLOAD_MAX_BYTES,
    CorpusError,
    parse_corpus,
    register_corpus,
)
from ui.i18n import t

TEXT = "upload.text"  # (file name, Corpus) of the session's accepted text
ERROR = "upload.error"  # (file name, CorpusError) of a rejected file
SEEN = "upload.seen"  # id of the file last read: each upload is parsed once
MANY_UNK = 0.2  # above this share of UNK characters the visitor is told what it means
SHOWN_CHARS = 200  # of the vocabulary, most frequent first (a Chinese text has thousands)


def active_key() -> str:
    """The key of the session's text ('' if none), registered again on the way: the process-wide
    store keeps a bounded number of texts and may have dropped it."""
    held = st.session_state.get(TEXT)
    return register_corpus(held[1]) if held else ""


def uploader(page: str):
    """The upload box. A good file switches the page's task to "your own text"; removing it, or a
    bad file, switches back to the synthetic text task."""
    with st.expander(t("Your own text"), icon=":material/upload_file:", expanded=TEXT in st.session_state):
        st.caption(
            t(
                "Train the language-model task on a plain-text file of yours, character by character. A text of up "
                "to {keep_all:,} characters keeps every character it has; in a longer one, characters seen fewer "
                "than {min_count} times share one UNK token (at most {max_chars:,} are kept). Each sentence is a "
                "window of the text with a length drawn from the sentence-length settings, so batches are padded "
                "as usual. The last {held:.0%} of the text is held out.",
                keep_all=KEEP_ALL_CHARS,
                min_count=MIN_COUNT,
                max_chars=MAX_CHARS,
                held=HELD_OUT_FRACTION,
            )
        )
        file = st.file_uploader(
            t("Plain-text file (.txt, UTF-8, at most 1 MB)"),
            type=["txt"],
            key=f"{page}.upload",
            max_upload_size=UPLOAD_MAX_BYTES // 2**20,
        )
        _read(page, file)
        _status()


def _read(page: str, file):
    task = f"{page}.task"  # the form's task widget, drawn after this box: its value may still be set
    if file is None:
        if st.session_state.pop(TEXT, None) is not None and st.session_state.get(task) == "upload":
            st.session_state[task] = "text"
        st.session_state.pop(ERROR, None)
        st.session_state.pop(SEEN, None)
        return
    if st.session_state.get(SEEN) == file.file_id:
        return
    st.session_state[SEEN] = file.file_id
    try:
        corpus = parse_corpus(file.getvalue())
    except CorpusError as err:
        st.session_state[ERROR] = (_shown(file.name), err)
        if st.session_state.pop(TEXT, None) is not None and st.session_state.get(task) == "upload":
            st.session_state[task] = "text"
        return
    register_corpus(corpus)
    st.session_state[TEXT] = (_shown(file.name), corpus)
    st.session_state.pop(ERROR, None)
    st.session_state[task] = "upload"


def _shown(name: str) -> str:
    """A file name as text in a message: its markdown characters escaped, its length capped."""
    return re.sub(r"([\\`*_\[\]()<>#|~$])", r"\\\1", name[:80])


def _status():
    if ERROR in st.session_state:
        name, err = st.session_state[ERROR]
        st.error(f"**{name}**: {t(CORPUS_ERRORS[err.reason], **err.values)}", icon=":material/error:")
        return
    if TEXT not in st.session_state:
        return
    name, corpus = st.session_state[TEXT]
    st.success(
        t(
            "**{name}**: {n:,} characters, {distinct:,} distinct; {unk:.1%} of the text is UNK. "
            "The task is now “your own text”: press Run.",
            name=name,
            n=corpus.n_chars,
            distinct=corpus.n_distinct,
            unk=corpus.unk_fraction,
        ),
        icon=":material/check_circle:",
    )
    shown = corpus.chars[:SHOWN_CHARS].replace("\n", "⏎").replace(" ", "␣").replace("\t", "⇥")
    shown += "…" if len(corpus.chars) > SHOWN_CHARS else ""
    st.caption(t("Vocabulary, most frequent first: {chars}", chars=f"`` {shown} ``"))
    if corpus.unk_fraction > MANY_UNK:
        st.warning(
            t(
                "{unk:.0%} of the characters are rare ones that all read as UNK: the model can only tell the "
                "frequent ones apart.",
                unk=corpus.unk_fraction,
            ),
            icon=":material/warning:",
        )
