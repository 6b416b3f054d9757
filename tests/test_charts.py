"""Chart builders on small hand-made frames: marks, encodings, titles, the fixed colour per norm,
smoothing that keeps the raw line, log axes, and the numbers behind the charts."""

from __future__ import annotations

import altair as alt
import pandas as pd
import pytest

from core import charts
from core.engine.metrics import HISTORY_COLUMNS
from core.settings.config import NORM_LABELS


def make_history(norms=("bn", "ln"), steps=20, eval_every=5) -> pd.DataFrame:
    """A tidy history as train_paired makes it: dense per-step metrics, sparse held-out losses."""
    rows = []
    for k, norm in enumerate(norms):
        for s in range(steps):
            wiggle = 0.3 * (-1) ** s  # noisy train loss, so smoothing has something to do
            rows += [
                (norm, s, 10 * s, "train_loss", "all", 3.0 - 0.05 * s + wiggle + k),
                (norm, s, 10 * s, "grad_norm", "all", 1.0 + 0.1 * s),
                *[
                    (norm, s, 10 * s, "grad_norm_block", b, 0.1 * (i + 1))
                    for i, b in enumerate(("head", "block0", "embed"))
                ],
            ]
            if norm == "bn":
                rows += [
                    (norm, s, 10 * s, m, layer, 0.01 * s)
                    for m in ("bn_dist_mu", "tid_mean")
                    for layer in ("block0.norm1", "final")
                ]
        for s in range(0, steps + 1, eval_every):
            rows += [
                (norm, s, 10 * s, "eval_loss", "all", 2.5 - 0.01 * s + k),
                (norm, s, 10 * s, "eval_loss_batch_stats", "all", 2.4 - 0.01 * s + k),
            ]
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def make_summary() -> pd.DataFrame:
    """A sweep summary: 2 batch sizes x 2 seeds x (bn, ln), one config_id per paired run."""
    rows = []
    for bs in (2, 8):
        for seed in (0, 1):
            cid = f"c{bs}-{seed}"
            for norm, loss in (("ln", 1.2 + 0.01 * seed), ("bn", 1.2 + 0.1 / bs + 0.02 * seed)):
                rows.append(
                    {
                        "norm": norm,
                        "batch_size": bs,
                        "seed": seed,
                        "config_id": cid,
                        "final_eval_loss": loss,
                        "pad_fraction": 0.3 + 0.02 * seed,
                        "lengths": "uniform",
                        "batching": "random",
                    }
                )
    return pd.DataFrame(rows)


def layers_of(spec: dict) -> list[dict]:
    """The layers of a (possibly faceted) layered spec."""
    inner = spec.get("spec", spec)
    return inner.get("layer", [inner])


def color_scale(layer: dict) -> dict:
    return layer["encoding"]["color"]["scale"]


# ---------------------------------------------------------------- colour per norm
def test_norm_colour_is_fixed_whatever_the_companions():
    a = charts.norm_color(["bn", "ln"]).to_dict()["scale"]
    b = charts.norm_color(["rms", "ln", "masked_bn"]).to_dict()["scale"]
    colour_a = dict(zip(a["domain"], a["range"], strict=True))
    colour_b = dict(zip(b["domain"], b["range"], strict=True))
    assert colour_a[NORM_LABELS["ln"]] == colour_b[NORM_LABELS["ln"]] == charts.NORM_COLORS["ln"]
    assert a["domain"] == [NORM_LABELS["ln"], NORM_LABELS["bn"]]  # NORMS order, not call order
    assert len(set(charts.NORM_COLORS.values())) == len(charts.NORM_COLORS)


def test_colour_domain_is_stable_across_calls_and_data():
    h1, h2 = make_history(), make_history(steps=7)
    s1 = color_scale(layers_of(charts.loss_curves(h1).to_dict())[0])
    s2 = color_scale(layers_of(charts.loss_curves(h2).to_dict())[0])
    assert s1 == s2
    assert s1["domain"] == [NORM_LABELS["ln"], NORM_LABELS["bn"]]


