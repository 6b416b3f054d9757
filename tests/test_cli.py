"""The command line: JSON and CSV outputs, and one clear line (exit 2) for every bad flag."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from core.cli import main
from core.settings.config import LIMITS, fmt_number
from tests.helpers import ROOT

FAST = ["--steps", "4", "--eval-every", "2"]


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["compare", "--steps", "0"], "--steps"),
        (["compare", "--steps", "ten"], "--steps"),
        (["compare", "--batch-size", "1000"], "--batch-size"),
        (["compare", "--lr", "nan"], "--lr"),
        (["compare", "--norms", "bn,layernorm"], "--norms"),
        (["compare", "--lengths", "zipf"], "--lengths"),
        (["compare", "--placement", "middle"], "--placement"),
        (["compare", "--task", "control", "--lengths", "longtail"], "--lengths"),
        (["compare", "--min-len", "30", "--max-len", "10"], "--min-len"),
        (["sweep", "--batch-sizes", "2,x"], "--batch-sizes"),
        (["sweep", "--seeds", "-1"], "--seeds"),
        (["sweep", "--batch-sizes", ",".join(["2"] * 61), "--seeds", "0"], "--batch-sizes"),
        (["compare", "--bogus", "1"], "--bogus"),
    ],
)
def test_bad_flags_print_one_line_naming_the_flag_and_exit_2(capsys, argv, flag):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:") and flag in err, err
    assert "Traceback" not in err


def test_a_bad_flag_from_the_shell_has_no_traceback():
    """From a real shell (``python -m core``): exit 2, nothing on stdout, and stderr exactly the one
    line ``error: --flag: what is allowed, got what`` (the bounds are the config's)."""
    proc = subprocess.run([sys.executable, "-m", "core", "compare", "--steps", "-5"], capture_output=True, text=True)
    lo, hi = (fmt_number(v) for v in LIMITS["steps"])
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", f"error: --steps: must be in [{lo}, {hi}], got -5\n")


def test_compare_json_has_one_entry_per_norm_with_its_config(capsys):
    assert main(["compare", "--norms", "bn,ln", "--batch-size", "4", "--seed", "3", "--json", *FAST]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["norm"] for r in runs] == ["bn", "ln"]
    needed = {
        "norm",
        "batch_size",
        "seed",
        "steps",
        "final_train_loss",
        "final_eval_loss",
        "final_eval_loss_batch_stats",
    }
    needed |= {"batch_dependence", "grad_batch_dependence", "pad_fraction", "diverged", "seconds", "config"}
    for r in runs:
        assert needed <= set(r)
        assert r["batch_size"] == 4 and r["seed"] == 3 and r["steps"] == 4
        assert r["config"]["norms"] == ["bn", "ln"] and r["config"]["steps"] == 4 and r["config"]["task"] == "text"
    assert runs[1]["batch_dependence"] < 1e-5 < runs[0]["batch_dependence"]
    assert runs[1]["grad_batch_dependence"] < 1e-6 < 1e-3 < runs[0]["grad_batch_dependence"]


def test_probe_deploy_gives_each_kind_of_statistics_split_by_target(capsys):
    """python -m core probe deploy --json: for naive BN the loss with batch, running, re-estimated
    (two ways) and per-length statistics, each for every target, the end of sentence and the rest;
    LayerNorm, which has no statistics, under batch and running only, the same both ways."""
    assert main(["probe", "deploy", "--norms", "bn,ln", "--json", *FAST]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = pd.DataFrame(out["deploy"])
    assert out["config"]["norms"] == ["bn", "ln"]
    kinds = ["batch", "running", "precise_as_batched", "precise_random", "per_length"]
    bn = rows[rows["norm"] == "bn"]
    assert sorted(map(tuple, bn[["statistics", "target"]].values)) == sorted(
        (k, t) for k in kinds for t in ("all", "eos", "other")
    )
    ln = rows[rows["norm"] == "ln"].set_index(["statistics", "target"])["loss"]
    assert ln["batch"].equals(ln["running"]) and set(ln.index.get_level_values(0)) == {"batch", "running"}
    split = bn.pivot_table(index="statistics", columns="target", values="targets")
    assert (split["all"] == split["eos"] + split["other"]).all()


def test_sweep_writes_a_tidy_csv_whose_rows_carry_their_config(tmp_path, capsys):
    out = tmp_path / "sweep.csv"
    argv = ["sweep", "--norms", "masked_bn,ln", "--batch-sizes", "2,4", "--seeds", "0", "--out", str(out), "--json"]
    assert main([*argv, *FAST]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert sorted((r["batch_size"], r["norm"]) for r in runs) == [
        (2, "ln"),
        (2, "masked_bn"),
        (4, "ln"),
        (4, "masked_bn"),
    ]
    df = pd.read_csv(out)
    assert {"norm", "step", "metric", "layer", "value", "cfg_batch_size", "cfg_lr", "cfg_norms"} <= set(df.columns)
    assert set(df.cfg_batch_size) == {2, 4} and set(df.cfg_norms) == {"masked_bn,ln"}
    assert (df.batch_size == df.cfg_batch_size).all()


def test_control_task_gets_fixed_lengths_by_default(capsys):
    assert main(["compare", "--task", "control", "--json", *FAST]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert runs[0]["config"]["lengths"] == "fixed" and runs[0]["pad_fraction"] == 0


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["compare", "--steps", "-5"], ["sweep", "--batch-sizes", "2,4", "--seeds", "0", "--executor", "x"]],
)
def test_help_and_bad_flags_answer_before_the_engine_is_imported(argv):
    """The arguments are parsed and checked first: torch and pandas (about 2 s) are not imported."""
    code = (
        "import sys\nfrom core.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
        "    print('exit', e.code)\nprint('torch' in sys.modules, 'pandas' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT)
    last = proc.stdout.strip().splitlines()[-2:]
    assert last == [f"exit {0 if argv == ['--help'] else 2}", "False False"], (proc.stdout[-300:], proc.stderr[-300:])
