"""Can BatchNorm be saved? The papers' fixes measured: docs/findings.md, "Can BatchNorm be saved?".

    python -m benchmarks.fixes                                # text and shakespeare, about 10 minutes on 2 cores
    python -m benchmarks.fixes --tasks text --seeds 0 --json artifacts/fixes.json

For each task, the same grid as
``python -m core sweep --task T --norms ln,bn,masked_bn,powernorm,batchrenorm,groupnorm
--batch-sizes 2,32 --seeds 0,1,2 --attention causal,bidirectional``: every norm from the same init
on the same batches, default run (300 steps). Per norm, attention setting and batch size: the
held-out loss in eval mode (as deployed), the train/inference gap (eval mode minus batch
statistics) and the batch dependence after training, mean ± std over seeds. Markdown on stdout;
``--json PATH`` writes every number too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.settings.config import RunConfig, lengths_for
from core.studies.sweep import run_sweep, sweep_configs

NORMS = ("ln", "bn", "masked_bn", "powernorm", "batchrenorm", "groupnorm")
BATCH_SIZES = (2, 32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fixes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="text,shakespeare")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--json", metavar="PATH")
    a = parser.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    report = {}
    for task in a.tasks.split(","):
        base = RunConfig(task=task, lengths=lengths_for(task), norms=NORMS)
        cfgs = sweep_configs(base, BATCH_SIZES, seeds, attentions=("causal", "bidirectional"))
        s = run_sweep(cfgs)
        s = s.assign(gap=s["final_eval_loss"] - s["final_eval_loss_batch_stats"])
        table = s.groupby(["attention", "norm", "batch_size"], sort=False).agg(
            loss=("final_eval_loss", "mean"),
            loss_std=("final_eval_loss", "std"),
            gap=("gap", "mean"),
            gap_std=("gap", "std"),
            dependence=("batch_dependence", "mean"),
        )
        report[task] = table.reset_index().to_dict("records")
        print(
            f"\n{task}: held-out loss as deployed (eval mode) and train/inference gap, mean ± std over seeds {a.seeds}\n"
        )
        print(
            "| attention | norm | loss, batch 2 | loss, batch 32 | gap, batch 2 | gap, batch 32 | batch dependence (2 / 32) |"
        )
        print("|---|---|---|---|---|---|---|")
        for (attention, norm), g in table.groupby(level=[0, 1], sort=False):
            r2, r32 = g.xs(2, level="batch_size").iloc[0], g.xs(32, level="batch_size").iloc[0]
            print(
                f"| {attention} | `{norm}` | {r2.loss:.3f} ± {r2.loss_std:.3f} | {r32.loss:.3f} ± {r32.loss_std:.3f} | "
                f"{r2.gap:+.3f} ± {r2.gap_std:.3f} | {r32.gap:+.3f} ± {r32.gap_std:.3f} | "
                f"{r2.dependence:.2g} / {r32.dependence:.2g} |"
            )
        sys.stdout.flush()
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