def test_legend_names_norms_with_their_labels():
    data = charts.curve_data(make_history(), charts.LOSS_SERIES)
    assert set(data["label"]) == {NORM_LABELS["bn"], NORM_LABELS["ln"]}


# ---------------------------------------------------------------- smoothing and thinning
def test_ema_is_debiased_and_zero_weight_is_raw():
    s = pd.Series([0.0, 1.0, 1.0])
    assert charts.ema(s, 0.0).tolist() == [0.0, 1.0, 1.0]
    smoothed = charts.ema(s, 0.5)
    assert smoothed.iloc[0] == 0.0  # starts where the data starts
    assert smoothed.iloc[1] == pytest.approx(1 / 1.5)  # (1 + 0.5 * 0) / (1 + 0.5)


def test_smoothing_keeps_the_raw_line_faint():
    spec = charts.loss_curves(make_history(), smooth=0.8).to_dict()
    layers = layers_of(spec)
    raw, smooth, sparse = layers
    assert raw["encoding"]["y"]["field"] == "value" and raw["mark"]["opacity"] == charts.RAW_OPACITY
    assert smooth["encoding"]["y"]["field"] == "smoothed" and "opacity" not in smooth["mark"]
    assert sparse["mark"]["point"] is True
    data = charts.curve_data(make_history(), charts.LOSS_SERIES, smooth=0.8)
    dense = data[~data["sparse"]]
    assert (dense["smoothed"] != dense["value"]).any()
    assert dense["smoothed"].std() < dense["value"].std()


def test_no_smoothing_draws_the_raw_line_only_at_full_opacity():
    layers = layers_of(charts.loss_curves(make_history(), smooth=0.0).to_dict())
    assert len(layers) == 2
    assert layers[0]["mark"]["opacity"] == 1.0


def test_each_loss_keeps_its_dash_on_every_chart():
    both = layers_of(charts.loss_curves(make_history()).to_dict())[0]["encoding"]["strokeDash"]["scale"]
    held_out = {k: v for k, v in charts.LOSS_SERIES.items() if k != "train_loss"}
    only = layers_of(charts.step_curves(make_history(), held_out, title="t", y_title="y").to_dict())[0]
    only = only["encoding"]["strokeDash"]["scale"]
    dash_of = dict(zip(both["domain"], both["range"], strict=True))
    assert dash_of == {**dash_of, **dict(zip(only["domain"], only["range"], strict=True))}
    assert dash_of[charts.LOSS_SERIES["eval_loss_batch_stats"]] == [2, 2]  # dotted


def test_held_out_losses_are_never_smoothed():
    data = charts.curve_data(make_history(), charts.LOSS_SERIES, smooth=0.9)
    sparse = data[data["sparse"]]
    assert set(sparse["metric"]) == {"eval_loss", "eval_loss_batch_stats"}
    assert (sparse["smoothed"] == sparse["value"]).all()


def test_thin_caps_points_and_keeps_the_last_step():
    df = pd.DataFrame({"step": range(1001), "value": range(1001)})
    thinned = charts.thin(df, max_points=100)
    assert len(thinned) <= 102 and thinned["step"].max() == 1000
    assert charts.thin(df.head(50), max_points=100).equals(df.head(50))


# ---------------------------------------------------------------- curves over steps
def test_loss_chart_titles_axes_and_tooltips():
    spec = charts.loss_curves(make_history()).to_dict()
    assert spec["title"] == "Loss"
    layer = layers_of(spec)[0]
    assert layer["encoding"]["x"]["title"] == "step"
    assert layer["encoding"]["y"]["title"] == "loss (nats/token)"
    assert {t["field"] for t in layer["encoding"]["tooltip"]} >= {"label", "series", "step", "value"}
    assert spec["autosize"]["type"] == "fit-x"


def test_log_scale_option():
    linear = layers_of(charts.grad_norm_curves(make_history()).to_dict())
    log = layers_of(charts.grad_norm_curves(make_history(), log_y=True).to_dict())
    assert all(la["encoding"]["y"]["scale"]["type"] == "log" for la in log)
    assert all(la["encoding"]["y"]["scale"].get("type") != "log" for la in linear)


