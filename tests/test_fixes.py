"""Can BatchNorm be saved? The norm registry (every norm is one complete record, and its flags say
what it does), the papers' fixes in their defining probes after training, and the bidirectional
encoder setting (masked-token prediction with key-padding masks)."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from core.cli import main as cli
from core.engine.data import BOS, IGNORE, MASK_RATE, N_SPECIAL, PAD, BatchStream, eval_set, hide_tokens, mask_id
from core.engine.metrics import batch_stats_mode
from core.engine.model import build_models
from core.engine.norms import make_norm
from core.engine.probes import batch_dependence
from core.engine.train import train_paired
from core.settings.config import NORMS, ConfigError, RunConfig
from core.settings.norm_specs import NORM_SPECS
from core.studies.leak import causality_map, largest_above_diagonal

CJK = re.compile(r"[\u4e00-\u9fff]")


# ---------------------------------------------------------------- one record per norm
def test_the_norms_are_told_apart_by_colour_and_by_every_name():
    """A chart's legend, a metric's label and a picker each name a norm one way: no two norms share
    a colour or any of their names, in either language."""
    for field in ("color", "labels", "short"):
        for lang in ("en", "zh"):
            values = [getattr(s, field) if field == "color" else getattr(s, field)[lang] for s in NORM_SPECS.values()]
            assert len(set(values)) == len(values), (field, lang, values)


@pytest.mark.parametrize("key", NORMS)
def test_every_norm_is_one_complete_record(key):
    spec = NORM_SPECS[key]
    for names in (spec.labels, spec.short):
        assert set(names) == {"en", "zh"} and all(names.values()), names
    assert all(len(spec.short[lang]) <= len(spec.labels[lang]) for lang in ("en", "zh")), (
        "short names fit narrow places"
    )
    assert re.fullmatch(r"#[0-9a-f]{6}", spec.color)
    layer = make_norm(key, 16, 1e-5, 0.1)
    x, valid = torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool)
    assert layer(x, valid).shape == x.shape
    assert spec.running <= spec.batch_in_training and spec.mean_var <= spec.running and spec.stacks <= spec.mean_var


@pytest.mark.parametrize("key", [k for k in NORMS if k != "none"])
def test_a_norms_flags_say_what_its_layers_do(key):
    """batch_in_training: a sentence's output depends on its batch companions when normalised as in
    training (at initialization: a warm-up, if any, has not begun); running: eval mode normalises
    with something else than the batch; mean_var: the layer reports batch against running mean and
    variance after a training step."""
    spec = NORM_SPECS[key]
    cfg = RunConfig(norms=(key,), batch_size=4)
    model = build_models(cfg)[key]
    assert bool(batch_dependence(model, cfg) > 1e-3) == spec.batch_in_training, key
    data = eval_set(cfg).select(range(4))
    with batch_stats_mode(model):
        as_training = model(data.tokens, data.valid)
    model.eval()
    deployed = model(data.tokens, data.valid)
    assert bool((as_training - deployed).abs().max() > 1e-3) == spec.running, key
    model.train()
    model(data.tokens, data.valid)
    reported = [getattr(m, "last_stats", None) is not None for m in model.norm_layers().values()]
    assert set(reported) == {spec.mean_var}, (key, reported)  # every layer reports batch vs running stats, or none
    assert list(model.stat_layers().values()) == (list(model.norm_layers().values()) if spec.mean_var else [])


@pytest.mark.parametrize("key", [k for k in NORMS if NORM_SPECS[k].batch_in_training])
def test_stacks_says_whether_stacked_batches_are_normalised_apart(key):
    """``stacks``: two batches stacked in one forward, each normalised with its own statistics
    (BatchNorm.groups), give what each gives alone; a norm without it refuses the stacked forward."""
    cfg = RunConfig(norms=(key,), batch_size=2)
    model = build_models(cfg)[key]
    a, b = eval_set(cfg).select([0, 1]), eval_set(cfg).select([2, 3])
    T = max(a.tokens.shape[1], b.tokens.shape[1])
    a, b = a.padded_to(T), b.padded_to(T)
    with batch_stats_mode(model):
        alone = torch.cat([model(a.tokens, a.valid), model(b.tokens, b.valid)])
        for m in model.norm_layers().values():
            m.groups = (2, torch.cat([a.valid | True, b.valid | True]))
        try:
            if not NORM_SPECS[key].stacks:
                with pytest.raises(NotImplementedError):
                    model(torch.cat([a.tokens, b.tokens]), torch.cat([a.valid, b.valid]))
                return
            stacked = model(torch.cat([a.tokens, b.tokens]), torch.cat([a.valid, b.valid]))
        finally:
            for m in model.norm_layers().values():
                m.groups = None
    assert (stacked - alone).abs().max() < 1e-5


def test_a_width_a_norm_cannot_split_is_refused_by_name():
    with pytest.raises(ConfigError, match="multiple of 8 for groupnorm"):
        RunConfig(norms=("groupnorm",), d_model=12, n_heads=2)
    RunConfig(norms=("ln",), d_model=12, n_heads=2)  # LayerNorm takes any width


# ---------------------------------------------------------------- the fixes, trained
@pytest.fixture(scope="module")
def fixes_run():
    """80 steps at batch 2: PowerNorm is past its 50-step warm-up, Batch Renormalization is
    relaxing its clipping (r_max and d_max grow from 1 and 0 between updates 50 and 150)."""
    return train_paired(
        RunConfig(norms=("ln", "bn", "powernorm", "batchrenorm", "groupnorm"), batch_size=2, steps=80),
        gradient_probe=True,
    )


def test_after_training_the_fixes_show_the_batch_dependence_that_defines_them(fixes_run):
    s = fixes_run.summary.set_index("norm")["batch_dependence"]
    assert s["groupnorm"] < 1e-5 and s["ln"] < 1e-5, s
    assert s["powernorm"] < 1e-5, "warm: its training forward normalises with the running quadratic mean"
    assert s["bn"] > 1e-3, s
    assert fixes_run.summary["final_eval_loss"].map(math.isfinite).all()


def test_batch_renormalization_depends_on_the_batch_only_while_it_clips(fixes_run):
    """Ioffe's correction makes the training forward (x - mu_B) / sigma_B * r + d equal the
    inference forward (x - mu_run) / sigma_run whenever r and d are inside their bounds: past its
    plain-BatchNorm phase a sentence's output no longer depends on its batch unless the batch's
    statistics are far enough from the running ones to be clipped. In its first 50 updates
    (r_max = 1, d_max = 0) it is BatchNorm, and depends on the batch like BatchNorm."""
    cfg, brn = fixes_run.config, fixes_run.models["batchrenorm"]
    assert fixes_run.summary.set_index("norm").loc["batchrenorm", "batch_dependence"] < 1e-5
    data = eval_set(cfg).select(range(2))
    with batch_stats_mode(brn):
        as_training = brn(data.tokens, data.valid)
    brn.eval()
    assert (as_training - brn(data.tokens, data.valid)).abs().max() < 1e-4, "unclipped: training = inference"
    young = train_paired(cfg.replace(norms=("batchrenorm",), steps=20)).summary["batch_dependence"].iloc[0]
    assert young > 1e-3, "in its plain-BatchNorm phase"


def test_the_fixes_gradient_still_depends_on_the_batch(fixes_run):
    """Forward and backward: a warm PowerNorm and an unclipped Batch Renormalization have a
    batch-independent forward, but the gradient of a sentence's own loss still changes with its
    companions (PowerNorm's approximated backward divides by the batch's quadratic mean; Batch
    Renormalization's goes through the batch mean and variance). Per-token norms: float noise."""
    s = fixes_run.summary.set_index("norm")
    forward, backward = s["batch_dependence"], s["grad_batch_dependence"]
    assert backward["ln"] < 1e-6 and backward["groupnorm"] < 1e-6, backward
    for norm in ("powernorm", "batchrenorm"):
        assert forward[norm] < 1e-5 and backward[norm] > 1e-3, (norm, forward[norm], backward[norm])
    assert backward["bn"] > 1e-2, backward


def test_batch_renormalization_reports_its_clipped_channels_at_every_step(fixes_run):
    """renorm_clipped: every channel clipped in the plain-BatchNorm phase (r_max = 1, d_max = 0),
    fewer as the bounds relax; the summary's clipped_share is its mean; other norms have none."""
    h = fixes_run.history
    clipped = h[(h["norm"] == "batchrenorm") & (h["metric"] == "renorm_clipped")].set_index("step")["value"]
    assert list(clipped.index) == list(range(fixes_run.steps_done))
    assert (clipped.loc[:49] == 1.0).all(), "the first 50 updates are plain BatchNorm"
    assert clipped.loc[70:].max() < 1.0 and clipped.between(0, 1).all()
    s = fixes_run.summary.set_index("norm")["clipped_share"]
    assert s["batchrenorm"] == pytest.approx(clipped.mean())
    assert s.drop("batchrenorm").isna().all()
    assert h[(h["norm"] != "batchrenorm") & (h["metric"] == "renorm_clipped")].empty


def test_a_batch_renorm_layer_counts_a_channel_clipped_when_r_or_d_hits_its_bound():
    brn = make_norm("batchrenorm", 4)
    brn.num_batches_tracked.fill_(1000)  # past the ramp: r in [1/3, 3], d in [-5, 5]
    x = torch.randn(2, 8, 4, generator=torch.Generator().manual_seed(0))
    var, mean = torch.var_mean(x.reshape(-1, 4), dim=0, correction=0)
    brn.running_mean.copy_(mean)
    brn.running_var.copy_(var)
    brn.running_var[0] = var[0] * 100  # sigma_B / sigma_run = 1/10: r clipped at 1/3
    brn.running_mean[1] = mean[1] - 10 * (var[1] + 1e-5).sqrt()  # d = 10: clipped at 5
    brn.train()
    brn(x, torch.ones(2, 8, dtype=torch.bool))
    assert float(brn.last_clipped) == pytest.approx(0.5)


def test_a_warm_powernorm_scores_the_same_both_ways_and_batchrenorm_tracks_statistics(fixes_run):
    s = fixes_run.summary.set_index("norm")
    assert s.loc["powernorm", "final_eval_loss"] == pytest.approx(s.loc["powernorm", "final_eval_loss_batch_stats"])
    h = fixes_run.history
    brn = h[(h["norm"] == "batchrenorm") & (h["metric"] == "tid_var")]
    assert len(brn) and brn["value"].notna().all(), "its batch vs running statistics are measured like BN's"
    assert h[(h["norm"] == "powernorm") & h["metric"].str.startswith(("tid", "bn_dist"))].empty


def test_the_causality_map_covers_the_fixes(fixes_run):
    cfg, models = fixes_run.config, fixes_run.models
    assert largest_above_diagonal(causality_map(models["groupnorm"], cfg, "batch_stats")) < 1e-9
    assert largest_above_diagonal(causality_map(models["powernorm"], cfg, "batch_stats")) < 1e-9
    assert largest_above_diagonal(causality_map(models["batchrenorm"], cfg, "eval")) < 1e-9


# ---------------------------------------------------------------- the encoder setting
def test_hidden_tokens_are_a_sixth_of_the_symbols_and_every_sentence_has_one():
    cfg = RunConfig(attention="bidirectional", batch_size=64)
    batch = next(BatchStream.for_run(cfg))
    plain = next(BatchStream.for_run(cfg.replace(attention="causal")))
    hidden = batch.tokens == mask_id(cfg)
    assert batch.valid.equal(plain.valid), "the same sentences in the same batches as a causal run"
    assert (batch.targets[hidden] == plain.tokens[hidden]).all() and (batch.targets[~hidden] == IGNORE).all()
    assert (plain.tokens[hidden] >= N_SPECIAL).all(), "never BOS, never a pad"
    assert (batch.tokens[~hidden] == plain.tokens[~hidden]).all()
    assert hidden.any(1).all(), "every sentence has a target"
    symbols = int((plain.valid & (plain.tokens >= N_SPECIAL)).sum())
    assert MASK_RATE * 0.8 < int(hidden.sum()) / symbols < MASK_RATE * 1.5
    g = torch.Generator().manual_seed(0)
    again = hide_tokens(plain, mask_id(cfg), g)
    assert not again.tokens.equal(batch.tokens), "its own generator: other tokens hidden"
    assert (eval_set(cfg).tokens == mask_id(cfg)).any() and eval_set(cfg).tokens.equal(
        eval_set(cfg.replace(seed=3)).tokens
    )
    assert PAD not in batch.targets[hidden].tolist() and BOS not in batch.targets[hidden].tolist()


def test_an_encoder_sees_later_tokens_and_pads_stay_out():
    cfg = RunConfig(attention="bidirectional", norms=("ln",), batch_size=4)
    model = build_models(cfg)["ln"]
    assert largest_above_diagonal(causality_map(model, cfg, "eval")) > 1e-6, "bidirectional: later tokens count"
    full = eval_set(cfg)
    data = full.select(torch.nonzero(full.lengths <= cfg.max_len // 2).flatten()[:4])
    longer = data.padded_to(cfg.max_len)
    model.eval()
    a = model(data.tokens, data.valid)
    b = model(longer.tokens.masked_fill(~longer.valid, 7), longer.valid)[:, : data.tokens.shape[1]]
    assert (a - b)[data.valid].abs().max() < 1e-5, "key-padding masks: pads (whatever they hold) are not attended"


def test_the_cli_trains_the_papers_setting(capsys):
    args = ["compare", "--attention", "bidirectional", "--norms", "ln,bn,powernorm", "--steps", "60", "--json"]
    assert cli(args) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["norm"] for r in runs] == ["ln", "bn", "powernorm"]
    assert all(math.isfinite(r["final_eval_loss"]) and r["final_eval_loss"] < math.log(45) for r in runs)
    assert all(r["config"]["attention"] == "bidirectional" for r in runs)
