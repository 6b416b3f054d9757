"""Comparability by axis (core.studies.analysis): the between-group share against a pandas groupby written
out, its chance level against shuffles, the groupings and their pools, the position picture, and
``python -m core probe comparability``."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from core.cli import main as cli
from core.engine.data import eval_set
from core.engine.model import build_models
from core.engine.probes import capture_norm
from core.settings.config import RunConfig, lengths_for
from core.settings.tasks import BOS
from core.studies.analysis import (
    GROUPINGS,
    between_share,
    chance_share,
    comparability,
    comparability_groups,
    position_profile,
    shuffled_share,
)


def reference_share(x: torch.Tensor, groups: torch.Tensor) -> float:
    """Law of total variance with pandas: sum over channels of n_g (mean_g - mean)^2 over the sum of
    (x - mean)^2."""
    df = pd.DataFrame(x.double().numpy())
    g = df.groupby(groups.numpy())
    between = (g.size().to_numpy()[:, None] * (g.mean() - df.mean()) ** 2).to_numpy().sum()
    return float(between / ((df - df.mean()) ** 2).to_numpy().sum())


def test_the_between_share_is_the_law_of_total_variance():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=gen)
    groups = torch.randint(0, 7, (300,), generator=gen)
    assert between_share(x, groups) == pytest.approx(reference_share(x, groups), rel=1e-9)
    shifted = x + groups[:, None].double() * 3  # each group in a range of its own
    assert between_share(shifted, groups) > 0.9
    assert between_share(shifted, groups) == pytest.approx(reference_share(shifted, groups), rel=1e-9)


@pytest.mark.parametrize("k", [2, 8, 40])
def test_chance_is_what_shuffled_values_give(k):
    """The analytic chance (k - 1) / (N - 1) against 400 shuffles of skewed values in unequal groups."""
    gen = torch.Generator().manual_seed(k)
    x = torch.randn(240, 3, generator=gen).exp()
    groups = torch.randint(0, k, (240,), generator=gen)
    assert chance_share(groups) == pytest.approx((len(torch.unique(groups)) - 1) / 239)
    assert shuffled_share(x, groups, 400, seed=1) == pytest.approx(chance_share(groups), rel=0.08)


def test_each_grouping_labels_the_tokens_it_pools():
    cfg = RunConfig()
    data, labels = eval_set(cfg), comparability_groups(cfg)
    assert set(labels) == set(GROUPINGS) - {"pad"}
    real = data.valid
    for name, lab in labels.items():
        assert ((lab >= 0) <= real).all(), f"{name}: pads are left out"
    assert (labels["position"][real] == torch.nonzero(real)[:, 1]).all()
    assert (labels["sentence"][real] == torch.nonzero(real)[:, 0]).all()
    assert (labels["token"][real] == data.tokens[real]).all()
    bos = data.tokens == BOS
    assert bos[real].any() and (labels["position_no_bos"][bos] == -1).all()
    assert (labels["position_no_bos"][real & ~bos] == labels["position"][real & ~bos]).all()


def test_comparability_reports_every_layer_and_grouping_with_its_chance():
    cfg = RunConfig(norms=("ln",))
    table = comparability(build_models(cfg)["ln"], cfg)
    layers = ["block0.norm1", "block0.norm2", "block1.norm1", "block1.norm2", "final"]
    assert list(dict.fromkeys(table["layer"])) == layers
    assert set(table["grouping"]) == set(GROUPINGS)
    assert table["share"].between(0, 1).all() and table["chance"].between(0, 1).all()
    data = eval_set(cfg)
    position = table[table["grouping"] == "position"].iloc[0]
    assert position["values"] == int(data.valid.sum()) and position["groups"] == int(data.lengths.max())
    assert position["chance"] == pytest.approx((position["groups"] - 1) / (position["values"] - 1))
    pad = table[table["grouping"] == "pad"].iloc[0]
    assert pad["groups"] == 2 and pad["values"] > position["values"], "naive BN's pool: pads too"


def test_a_task_without_pads_has_no_pad_grouping():
    cfg = RunConfig(task="control", lengths=lengths_for("control"), norms=("ln",))
    table = comparability(build_models(cfg)["ln"], cfg)
    assert "pad" not in set(table["grouping"]) and "position" in set(table["grouping"])


def test_the_position_picture_is_each_positions_mean_and_sd_against_the_pool():
    cfg = RunConfig(norms=("ln",), n_layers=1)
    model = build_models(cfg)["ln"]
    profile = position_profile(model, cfg, channels=3)
    data = eval_set(cfg)
    x, _ = capture_norm(model, data, "block0.norm1", use_batch_stats=False)
    at = profile[(profile["layer"] == "block0.norm1") & (profile["channel"] == 2)].set_index("pos")
    for p in (0, 5, int(data.lengths.max()) - 1):
        values = x[:, p, 2][data.valid[:, p]].double()
        assert at.loc[p, "mean"] == pytest.approx(float(values.mean()), rel=1e-6)
        assert at.loc[p, "sd"] == pytest.approx(float(values.std(correction=0)), rel=1e-6)
        assert at.loc[p, "count"] == len(values)
    pooled = x[..., 2][data.valid].double()
    assert at["pooled_mean"].iloc[0] == pytest.approx(float(pooled.mean()), rel=1e-6)
    assert at["pooled_sd"].iloc[0] == pytest.approx(float(pooled.std(correction=0)), rel=1e-6)
    assert set(profile["channel"]) == {0, 1, 2}


def test_the_cli_probe_gives_share_and_chance_per_layer_and_grouping(capsys):
    assert cli(["probe", "comparability", "--task", "control", "--steps", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["task"] == "control" and out["config"]["norms"] == ["ln"], "LayerNorm's model by default"
    rows = out["comparability"]
    assert {r["grouping"] for r in rows} == set(GROUPINGS) - {"pad"}
    assert all({"layer", "grouping", "share", "chance"} <= set(r) for r in rows)
    assert len(rows) == 5 * 4