def test_x_by_tokens_and_fixed_step_range():
    by_tokens = layers_of(charts.loss_curves(make_history(), x="tokens").to_dict())[0]["encoding"]["x"]
    assert by_tokens["field"] == "tokens" and by_tokens["title"] == "real tokens seen"
    fixed = layers_of(charts.loss_curves(make_history(), max_step=300).to_dict())[0]["encoding"]["x"]
    assert fixed["scale"]["domain"] == [0, 300]


def test_live_spec_does_not_depend_on_the_data():
    """The live chart is drawn with one spec and growing data: the spec must not change."""

    def spec_of(history):
        d = charts.loss_curves(history, smooth=0.6, max_step=20, norms=("bn", "ln")).to_dict()
        d.pop("data"), d.pop("datasets")
        return d

    assert spec_of(make_history(steps=3)) == spec_of(make_history(steps=20))
    assert spec_of(make_history(steps=0)) == spec_of(make_history(steps=20))


def test_facet_by_layer():
    bn = make_history()
    chart = charts.step_curves(bn, {"bn_dist_mu": "dist"}, title="t", y_title="y", facet="layer", layer=None)
    spec = chart.to_dict()
    assert isinstance(chart, alt.FacetChart)
    assert spec["facet"]["field"] == "layer"
    assert set(chart.data["layer"]) == {"block0.norm1", "final"}


def test_eval_gap_rows():
    gaps = charts.eval_gap_rows(make_history())
    assert set(gaps["metric"]) == {charts.EVAL_GAP}
    assert gaps["value"].to_numpy() == pytest.approx(0.1)
    assert list(gaps.columns) == HISTORY_COLUMNS


def test_block_heatmap_orders_parts_input_to_output():
    chart = charts.block_heatmap(make_history())
    spec = chart.to_dict()
    inner = spec["spec"]
    assert inner["mark"]["type"] == "rect"
    assert inner["encoding"]["y"]["sort"] == ["embed", "block0", "head"]
    assert inner["encoding"]["color"]["scale"]["type"] == "log"
    assert spec["facet"]["row"]["field"] == "label"


# ---------------------------------------------------------------- sweeps
def test_seed_band_and_gap_numbers():
    summary = make_summary()
    band = charts.seed_band(summary, "batch_size", "final_eval_loss").set_index(["norm", "batch_size"])
    assert band.loc[("bn", 2), "mean"] == pytest.approx(1.2 + 0.05 + 0.01)
    assert band.loc[("bn", 2), "lo"] == pytest.approx(1.25) and band.loc[("bn", 2), "hi"] == pytest.approx(1.27)
    assert band.loc[("bn", 2), "seeds"] == 2
    gaps = charts.gap_to(summary).set_index("config_id")["gap"]
    assert gaps["c2-0"] == pytest.approx(0.05) and gaps["c8-1"] == pytest.approx(0.1 / 8 + 0.01)
    assert "ln" not in set(charts.gap_to(summary)["norm"])


def test_batch_size_chart_has_log2_axis_band_and_line():
    spec = charts.sweep_chart(
        make_summary(),
        x="batch_size",
        x_title="batch size (log2)",
        log2_x=True,
        title="Final held-out loss vs batch size",
    ).to_dict()
    band, line = layers_of(spec)
    assert spec["title"] == "Final held-out loss vs batch size"
    assert band["mark"]["type"] == "area" and band["encoding"]["y2"]["field"] == "hi"
    assert line["mark"]["type"] == "line" and line["encoding"]["y"]["field"] == "mean"
    assert line["encoding"]["x"]["scale"] == {"type": "log", "base": 2}
    assert line["encoding"]["x"]["axis"]["values"] == [2, 8]
    assert line["encoding"]["y"]["title"] == charts.HELD_OUT_TITLE


def test_zero_rule_for_gap_charts():
    with_rule = charts.sweep_chart(
        charts.gap_to(make_summary()), x="batch_size", x_title="b", y="gap", y_title="g", title="t", zero_rule=True
    ).to_dict()
    assert layers_of(with_rule)[-1]["mark"]["type"] == "rule"


