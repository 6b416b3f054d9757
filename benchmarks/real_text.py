"""What BatchNorm does on real text: the measurements behind docs/findings.md, "Real text".

    python -m benchmarks.real_text                      # both corpora, every table (about 5 minutes on 2 cores)
    python -m benchmarks.real_text --tasks tangshi --only gaps --seeds 0,1

Three tables per task, each paired run from the same init on the same batches, seeds 0, 1, 2:

* ``gaps``: held-out loss (eval mode, as deployed) of BN minus LN's, per batch size 2..32,
  mean ± std over seeds, with LN's loss (``python -m core sweep --task T --norms bn,ln
  --batch-sizes 2,4,8,16,32 --seeds 0,1,2``);
* ``modes``: at batch 8, each norm's held-out loss in eval mode (running statistics) and with batch
  statistics, for random and bucketed batching (``python -m core sweep --task T --norms
  bn,masked_bn,ln --batch-sizes 8 --seeds 0,1,2 --batching random|bucketed``);
* ``lines``: what LN and BN write (core.studies.generate) in the setting of the ``modes`` table where BN's
  eval-mode loss is furthest above its batch-statistics loss, seed 0.

Markdown tables on stdout; ``--json PATH`` writes every number too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from core.engine.train import train_paired
from core.settings.config import RunConfig, lengths_for
from core.studies.experiments import trained
from core.studies.generate import generations
from core.studies.sweep import run_sweep, sweep_configs

BATCH_SIZES = (2, 4, 8, 16, 32)


def sweep(cfgs: list[RunConfig]) -> pd.DataFrame:
    return run_sweep(cfgs)


def gaps(task: str, seeds: list[int]) -> pd.DataFrame:
    base = RunConfig(task=task, lengths=lengths_for(task), norms=("bn", "ln"))
    summary = sweep(sweep_configs(base, BATCH_SIZES, seeds))
    wide = summary.pivot_table(index=["batch_size", "seed"], columns="norm", values="final_eval_loss")
    wide["gap"] = wide["bn"] - wide["ln"]
    table = wide.groupby("batch_size").agg(gap=("gap", "mean"), gap_std=("gap", "std"), ln=("ln", "mean"))
    return table.reset_index()


def modes(task: str, seeds: list[int]) -> pd.DataFrame:
    frames = []
    for batching in ("random", "bucketed"):
        base = RunConfig(task=task, lengths=lengths_for(task), norms=("bn", "masked_bn", "ln"), batching=batching)
        s = sweep(sweep_configs(base, [8], seeds))
        frames.append(s.assign(batching=batching))
    s = pd.concat(frames, ignore_index=True)
    table = s.groupby(["batching", "norm"], sort=False).agg(
        eval_mode=("final_eval_loss", "mean"),
        eval_mode_std=("final_eval_loss", "std"),
        batch_stats=("final_eval_loss_batch_stats", "mean"),
        batch_stats_std=("final_eval_loss_batch_stats", "std"),
    )
    return table.reset_index()


def lines(task: str, modes_table: pd.DataFrame) -> tuple[RunConfig, pd.DataFrame]:
    bn = modes_table[modes_table["norm"] == "bn"]
    worst = bn.loc[(bn["eval_mode"] - bn["batch_stats"]).idxmax(), "batching"]
    cfg = RunConfig(task=task, lengths=lengths_for(task), norms=("bn", "ln"), batching=worst, seed=0)
    return cfg, generations(trained(train_paired(cfg)), cfg)


def pm(mean: float, std: float) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_text", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="shakespeare,tangshi")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--only", help="comma list of gaps,modes,lines (default: all)")
    parser.add_argument("--json", metavar="PATH")
    a = parser.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    only = set(a.only.split(",")) if a.only else {"gaps", "modes", "lines"}
    report: dict = {}
    for task in a.tasks.split(","):
        report[task] = {}
        if "gaps" in only:
            g = gaps(task, seeds)
            report[task]["gaps"] = g.to_dict("records")
            print(f"\n{task}: BN − LN held-out loss (eval mode), mean ± std over seeds {a.seeds}\n")
            print("| batch size | " + " | ".join(str(b) for b in g["batch_size"]) + " |")
            print("|---|" + "---|" * len(g))
            print("| gap `bn` − `ln` | " + " | ".join(pm(r.gap, r.gap_std) for r in g.itertuples()) + " |")
            print("| `ln` loss | " + " | ".join(f"{r.ln:.3f}" for r in g.itertuples()) + " |")
        if "modes" in only or "lines" in only:
            m = modes(task, seeds)
            report[task]["modes"] = m.to_dict("records")
            print(f"\n{task}: batch 8, held-out loss in eval mode and with batch statistics\n")
            print("| batching | norm | eval mode (running statistics) | batch statistics |")
            print("|---|---|---|---|")
            for r in m.itertuples():
                print(f"| {r.batching} | `{r.norm}` | {pm(r.eval_mode, r.eval_mode_std)} | "
                      f"{pm(r.batch_stats, r.batch_stats_std)} |")  # fmt: skip
            if "lines" in only:
                cfg, gen = lines(task, m)
                report[task]["lines"] = {"config": cfg.to_dict(), "generations": gen.to_dict("records")}
                print(f"\n{task}: what each model writes ({cfg.batching} batching, batch 8, seed 0)\n")
                print("| prompt | `ln` | `bn` |")
                print("|---|---|---|")
                wide = gen.pivot(index=["prompt_id", "prompt"], columns="norm", values="continuation").reset_index()
                for r in wide.itertuples():
                    print(f"| {r.prompt} | {r.ln} | {r.bn} |")
        sys.stdout.flush()
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
