"""The measurements behind the story in docs/findings.md, with seeds: what BatchNorm pools and what it leaks.

    python -m benchmarks.story                     # seeds 0, 1, 2: about 4 minutes on 2 cores
    python -m benchmarks.story --seeds 0 --json artifacts/story.json

Three tables, each mean ± std over the seeds (markdown on stdout, every number with --json):

1. **Comparability by axis**: for each built-in task's default LayerNorm run
   (``python -m core probe comparability --task T --seed S``), the between-group share of a
   channel's variance at the norm layers' inputs (mean over layers), per grouping, and its chance.
2. **Random against bucketed batches** (text task, long-tailed lengths, batch 8, 300 steps, naive
   BN, masked BN, LN): the leak channels with batch statistics (``python -m core probe leak
   --lengths longtail --batching B --norms bn,masked_bn,ln --seed S``), the held-out loss with
   each kind of statistics (``probe deploy``, same flags), and how far each training batch's
   statistics are from the running ones (bn_dist_mu, mean over the last 100 steps, first layer).
3. **The fixes, forward and backward** (text, causal, batch 2, 300 steps): the forward and the
   gradient batch dependence after training (``python -m core compare --norms
   ln,bn,powernorm,batchrenorm,groupnorm --batch-size 2 --seed S --json``) and Batch
   Renormalization's share of clipped channel-steps.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from core.engine.train import train_paired
from core.settings.config import RunConfig, lengths_for
from core.studies.analysis import comparability
from core.studies.deploy import deployment
from core.studies.experiments import trained
from core.studies.leak import channel_summary, leaks

TASKS = ("control", "text", "shakespeare", "tangshi")
FIXES = ("ln", "bn", "powernorm", "batchrenorm", "groupnorm")


def pm(values: pd.Series, fmt: str = ".3f") -> str:
    return f"{values.mean():{fmt}} ± {values.std(ddof=0):{fmt}}" if len(values) > 1 else f"{values.mean():{fmt}}"


def comparability_rows(seeds: list[int]) -> pd.DataFrame:
    rows = []
    for task in TASKS:
        for seed in seeds:
            cfg = RunConfig(task=task, lengths=lengths_for(task), norms=("ln",), seed=seed)
            table = comparability(train_paired(cfg).models["ln"], cfg)
            means = table.groupby("grouping")[["share", "chance"]].mean().reset_index()
            rows.append(means.assign(task=task, seed=seed))
    return pd.concat(rows, ignore_index=True)


def batching_rows(seeds: list[int]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    leak, deploy, drift = [], [], []
    for batching in ("random", "bucketed"):
        for seed in seeds:
            cfg = RunConfig(norms=("bn", "masked_bn", "ln"), lengths="longtail", batching=batching, seed=seed)
            res = train_paired(cfg)
            models = trained(res)
            leak.append(channel_summary(leaks(models, cfg)[0]).assign(batching=batching, seed=seed))
            deploy.append(deployment(models, cfg).assign(batching=batching, seed=seed))
            h = res.history
            d = h[(h["metric"] == "bn_dist_mu") & (h["layer"] == "block0.norm1") & (h["step"] >= cfg.steps - 100)]
            drift.append(d.groupby("norm")["value"].mean().reset_index().assign(batching=batching, seed=seed))
    return pd.concat(leak), pd.concat(deploy), pd.concat(drift)


def fixes_rows(seeds: list[int]) -> pd.DataFrame:
    return pd.concat(
        [
            train_paired(RunConfig(norms=FIXES, batch_size=2, seed=s), gradient_probe=True).summary.assign(seed=s)
            for s in seeds
        ],
        ignore_index=True,
    )


def report(comp, leak, deploy, drift, fixes) -> str:
    out = ["### 1. Comparability by axis (share of a channel's variance between groups, % ; chance in brackets)", ""]
    groupings = ["position", "position_no_bos", "sentence", "token", "pad"]
    out += ["| task | " + " | ".join(groupings) + " |", "|---" * (len(groupings) + 1) + "|"]
    for task in TASKS:
        cells = []
        for g in groupings:
            r = comp[(comp["task"] == task) & (comp["grouping"] == g)]
            cells.append(f"{pm(100 * r['share'], '.1f')} ({100 * r['chance'].mean():.1f})" if len(r) else "–")
        out.append(f"| {task} | " + " | ".join(cells) + " |")
    out += ["", "### 2. Random against bucketed batches (text, long-tailed lengths, batch 8)", ""]
    out += ["Largest KL of a held-out sentence's predictions, batch statistics:", ""]
    channels = ["own_later", "other_sentence", "length", "batch"]
    out += ["| norm | batching | " + " | ".join(channels) + " |", "|---" * (len(channels) + 2) + "|"]
    bs = leak[leak["mode"] == "batch_stats"]
    for norm in ("bn", "masked_bn", "ln"):
        for batching in ("random", "bucketed"):
            r = bs[(bs["norm"] == norm) & (bs["batching"] == batching)]
            cells = [pm(r[r["channel"] == c]["max_kl"], ".2g") for c in channels]
            out.append(f"| {norm} | {batching} | " + " | ".join(cells) + " |")
    out += ["", "Held-out loss (nats/token) by the statistics used, every target / end of sentence:", ""]
    kinds = ["batch", "running", "precise_as_batched", "precise_random", "per_length"]
    out += ["| norm | batching | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 2) + "|"]
    for norm in ("bn", "masked_bn", "ln"):
        for batching in ("random", "bucketed"):
            r = deploy[(deploy["norm"] == norm) & (deploy["batching"] == batching)]
            cells = []
            for k in kinds:
                rk = r[r["statistics"] == k]
                if rk.empty:
                    cells.append("–")
                    continue
                cells.append(
                    f"{pm(rk[rk['target'] == 'all']['loss'])} / {pm(rk[rk['target'] == 'eos']['loss'], '.2f')}"
                )
            out.append(f"| {norm} | {batching} | " + " | ".join(cells) + " |")
    out += ["", "Batch against running mean, (1/C)·‖μ_B − μ_run‖ at block0.norm1, last 100 steps:", ""]
    out += ["| norm | random | bucketed |", "|---|---|---|"]
    for norm in ("bn", "masked_bn"):
        r = drift[drift["norm"] == norm]
        cells = [pm(r[r["batching"] == b]["value"], ".4f") for b in ("random", "bucketed")]
        out.append(f"| {norm} | " + " | ".join(cells) + " |")
    out += ["", "### 3. The fixes after training (text, causal, batch 2)", ""]
    out += ["| norm | forward: max Δ logit | backward: gradient spread | clipped channel-steps |", "|---|---|---|---|"]
    for norm in FIXES:
        r = fixes[fixes["norm"] == norm]
        clipped = pm(100 * r["clipped_share"], ".0f") + "%" if r["clipped_share"].notna().all() else "–"
        out.append(
            f"| {norm} | {pm(r['batch_dependence'], '.2g')} | {pm(r['grad_batch_dependence'], '.2g')} | {clipped} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.story", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--json", metavar="PATH")
    a = parser.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    comp = comparability_rows(seeds)
    leak, deploy, drift = batching_rows(seeds)
    fixes = fixes_rows(seeds)
    print(report(comp, leak, deploy, drift, fixes))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        frames = {"comparability": comp, "leak": leak, "deploy": deploy, "drift": drift, "fixes": fixes}
        Path(a.json).write_text(json.dumps({k: v.to_dict("records") for k, v in frames.items()}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