def test_padding_chart_names_settings_with_their_padding():
    summary = pd.concat(
        [make_summary().assign(lengths=ln, pad_fraction=p) for ln, p in (("fixed", 0.0), ("longtail", 0.6))]
    )
    chart = charts.padding_chart(summary.assign(config_id=summary["config_id"] + summary["lengths"]), title="t")
    spec = chart.to_dict()
    assert spec["facet"]["column"]["field"] == "batching"
    assert set(chart.data["setting"]) == {"fixed · 0% pads", "longtail · 60% pads"}
    assert layers_of(spec)[0]["mark"]["type"] == "rule"  # min-max over seeds


# ---------------------------------------------------------------- token grids and probes
def make_token_stats() -> pd.DataFrame:
    rows = []
    for norm in ("bn", "ln"):
        for stage in ("before", "after"):
            for seq in range(2):
                for pos in range(4):
                    pad = seq == 1 and pos >= 2
                    rows.append(
                        {
                            "norm": norm,
                            "stage": stage,
                            "seq": seq,
                            "pos": pos,
                            "pad": pad,
                            "mean": 0.1 * pos,
                            "std": 1.0 + 0.1 * seq,
                        }
                    )
    return pd.DataFrame(rows)


def test_token_grid_split_has_independent_colour_scales():
    chart = charts.token_grid(make_token_stats(), "mean", value_title="mean", title="t", split="stage", diverging=True)
    spec = chart.to_dict()
    assert isinstance(chart, alt.HConcatChart) and len(spec["hconcat"]) == 2
    assert spec["resolve"]["scale"]["color"] == "independent"
    assert [p["title"] for p in spec["hconcat"]] == ["before", "after"]
    rect, pads = spec["hconcat"][0]["spec"]["layer"]
    assert rect["mark"]["type"] == "rect" and rect["encoding"]["color"]["scale"]["domainMid"] == 0
    assert pads["transform"] == [{"filter": "datum.pad"}]


def test_token_grid_single_panel_per_norm():
    spec = charts.token_grid(make_token_stats(), "std", value_title="std", title="probe").to_dict()
    assert spec["title"] == "probe"
    assert spec["facet"]["row"]["sort"] == [NORM_LABELS["ln"], NORM_LABELS["bn"]]


def test_variance_split_chart():
    split = pd.DataFrame(
        {
            "norm": ["bn", "ln"] * 2,
            "stage": ["before"] * 2 + ["after"] * 2,
            "within": 1.0,
            "between": 0.25,
            "between_share": 0.2,
        }
    )
    chart = charts.variance_split_chart(split)
    spec = chart.to_dict()
    assert spec["spec"]["layer"][0]["mark"]["type"] == "bar"
    assert chart.data["pct"].tolist() == pytest.approx([20.0] * 4)
    assert spec["title"].startswith("Variance between")


def test_probe_chart_one_line_per_batch():
    probe = pd.DataFrame({"norm": "bn", "batch": [0, 0, 1, 1], "pos": [0, 1, 0, 1], "prob": [0.2, 0.5, 0.3, 0.4]})
    spec = charts.probe_chart(probe).to_dict()
    enc = spec["spec"]["layer"][0]["encoding"]
    assert enc["detail"]["field"] == "batch" and enc["y"]["scale"]["domain"] == [0, 1]
    assert enc["y"]["title"] == "p(true next token)"


def test_init_grad_chart_orders_blocks_and_placements():
    rows = []
    for placement in ("post", "pre"):
        blocks = ["embed", "block0", "block1", *(["final_norm"] if placement == "pre" else []), "head"]
        rows += [
            {"placement": placement, "norm": "ln", "block": b, "layer_index": i, "grad_norm": 1.0 + i}
            for i, b in enumerate(blocks)
        ]
    spec = charts.init_grad_chart(pd.DataFrame(rows)).to_dict()
    enc = spec["spec"]["layer"][0]["encoding"]
    assert enc["x"]["sort"] == ["embed", "block0", "block1", "final_norm", "head"]
    assert enc["y"]["scale"]["type"] == "log"
    assert spec["facet"]["column"]["sort"] == [charts.PLACEMENT_LABELS["pre"], charts.PLACEMENT_LABELS["post"]]


