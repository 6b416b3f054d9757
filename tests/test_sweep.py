"""Sweeps: every cell of a grid gives the numbers of the same config trained alone, whichever
executor trains it (two cells at a time in threads of this process, one after the other, Ray tasks on a local Ray
instance with 2 CPUs), results arrive as cells finish and come back in config order, a stop ends
the sweep at once, and the CLI's summary and CSV are the same whatever the executor."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from core.cli import main as cli
from core.engine.report import Listen
from core.engine.train import train_paired
from core.engine.uploads import parse_corpus, register_corpus
from core.settings.config import RunConfig
from core.studies import experiments
from core.studies.sweep import run_sweep, sweep_configs

BASE = RunConfig(steps=30, eval_every=30, eval_size=16, norms=("ln", "bn"))
CELLS = sweep_configs(BASE, batch_sizes=(2, 8), seeds=(0, 1))
NUMBERS = ["config_id", "norm", "batch_size", "seed", "final_train_loss", "final_eval_loss",
           "final_eval_loss_batch_stats", "batch_dependence", "pad_fraction", "diverged"]  # fmt: skip


@pytest.fixture(scope="module")
def alone() -> pd.DataFrame:
    """Each cell trained alone, in this process, the plain way."""
    frames = [train_paired(cfg).summary.assign(config_id=cfg.config_id) for cfg in CELLS]
    return pd.concat(frames, ignore_index=True)[NUMBERS]


def test_parallel_cells_give_the_numbers_each_has_alone_in_config_order(alone):
    arrived = []
    summary = run_sweep(CELLS, Listen(cell=lambda p: arrived.append((p.done, p.result.config, len(p.summary)))))
    pd.testing.assert_frame_equal(summary[NUMBERS], alone, check_exact=True)
    assert [n for n, _, _ in arrived] == [1, 2, 3, 4] and {c for _, c, _ in arrived} == set(CELLS)
    assert [rows for _, _, rows in arrived] == [2, 4, 6, 8], "the summary so far grows with every cell"
    in_thread = run_sweep(CELLS, parallel=1)
    pd.testing.assert_frame_equal(in_thread[NUMBERS], alone, check_exact=True)


def test_a_cell_of_an_uploaded_text_trains_in_a_sweep_too():
    text = ("The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\n" * 40).encode()
    cfg = RunConfig(task="upload", corpus=register_corpus(parse_corpus(text)), steps=10, eval_size=16)
    summary = run_sweep([cfg, cfg.replace(seed=1)])
    expected = train_paired(cfg).summary
    pd.testing.assert_frame_equal(
        summary.iloc[:2][NUMBERS[1:]].reset_index(drop=True), expected.assign(config_id=cfg.config_id)[NUMBERS[1:]]
    )


def test_a_stop_ends_the_sweep_at_once_with_what_finished():
    cells = sweep_configs(BASE.replace(steps=400), batch_sizes=(2,), seeds=range(6))
    done, started = [], time.perf_counter()
    summary = run_sweep(cells, Listen(cell=lambda p: done.append(p.done), stop=lambda: len(done) >= 1))
    assert time.perf_counter() - started < 60
    assert done[:1] == [1] and len(done) <= 2 and len(summary) == len(done) * 2, done


def test_the_padding_probe_is_computed_where_its_cell_trained():
    cfgs = experiments.padding_grid(RunConfig(steps=6, batch_size=4, norms=("bn", "ln")), ["uniform"], ["random"], 1)
    frames = experiments.padding(cfgs)
    probe = frames["probe"]
    assert set(probe["norm"]) == {"bn", "ln"} and probe.loc[probe["norm"] == "ln", "movement"].max() < 1e-5


def test_ray_tasks_give_the_same_numbers_and_the_same_summary_and_csv(alone, tmp_path, capsys):
    """A local Ray instance (2 CPUs here, as in CI) trains the same small grid: identical numbers,
    and the CLI's JSON summary and CSV have the same rows and columns as the local executor's."""
    pytest.importorskip("ray")
    from core.studies import ray_executor

    ray_executor.connect()
    try:
        summary = run_sweep(CELLS, executor="ray")
        pd.testing.assert_frame_equal(summary[NUMBERS], alone, check_exact=True)
        outputs = {}
        for executor in ("local", "ray"):
            out = tmp_path / f"{executor}.csv"
            args = ["sweep", "--norms", "ln,bn", "--batch-sizes", "2,8", "--seeds", "0,1", "--steps", "30"]
            assert cli([*args, "--executor", executor, "--json", "--out", str(out)]) == 0
            runs = json.loads(capsys.readouterr().out)["runs"]
            outputs[executor] = (runs, pd.read_csv(out))
        (local_runs, local_csv), (ray_runs, ray_csv) = outputs["local"], outputs["ray"]
        drop = lambda runs: [{k: v for k, v in r.items() if k != "seconds"} for r in runs]  # noqa: E731
        assert drop(local_runs) == drop(ray_runs)
        assert list(local_csv.columns) == list(ray_csv.columns)
        pd.testing.assert_frame_equal(local_csv, ray_csv, check_exact=True)
    finally:
        import ray

        ray.shutdown()


def test_a_bad_executor_is_named(capsys):
    with pytest.raises(SystemExit) as err:
        cli(["sweep", "--executor", "spark", "--steps", "1"])
    assert err.value.code == 2
    assert capsys.readouterr().err == "error: --executor: must be one of local, ray, got 'spark'\n"
