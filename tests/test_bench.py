"""The benchmark: both sides train the same steps on the same batches; the report is well formed.

No timing is asserted: the numbers depend on the machine and its load.
"""

import json
import math

import pytest
import torch

from benchmarks.bench import (
    draw_batches,
    format_report,
    run_benchmark,
    run_project_recorded,
    same_batches,
    train_reference,
)
from core.settings.config import RunConfig

TINY = RunConfig(d_model=16, n_layers=1, n_heads=2, batch_size=4, max_len=8, eval_every=2, eval_size=16)
STEPS = 3


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread for both sides: on a busy 2-core machine two threads per process
    oversubscribe the cores and a sub-second test can take a minute. Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_benchmark_pairs_identical_batches_and_reports_every_column():
    cfg = TINY.replace(steps=STEPS)

    # Same batches: the ones train_paired actually trained on (recorded) are the reference's.
    project, used = run_project_recorded(cfg)
    drawn = draw_batches(cfg, STEPS)
    assert project.steps_done == STEPS and len(used) == STEPS
    assert torch.equal(used[0].tokens, drawn[0].tokens)
    assert same_batches(used, drawn)
    ref = train_reference(cfg, drawn)
    assert {n: len(v) for n, v in ref.losses.items()} == {"ln": STEPS, "bn": STEPS}
    assert list(ref.losses) == ["ln", "bn"]  # LN model first, then BN, one after the other
    assert all(math.isfinite(x) for v in ref.losses.values() for x in v)

    # The whole benchmark on one size plus a two-point scaling axis (one point reused).
    result = run_benchmark(
        {"tiny": TINY},
        {"batch_size": (2, 4)},
        steps=STEPS,
        repeats=1,
        warmup=1,
        base=TINY,
        peak_n=128,
        log=lambda _: None,
    )
    json.dumps(result)  # the --json output is serialisable as is
    assert result["meta"]["torch_threads"] == torch.get_num_threads()
    assert result["meta"]["peak"]["gflops_peak"] > 0 and result["meta"]["peak_at_bench_threads"]["threads"] == 1

    (row,) = result["sizes"]
    assert row["label"] == "tiny" and row["steps"] == STEPS and row["same_batches_checked"]
    assert row["a_all_steps"] and row["b_all_steps"]
    assert row["a"]["runs"][0]["steps"] == {"ln": STEPS, "bn": STEPS}
    assert row["b"]["runs"][0]["steps"] == {"bn": STEPS, "ln": STEPS}
    assert row["b"]["runs"][0]["steps_done"] == STEPS
    for side in ("a", "b"):
        assert row[side]["ms_per_step"] > 0 and row[side]["peak_fraction"] > 0 and row[side]["cores"] > 0
        assert len(row[side]["runs"]) == 1 and row[side]["spread"] == 1.0
        assert math.isclose(row[side]["steps_per_s"], 1000 / row[side]["ms_per_step"])
    assert math.isclose(row["speedup_b_over_a"], row["a"]["ms_per_step"] / row["b"]["ms_per_step"])
    assert row["flops_per_paired_step"] > 0

    scaling = result["scaling"]
    assert [(s["axis"], s["value"]) for s in scaling] == [("batch_size", 2), ("batch_size", 4)]
    assert scaling[1]["is_base"] and scaling[1]["x_time"] == 1.0 and scaling[1]["config_id"] == row["config_id"]
    # the base point is the size row's own run: (b)'s figures under the same names as there
    assert scaling[1]["b"] == {k: row["b"][k] for k in ("ms_per_step", "peak_fraction", "spread", "cores")}
    assert scaling[0]["x_flops"] < 1.0  # a smaller batch does less arithmetic

    report = format_report(result)
    for text in ("a ms/step", "b ms/step", "a/b", "tiny", "x time", "threads"):
        assert text in report


def test_app_vs_cli_times_the_cli_on_exactly_the_live_pages_default_run():
    """benchmarks.app_vs_cli compares the live page's default run with `python -m core compare`:
    the flags it derives must rebuild the same config (the config id names the run), for any seed."""
    from benchmarks.app_vs_cli import BASE, cli_config, cli_flags
    from core.studies.experiments import SETUPS

    page_default = SETUPS["live"].base
    for seed in (0, 9000):
        cfg = BASE.replace(seed=seed)
        assert cli_config(cli_flags(cfg)).config_id == cfg.config_id
        assert set(cfg.norms) == set(page_default.norms) and cfg.batch_size == page_default.batch_size
    assert cli_config(cli_flags(BASE.replace(batch_size=8))).config_id != BASE.config_id