def test_pooling_chart_colours_pooled_cells_by_norm():
    cells = pd.DataFrame(
        {
            "norm": ["bn", "bn", "ln"],
            "channel": [0, 1, 0],
            "seq": 0,
            "pos": [0, 0, 0],
            "pad": False,
            "token": "5",
            "role": ["picked", "other", "pooled"],
        }
    )
    chart = charts.pooling_chart(cells)
    scale = chart.to_dict()["spec"]["layer"][0]["encoding"]["color"]["scale"]
    colours = dict(zip(scale["domain"], scale["range"], strict=True))
    assert colours[NORM_LABELS["ln"]] == charts.NORM_COLORS["ln"]
    assert colours[charts.POOL_ROLES["picked"]] == "#111111"
    assert chart.data["fill"].tolist() == [charts.POOL_ROLES["picked"], charts.POOL_ROLES["other"], NORM_LABELS["ln"]]


@pytest.mark.parametrize(
    "build",
    [
        lambda: charts.loss_curves(make_history()),
        lambda: charts.grad_norm_curves(make_history()),
        lambda: charts.block_heatmap(make_history()),
        lambda: charts.sweep_chart(make_summary(), x="batch_size", x_title="b", title="t"),
        lambda: charts.token_grid(make_token_stats(), "mean", value_title="m", title="t", split="stage"),
    ],
)
def test_every_chart_has_a_title_and_serialises(build):
    spec = build().to_dict()
    assert spec["title"]
    assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")


# ---------------------------------------------------------------- what BatchNorm pools and what it leaks
def test_comparability_chart_averages_layers_per_task_and_grouping():
    table = pd.DataFrame(
        {
            "task": ["control"] * 4 + ["tangshi"] * 4,
            "layer": ["a", "b"] * 4,
            "grouping": (["position"] * 2 + ["sentence"] * 2) * 2,
            "share": [0.02, 0.04, 0.03, 0.01, 0.8, 0.9, 0.01, 0.03],
            "chance": [0.01, 0.01, 0.03, 0.03, 0.01, 0.01, 0.1, 0.1],
        }
    )
    chart = charts.comparability_chart(table, {"control": "C", "tangshi": "T"})
    data = chart.data.set_index(["task", "grouping"])
    assert data.loc[("tangshi", "position"), "pct"] == pytest.approx(85.0)
    assert data.loc[("tangshi", "position"), "ratio"] == pytest.approx(85.0)
    assert data.loc[("control", "sentence"), "chance_pct"] == pytest.approx(3.0)
    spec = chart.to_dict()
    assert spec["facet"]["column"]["sort"] == [charts.GROUPING_LABELS["position"], charts.GROUPING_LABELS["sentence"]]
    assert [layer["mark"]["type"] for layer in spec["spec"]["layer"]] == ["bar", "tick"]
    assert spec["spec"]["layer"][0]["encoding"]["x"]["scale"]["domain"] == [0, 100]


def test_position_chart_draws_one_layer_and_channel_against_its_pool():
    rows = [
        {
            "task": task,
            "layer": layer,
            "channel": c,
            "pos": p,
            "mean": p + c,
            "sd": 0.5,
            "count": 10,
            "pooled_mean": 1.0,
            "pooled_sd": 2.0,
        }  # fmt: skip
        for task in ("control", "tangshi")
        for layer in ("block0.norm1", "final")
        for c in (0, 1)
        for p in range(3)
    ]
    chart = charts.position_chart(pd.DataFrame(rows), {"control": "C", "tangshi": "T"}, "final", 1)
    data = chart.data
    assert set(data["layer"]) == {"final"} and set(data["channel"]) == {1} and len(data) == 6
    assert data["hi"].tolist()[:3] == pytest.approx([1.5, 2.5, 3.5])
    assert (data["pooled_lo"] == -1.0).all() and (data["pooled_hi"] == 3.0).all()
    spec = chart.to_dict()
    assert [layer["mark"]["type"] for layer in spec["spec"]["layer"]] == ["area", "line", "rule", "point"]
    assert spec["resolve"]["scale"] == {"x": "independent", "y": "independent"}


