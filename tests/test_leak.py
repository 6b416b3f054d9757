"""Where a batch-statistics norm lets information in (core.studies.leak): the KL measure, the four channels
against a written-out reference, the bounds at the CLI's default config, the causality map's
probed sentences, and the gradient's batch dependence."""

from __future__ import annotations

import contextlib
import io
import json

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from core.cli import main as cli
from core.engine.data import PAD, eval_set, vocab_of
from core.engine.metrics import batch_stats_mode, loss_fn
from core.engine.model import build_models
from core.engine.probes import grad_batch_dependence
from core.engine.train import train_paired
from core.settings.config import RunConfig
from core.settings.tasks import N_SPECIAL
from core.studies.leak import (
    CHANNELS,
    channel_summary,
    kl,
    probe_model,
    probed_batches,
    swapped,
)


def test_kl_is_the_divergence_of_the_softmax_distributions():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    want = F.kl_div(b.double().log_softmax(-1), a.double().log_softmax(-1), log_target=True, reduction="none").sum(-1)
    assert torch.allclose(kl(a, b), want, atol=1e-12)
    assert kl(a, a).abs().max() == 0
    assert kl(a, a + 3.0).abs().max() < 1e-12, "a shift of every logit leaves the distribution as it is"


def test_a_swapped_token_is_always_another_symbol():
    n_symbols = 10
    tokens = torch.arange(0, N_SPECIAL + n_symbols)
    out = swapped(tokens, n_symbols)
    assert (out >= N_SPECIAL).all() and (out < N_SPECIAL + n_symbols).all()
    assert (out != tokens).all()


