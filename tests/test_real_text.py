"""Real text and what the models do with it: the task registry (every task's batches, vocabulary
and held-out set), what each model writes, the causality map, and the comparability of the tasks."""

from __future__ import annotations

import json
import math

import pytest
import torch

from core.cli import main as cli
from core.engine.data import BOS, EOS, IGNORE, PAD, BatchStream, eval_set, uniform_loss, vocab_of
from core.engine.train import train_paired
from core.settings.config import LENGTHS, ConfigError, RunConfig, lengths_for
from core.settings.tasks import N_SPECIAL, TASKS, word_vocab
from core.studies.generate import generate, generations, prompts
from core.studies.leak import causality_map, largest_above_diagonal, leaks

BUILT_IN = [k for k, task in TASKS.items() if task.sampler != "windows"]  # the upload task: tests/test_upload.py


def config(task: str, **kw) -> RunConfig:
    return RunConfig(task=task, lengths=lengths_for(task), **kw)


# ---------------------------------------------------------------- the tasks
@pytest.mark.parametrize("task", BUILT_IN)
def test_every_task_draws_padded_sentences_in_its_own_vocabulary(task):
    cfg = config(task, batch_size=8)
    vocab, spec = vocab_of(cfg), TASKS[task]
    for b in [next(BatchStream.for_run(cfg)), eval_set(cfg)]:
        valid, n = b.valid, len(b.lengths)
        assert (valid.sum(1) == b.lengths).all() and (valid[:, 0]).all()
        assert ((b.lengths >= cfg.min_len) & (b.lengths <= cfg.max_len)).all()
        assert (b.tokens[~valid] == PAD).all() and (b.targets[~valid] == IGNORE).all()
        assert int(b.tokens.max()) < vocab.size and int(b.targets.max()) < vocab.size
        assert (b.tokens[:, 1:][valid[:, 1:]] == b.targets[:, :-1][valid[:, 1:]]).all(), "next-token targets"
        last = b.targets[torch.arange(n), b.lengths - 1]
        assert (last == EOS).all() == spec.eos, "a sentence ends by predicting EOS where the task has one"
        assert (b.tokens[:, 0] == BOS).all() == (task != "control")
    assert len(LENGTHS) > len(spec.lengths) and cfg.lengths in spec.lengths


def test_a_task_takes_only_its_own_length_settings():
    with pytest.raises(ConfigError, match="shakespeare task takes lengths natural"):
        RunConfig(task="shakespeare", lengths="uniform")
    with pytest.raises(ConfigError, match="text task takes lengths"):
        RunConfig(task="text", lengths="natural")
    assert lengths_for("shakespeare", "longtail") == "natural" and lengths_for("text", "longtail") == "longtail"
    assert lengths_for("control") == "fixed" and lengths_for("text", "natural") == "uniform"


@pytest.mark.parametrize("task", ["shakespeare", "tangshi"])
def test_a_real_text_is_lines_with_their_own_vocabulary_and_held_out_lines(task):
    corpus = TASKS[task].lines()
    assert len(corpus.train) > 9 * len(corpus.held_out) > 0
    assert not set(corpus.held_out) <= set(corpus.train), "held-out lines are not training lines"
    cfg = config(task)
    vocab, data = vocab_of(cfg), eval_set(cfg)
    held = set(corpus.held_out)
    sentences = [vocab.decode(row.tolist()) for row in data.tokens]
    assert all(s in held for s in sentences if vocab.unk not in vocab.encode(s)), "the held-out set is held-out lines"
    assert len(set(sentences)) == len(sentences), "distinct lines"
    assert eval_set(cfg.replace(seed=5)).tokens.equal(data.tokens), "the same held-out lines for every seed"
    assert math.isclose(uniform_loss(cfg), math.log(vocab.size - N_SPECIAL + 1))


def test_the_chinese_vocabulary_holds_thousands_of_characters_and_few_unk():
    corpus = TASKS["tangshi"].lines()
    vocab = corpus.vocab
    assert vocab.size - N_SPECIAL - 1 >= 1000 and corpus.n_distinct > vocab.size - N_SPECIAL
    ids = torch.tensor(vocab.encode("".join(corpus.train[:2000])))
    assert float((ids == vocab.unk).float().mean()) < 0.01
    line = corpus.train[0]
    assert vocab.decode([BOS, *vocab.encode(line), EOS, PAD]) == line


def test_the_synthetic_words_read_as_distinct_pseudo_words():
    words = word_vocab().symbols[N_SPECIAL:]
    assert len(words) == len(set(words)) == 45 and all(w.isalpha() and w.islower() for w in words)
    assert word_vocab().decode([BOS, N_SPECIAL, N_SPECIAL + 1, EOS, N_SPECIAL]) == f"{words[0]} {words[1]}"