def test_leak_chart_puts_zeros_on_the_log_axis_and_both_measures_per_channel():
    summary = pd.DataFrame(
        {
            "norm": ["bn", "bn", "ln", "ln"],
            "mode": ["batch_stats", "eval"] * 2,
            "channel": "length",
            "mean_kl": [1e-3, 0.0, 0.0, 0.0],
            "max_kl": [0.1, 0.0, 1e-15, 0.0],
        }
    )
    chart = charts.leak_chart(summary)
    data = chart.data
    assert len(data) == 8 and set(data["stat"]) == {"max_kl", "mean_kl"}
    assert data["shown"].min() == charts.NO_KL and data["shown"].max() == pytest.approx(0.1)
    enc = chart.to_dict()["spec"]["layer"][0]["encoding"]
    assert enc["x"]["scale"]["type"] == "log" and enc["yOffset"]["field"] == "label"
    assert enc["shape"]["scale"]["domain"] == list(charts.KL_SERIES.values())


def test_deploy_chart_shows_the_norms_as_points_and_layer_norm_as_a_rule():
    frame = pd.DataFrame(
        {
            "norm": ["bn"] * 2 + ["ln"] * 2,
            "statistics": ["batch", "running"] * 2,
            "target": "all",
            "loss": [1.0, 4.6, 1.25, 1.25],
            "targets": 100,
        }
    )
    spec = charts.deploy_chart(frame).to_dict()
    points, rule = spec["spec"]["layer"]
    assert points["mark"]["type"] == "point" and rule["mark"]["type"] == "rule"
    assert "!=" in str(points["transform"]) and "running" in str(rule["transform"])
    assert points["encoding"]["y"]["sort"] == [charts.STATISTICS_LABELS["batch"], charts.STATISTICS_LABELS["running"]]
    assert spec["facet"]["row"]["sort"] == [charts.TARGET_LABELS["all"]]


def test_causality_chart_leaves_float_noise_blank_on_a_log_colour_scale():
    frame = pd.DataFrame({"norm": "bn", "mode": "eval", "i": [0, 1, 1], "j": [0, 0, 1], "influence": [0.5, 1e-12, 0.2]})
    chart = charts.causality_chart(frame)
    assert chart.data[["i", "j"]].values.tolist() == [[0, 0], [1, 1]]  # the 1e-12 cell is noise: blank
    enc = chart.to_dict()["spec"]["layer"][0]["encoding"]
    assert enc["color"]["scale"]["type"] == "log" and enc["color"]["title"] == "KL (nats)"


@pytest.mark.parametrize("y", list(charts.DEPENDENCE_TITLES))
def test_dependence_chart_draws_either_probe_with_exact_zeros_at_its_floor(y):
    summary = pd.DataFrame({"norm": ["bn", "ln"], "attention": "causal", "batch_size": 2, "seed": 0, y: [0.3, 0.0]})
    chart = charts.dependence_chart(summary, y=y)
    assert chart.data["dependence"].tolist() == [0.3, charts.NO_DEPENDENCE]
    enc = chart.to_dict()["spec"]["layer"][0]["encoding"]
    assert enc["x"]["title"] == charts.DEPENDENCE_TITLES[y] and enc["x"]["scale"]["type"] == "log"


def test_gap_curves_subtract_layer_norm_at_each_step_with_a_zero_line():
    chart = charts.gap_curves(make_history())
    gaps = charts.eval_gaps_to_layer_norm(make_history())
    assert set(gaps["norm"]) == {"bn"}
    # make_history puts ln 1 above bn, and each norm's batch-stats loss 0.1 below its eval-mode loss
    assert gaps[gaps["metric"] == "eval_loss"]["value"].tolist() == pytest.approx([-1.0] * 5)
    assert gaps[gaps["metric"] == "eval_loss_batch_stats"]["value"].tolist() == pytest.approx([-1.1] * 5)
    spec = chart.to_dict()
    assert spec["layer"][-1]["mark"]["type"] == "rule" and spec["title"] == "Held-out loss minus LayerNorm's"
