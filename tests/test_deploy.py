"""core.studies.deploy: held-out losses with batch, running and re-estimated ("precise BN") statistics."""

from itertools import islice

import pytest
import torch

from core.engine.data import IGNORE, BatchStream, eval_batches
from core.engine.metrics import eval_loss, eval_loss_batch_stats_loop
from core.engine.model import build_models
from core.engine.probes import capture_norm
from core.engine.train import train_paired
from core.settings.config import RunConfig
from core.settings.tasks import EOS
from core.studies.deploy import STATISTICS, deployment, precise_copy

RUNNING = ("bn", "masked_bn", "batchrenorm", "powernorm")
CFG = RunConfig(norms=(*RUNNING, "ln", "rms"), steps=30, seed=3)


@pytest.fixture(scope="module")
def trained():
    return train_paired(CFG, score_at_start=False).models


@pytest.fixture(scope="module")
def frame(trained):
    return deployment(trained, CFG, batches=20)


def _cell(df, norm, statistics, target="all"):
    row = df[(df.norm == norm) & (df.statistics == statistics) & (df.target == target)]
    assert len(row) == 1
    return row.iloc[0]


def test_rows_ln_reference_and_target_split(frame, trained):
    assert set(frame.norm) == {*RUNNING, "ln"}  # rms keeps no statistics: skipped
    assert set(frame[frame.norm == "ln"].statistics) == {"batch", "running"}
    for kind in ("batch", "running"):
        assert _cell(frame, "ln", kind).loss == pytest.approx(eval_loss(trained["ln"], CFG), rel=1e-5)
    batches = eval_batches(CFG)
    n_all = sum(int((b.targets != IGNORE).sum()) for b in batches)
    n_eos = sum(int((b.targets == EOS).sum()) for b in batches)
    assert n_eos == CFG.eval_size  # every held-out sentence ends by predicting EOS
    for norm in (*RUNNING, "ln"):
        for kind in STATISTICS if norm != "ln" else ("batch", "running"):
            a, e, o = (_cell(frame, norm, kind, t) for t in ("all", "eos", "other"))
            assert (a.targets, e.targets, o.targets) == (n_all, n_eos, n_all - n_eos)
            assert a.loss == pytest.approx((e.loss * e.targets + o.loss * o.targets) / a.targets, rel=1e-9)
            assert e.loss != pytest.approx(o.loss, rel=1e-3)  # the split says something


@pytest.mark.parametrize("norm", RUNNING)
def test_batch_and_running_match_core_metrics(frame, trained, norm):
    model = trained[norm]
    assert _cell(frame, norm, "batch").loss == pytest.approx(eval_loss_batch_stats_loop(model, CFG), abs=1e-5)
    assert _cell(frame, norm, "running").loss == pytest.approx(eval_loss(model, CFG), abs=1e-5)


@pytest.mark.parametrize("norm", ["bn", "masked_bn"])
def test_precise_statistics_by_hand(norm):
    """Average over batches of each channel's mean and unbiased variance of the layer's input (as
    seen with batch statistics): over all B*T positions for naive BN, the real tokens for masked."""
    cfg = RunConfig(norms=(norm,), n_layers=1, seed=5)  # uniform lengths: batches have pads
    model = build_models(cfg)[norm]
    batches = list(islice(BatchStream.for_run(cfg), 6))
    assert any(not bool(b.valid.all()) for b in batches)
    twin = precise_copy(model, batches)
    for name, layer in twin.norm_layers().items():
        means, variances = [], []
        for b in batches:
            x, _ = capture_norm(model, b, name, use_batch_stats=True)
            pooled = x.reshape(-1, x.shape[-1]) if norm == "bn" else x[b.valid]
            means.append(pooled.mean(0))
            variances.append(pooled.var(0, correction=1))
        mean, var = torch.stack(means).mean(0), torch.stack(variances).mean(0)
        torch.testing.assert_close(layer.running_mean, mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(layer.running_var, var, rtol=1e-4, atol=1e-5)
        original = model.norm_layers()[name]
        assert not torch.allclose(original.running_var, var, rtol=1e-2)  # the copy's are new


def test_callers_models_unchanged(trained):
    before = {n: {k: v.clone() for k, v in m.state_dict().items()} for n, m in trained.items()}
    modes = {n: m.training for n, m in trained.items()}
    deployment(trained, CFG, batches=5)
    for n, m in trained.items():
        after = m.state_dict()
        assert after.keys() == before[n].keys()
        for k, v in before[n].items():
            assert torch.equal(after[k], v), (n, k)
        assert m.training == modes[n]
        assert not any(getattr(layer, "use_batch_stats", False) for layer in m.norm_layers().values())


def test_per_length_equals_precise_when_lengths_are_fixed(frame):
    cfg = RunConfig(norms=("bn", "masked_bn"), lengths="fixed", seed=7)
    df = deployment(build_models(cfg), cfg, batches=10)
    for norm in ("bn", "masked_bn"):
        for target in ("all", "eos", "other"):
            per = _cell(df, norm, "per_length", target).loss
            assert per == pytest.approx(_cell(df, norm, "precise_as_batched", target).loss, rel=1e-12)
    # with uniform lengths (CFG) the per-length sets are different statistics
    per, precise = (_cell(frame, "bn", kind).loss for kind in ("per_length", "precise_as_batched"))
    assert per != pytest.approx(precise, abs=1e-6)


def test_powernorm_running_phi_is_mean_of_batch_x2(trained):
    model = trained["powernorm"]
    batches = list(islice(BatchStream.for_run(CFG), 5))
    twin = precise_copy(model, batches)
    for name, layer in model.norm_layers().items():
        x2s = []
        for b in batches:
            x, _ = capture_norm(model, b, name, use_batch_stats=True)
            B, T, C = x.shape
            xg = x.reshape(B, T, layer.group_num, C // layer.group_num)
            s = (xg / torch.sqrt(xg.pow(2).mean(-1, keepdim=True) + layer.eps)).reshape(B, T, C)
            x2s.append(s[b.valid].pow(2).mean(0))
        phi = torch.stack(x2s).mean(0)
        torch.testing.assert_close(twin.norm_layers()[name].running_phi, phi, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(layer.running_phi, phi, rtol=1e-3)  # re-estimated, not kept