# ---------------------------------------------------------------- the channels, written out
def reference_channels(model, cfg: RunConfig, mode: str) -> dict[str, list[float]]:
    """The four channels of the first probed sentence, one plain forward per changed batch, KL by
    F.kl_div: what probe_model computes with stacked, grouped forwards."""
    batch, s = probed_batches(cfg, 1)[0]
    n = int(batch.lengths[s])
    n_symbols = vocab_of(cfg).size - N_SPECIAL
    ctx = batch_stats_mode(model) if mode == "batch_stats" else torch.no_grad()
    if mode == "eval":
        model.eval()

    def dist(tokens, valid, row=s):
        return model(tokens, valid)[row, :n].double().log_softmax(-1)

    def div(p, q):  # KL(p || q) per position
        return F.kl_div(q, p, log_target=True, reduction="none").sum(-1)

    out = {c: [] for c in CHANNELS}
    with torch.no_grad(), ctx:
        base = dist(batch.tokens, batch.valid)
        for j in range(n):
            t = batch.tokens.clone()
            t[s, j] = (t[s, j] - N_SPECIAL + n_symbols // 2) % n_symbols + N_SPECIAL
            out["own_later"] += div(base, dist(t, batch.valid))[:j].tolist()
        for r in range(batch.tokens.shape[0]):
            for p in range(int(batch.lengths[r])):
                if r == s:
                    continue
                t = batch.tokens.clone()
                t[r, p] = (t[r, p] - N_SPECIAL + n_symbols // 2) % n_symbols + N_SPECIAL
                out["other_sentence"].append(float(div(base, dist(t, batch.valid)).max()))
        for k in range(2, n - 1):
            t, v = batch.tokens.clone(), batch.valid.clone()
            t[s, k + 1 :], v[s, k + 1 :] = PAD, False
            out["length"] += div(base, dist(t, v))[: k + 1].tolist()
    return out


@pytest.mark.parametrize("norm", ["bn", "masked_bn", "batchrenorm", "ln"])
def test_the_channels_equal_a_written_out_probe(norm):
    """Stacked and grouped forwards (or batch by batch, for a norm without groups) give what one
    forward per changed batch gives. (b) is compared by its largest change over every changed
    token, of which the probe changes up to 48 (all of them in these batches)."""
    cfg = RunConfig(norms=(norm,), batch_size=4, max_len=12, n_layers=1)
    model = build_models(cfg)[norm]
    for mode in ("batch_stats", "eval"):
        rows, _ = probe_model(model, cfg, mode, batches=1, placements=0)
        got = {r["channel"]: r for r in rows}
        want = reference_channels(model, cfg, mode)
        for c in ("own_later", "length"):
            assert got[c]["pairs"] == len(want[c]), (c, mode)
            assert got[c]["max_kl"] == pytest.approx(max(want[c]), rel=1e-4, abs=1e-12), (c, mode)
            assert got[c]["mean_kl"] == pytest.approx(sum(want[c]) / len(want[c]), rel=1e-4, abs=1e-12), (c, mode)
        assert got["other_sentence"]["max_kl"] == pytest.approx(max(want["other_sentence"]), rel=1e-4, abs=1e-12)
        if mode == "batch_stats" and norm != "ln":
            assert got["own_later"]["max_kl"] > 1e-8 and got["other_sentence"]["max_kl"] > 1e-8, (norm, got)


def test_a_cut_makes_the_later_positions_pads_and_keeps_the_earlier_ones():
    """Channel (c) measures only the positions it keeps: under a per-token norm with causal
    attention they cannot move, so it is 0 to float noise, while a batch-statistics norm moves."""
    cfg = RunConfig(norms=("ln", "masked_bn"), batch_size=4, max_len=16, n_layers=1)
    models = build_models(cfg)
    ln = {r["channel"]: r for r in probe_model(models["ln"], cfg, "batch_stats", 2, 0)[0] if r["sentence"] == 0}
    bn = {r["channel"]: r for r in probe_model(models["masked_bn"], cfg, "batch_stats", 2, 0)[0] if r["sentence"] == 0}
    assert ln["length"]["max_kl"] < 1e-9 and bn["length"]["max_kl"] > 1e-8


def test_the_probed_sentences_are_long_enough_for_a_map():
    """The longest held-out sentences, batched as in training: at least 12 tokens where the task's
    lengths allow, bucketed long-tailed lengths included (their longest batch holds the long ones)."""
    for cfg in (RunConfig(), RunConfig(batch_size=8, batching="bucketed", lengths="longtail")):
        probed = probed_batches(cfg)
        assert len(probed) == 4
        lengths = [int(b.lengths[s]) for b, s in probed]
        assert min(lengths) >= 12, (cfg.batching, lengths)
        assert all(int(b.lengths[s]) == int(b.lengths.max()) for b, s in probed)
        assert lengths == sorted(lengths, reverse=True)
        assert max(lengths) == int(eval_set(cfg).lengths.max())


# ---------------------------------------------------------------- the bounds at the CLI's default config
@pytest.fixture(scope="module")
def default_leaks():
    """python -m core probe leak --json at the defaults of python -m core compare (text, batch 8,
    uniform lengths, random batching, 300 steps, BatchNorm and LayerNorm)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli(["probe", "leak", "--json"]) == 0
    out = json.loads(buf.getvalue())
    assert out["config"] == RunConfig().to_dict()
    return {(r["norm"], r["mode"], r["channel"]): r for r in out["leak"]}


def test_layer_norm_moves_through_no_channel_in_either_mode(default_leaks):
    for mode in ("batch_stats", "eval"):
        for c in CHANNELS:
            assert default_leaks["ln", mode, c]["max_kl"] < 1e-6, (mode, c)


def test_running_statistics_close_channels_a_to_c(default_leaks):
    for c in ("own_later", "other_sentence", "length"):
        assert default_leaks["bn", "eval", c]["max_kl"] < 1e-6, c


def test_batch_statistics_leak_through_later_tokens_other_sentences_and_length(default_leaks):
    for c in ("own_later", "other_sentence", "length", "batch"):
        assert default_leaks["bn", "batch_stats", c]["max_kl"] > 1e-4, c
        assert default_leaks["bn", "batch_stats", c]["mean_kl"] <= default_leaks["bn", "batch_stats", c]["max_kl"]


def test_the_summary_weights_sentences_by_their_pairs():
    rows = pd.DataFrame(
        {
            "norm": "bn",
            "mode": "eval",
            "channel": "length",
            "sentence": [0, 1],
            "mean_kl": [1.0, 4.0],
            "max_kl": [2.0, 5.0],
            "pairs": [3, 1],
        }  # fmt: skip
    )
    out = channel_summary(rows).iloc[0]
    assert out["mean_kl"] == pytest.approx((1.0 * 3 + 4.0) / 4) and out["max_kl"] == 5.0


def test_the_probe_refuses_an_encoder(capsys):
    with pytest.raises(SystemExit) as e:
        cli(["probe", "leak", "--attention", "bidirectional", "--steps", "2"])
    assert e.value.code == 2
    assert "needs a causal model" in capsys.readouterr().err


# ---------------------------------------------------------------- the gradient
def test_gradient_dependence_is_the_spread_of_the_sentences_own_gradient():
    """Written out for naive BN at init: the sentence's loss gradient in training mode, in the
    placements the forward probe uses, its relative spread; LayerNorm's is float noise."""
    cfg = RunConfig(norms=("bn", "ln"), batch_size=4, n_layers=1)
    models = build_models(cfg)
    data = eval_set(cfg)
    g = torch.Generator().manual_seed(cfg.seed + 101)
    grads = []
    for _ in range(8):
        others = 1 + torch.randperm(len(data.lengths) - 1, generator=g)[: cfg.batch_size - 1]
        b = data.select(torch.cat([torch.zeros(1, dtype=torch.long), others]))
        m = build_models(cfg)["bn"]  # the same init: a fresh copy per placement
        m.train()
        loss_fn(m(b.tokens, b.valid)[:1], b.targets[:1]).backward()
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters()]).double())
    G = torch.stack(grads)
    want = float((G - G.mean(0)).norm(dim=1).square().mean().sqrt() / G.mean(0).norm())
    assert grad_batch_dependence(models["bn"], cfg) == pytest.approx(want, rel=1e-6)
    assert want > 1e-3
    assert grad_batch_dependence(models["ln"], cfg) < 1e-6
    before = {k: v.clone() for k, v in models["bn"].state_dict().items()}
    grad_batch_dependence(models["bn"], cfg)
    assert all(before[k].equal(v) for k, v in models["bn"].state_dict().items()), "the model is left as it was"


def test_the_gradient_probe_runs_only_where_it_is_reported():
    """A paired page's run skips it (its column is NaN: not measured); the CLI and sweeps measure it."""
    cfg = RunConfig(batch_size=2, steps=2, n_layers=1)
    assert train_paired(cfg).summary["grad_batch_dependence"].isna().all()
    measured = train_paired(cfg, gradient_probe=True).summary.set_index("norm")["grad_batch_dependence"]
    assert measured["ln"] < 1e-6 < 1e-3 < measured["bn"]