@pytest.mark.slow
@pytest.mark.parametrize("task", ["shakespeare", "tangshi"])
def test_the_cli_trains_real_text_well_below_the_uniform_guess(task, capsys):
    assert cli(["compare", "--task", task, "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    guess = uniform_loss(config(task))
    for run in runs:
        assert math.isfinite(run["final_eval_loss"]) and math.isfinite(run["final_eval_loss_batch_stats"])
        assert run["final_eval_loss"] < guess - 1.5, (run["norm"], run["final_eval_loss"], guess)


# ---------------------------------------------------------------- what each model writes
@pytest.fixture(scope="module")
def tangshi_run():
    return train_paired(config("tangshi", norms=("bn", "ln"), steps=40))


def test_generations_are_the_same_for_the_same_seed_and_differ_between_seeds(tangshi_run):
    cfg = tangshi_run.config
    first = generations(tangshi_run.models, cfg)
    assert first.equals(generations(tangshi_run.models, cfg))
    other = generations(tangshi_run.models, cfg.replace(seed=1))
    assert list(first["prompt"]) == list(other["prompt"]), "the same prompts"
    assert list(first["continuation"]) != list(other["continuation"]), "other random numbers, other lines"
    assert set(first["norm"]) == {"bn", "ln"} and (first["continuation"].str.len() > 0).all()


def test_a_model_generates_in_eval_mode_and_leaves_its_state_alone(tangshi_run):
    cfg, model = tangshi_run.config, tangshi_run.models["bn"]
    bn = model.blocks[0].norm1
    before = bn.running_mean.clone()
    model.train()
    tokens, lengths = prompts(cfg)
    out = generate(model, cfg, tokens, lengths)
    assert model.training and bn.running_mean.equal(before), "mode and running statistics as they were"
    assert out[:, : int(lengths.min())].equal(tokens[:, : int(lengths.min())]), "the prompts are kept"
    # Eval mode: a row's continuation does not depend on the other rows it is generated with.
    alone = generate(model, cfg, tokens[:1], lengths[:1])
    assert alone[0, : int(lengths[0]) + 1].equal(out[0, : int(lengths[0]) + 1])


# ---------------------------------------------------------------- BatchNorm reads the future
@pytest.fixture(scope="module")
def trained_text():
    return train_paired(RunConfig(norms=("bn", "masked_bn", "ln"), steps=30, batch_size=8))


def test_the_causality_map_shows_batch_statistics_reading_the_future(trained_text):
    cfg = trained_text.config
    m = trained_text.models
    above = {
        (n, mode): largest_above_diagonal(causality_map(m[n], cfg, mode)) for n in m for mode in ("batch_stats", "eval")
    }
    assert above["ln", "batch_stats"] < 1e-9 and above["ln", "eval"] < 1e-9, above
    assert above["bn", "batch_stats"] > 1e-6 and above["masked_bn", "batch_stats"] > 1e-6, above
    assert above["bn", "eval"] < 1e-9 and above["masked_bn", "eval"] < 1e-9, above
    below = causality_map(m["ln"], cfg, "eval")
    assert torch.nanmean(torch.tril(below, diagonal=0)[torch.tril(torch.ones_like(below)) > 0]) > 1e-3, (
        "earlier inputs do move later outputs"
    )


def test_the_causality_frame_has_every_norm_and_mode(trained_text):
    _, frame = leaks(trained_text.models, trained_text.config)
    assert set(map(tuple, frame[["norm", "mode"]].drop_duplicates().values)) == {
        (n, mode) for n in ("bn", "masked_bn", "ln") for mode in ("batch_stats", "eval")
    }
    assert frame["influence"].notna().all() and (frame["influence"] >= 0).all()
    ln = frame[frame["norm"] == "ln"]
    assert ln[ln["j"] > ln["i"]]["influence"].max() < 1e-9


def test_the_cli_probe_reports_the_largest_influence_above_the_diagonal(capsys):
    args = ["probe", "causality", "--norms", "bn,masked_bn,ln", "--steps", "10", "--json"]
    assert cli(args) == 0
    rows = {(r["norm"], r["mode"]): r for r in json.loads(capsys.readouterr().out)["causality"]}
    assert rows["ln", "eval"]["max_above_diagonal"] < 1e-9 and rows["bn", "eval"]["max_above_diagonal"] < 1e-9
    assert rows["bn", "batch_stats"]["max_above_diagonal"] > 1e-6
    assert cli(["generate", "--task", "shakespeare", "--norms", "ln", "--steps", "5", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)["generate"]
    assert len(made) == 4 and all(set(r) >= {"norm", "prompt", "continuation", "ended"} for r in made)
