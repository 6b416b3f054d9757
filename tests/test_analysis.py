"""The pure data helpers behind the pages (core/studies/analysis.py), on tiny untrained models."""

from __future__ import annotations

import pandas as pd
import pytest

from core.engine.data import eval_set
from core.engine.model import build_models
from core.settings.config import RunConfig
from core.studies import analysis

CFG = RunConfig(norms=("bn", "masked_bn", "ln", "none"), d_model=16, n_heads=2, n_layers=1, eval_size=16)


@pytest.fixture(scope="module")
def models():
    return build_models(CFG)


def test_pooling_cells_roles():
    batch = eval_set(RunConfig(min_len=3, max_len=8, eval_size=16)).select([0, 1, 2])
    cells = analysis.pooling_cells(batch, picked=(0, 1, 2), channels=3)
    B, T = batch.tokens.shape
    n_real = int(batch.valid.sum())
    pooled = cells[cells["role"] != "other"].groupby("norm").size()
    assert pooled["bn"] == B * T  # one channel, every position, pads included
    assert pooled["masked_bn"] == n_real  # the real tokens only
    assert pooled["ln"] == 3  # the picked token, every channel drawn
    picked = cells[cells["role"] == "picked"]
    assert len(picked) == 3 and set(picked["channel"]) == {2} and set(picked["seq"]) == {0}
    assert cells.loc[cells["pad"], "token"].eq("PAD").all()


def test_token_statistics_layer_norm_tokens_are_zero_one(models):
    stats, splits = analysis.token_statistics(models, CFG, "init")
    assert set(stats["norm"]) == {"bn", "masked_bn", "ln"}  # 'none' has nothing to normalise
    assert set(stats["layer"]) == {"block0.norm1", "block0.norm2", "final"}
    offsets = analysis.token_offsets(stats[stats["layer"] == "final"], splits[splits["layer"] == "final"])
    assert list(offsets.index) == ["ln", "bn", "masked_bn"]  # legend order
    assert offsets.loc["ln", "per_token"] < 0.05  # LN: every real token (0, 1) up to eps
    assert offsets.loc["masked_bn", "per_channel"] < 0.02  # masked BN: every channel (0, 1) over real tokens, up to eps
    assert offsets.loc["bn", "per_channel"] > 10 * offsets.loc["masked_bn", "per_channel"]  # pads pull naive BN
    assert set(splits["stage"]) == {"before", "after"}


def test_probe_probabilities_agree_under_layer_norm_only(models):
    probe = analysis.probe_probabilities({k: models[k] for k in ("ln", "bn")}, CFG, placements=4)
    spread = probe.groupby(["norm", "pos"])["prob"].agg(lambda p: p.max() - p.min()).groupby("norm").max()
    assert spread["ln"] < 1e-5 and spread["bn"] > 1e-4
    assert probe["prob"].between(0, 1).all()


def test_pad_probe_moves_naive_bn_only(models):
    batch = analysis.pad_probe_batch(CFG)
    assert batch is not None and batch.tokens.shape[1] <= CFG.max_len // 2
    moved = analysis.pad_probe({k: models[k] for k in ("ln", "bn", "masked_bn")}, batch, CFG.max_len)
    top = moved.groupby("norm")["movement"].max()
    assert top["ln"] < 1e-5 and top["masked_bn"] < 1e-5 and top["bn"] > 1e-4
    assert (moved.loc[moved["pad"], "movement"] == 0).all()
    assert analysis.pad_probe_batch(RunConfig(lengths="fixed")) is None


def test_last_values_and_tail_means():
    history = pd.DataFrame(
        {
            "norm": ["ln"] * 4,
            "step": [0, 1, 2, 3],
            "tokens": 0,
            "metric": "train_loss",
            "layer": "all",
            "value": [4.0, 3.0, 2.0, 1.0],
        }
    )
    assert analysis.last_values(history, "train_loss")["ln"] == 1.0
    assert analysis.mean_tail(history, "train_loss", 2)["ln"] == 1.5
