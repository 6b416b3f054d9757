"""Command line: ``python -m core compare ...`` (one paired run), ``python -m core sweep ...`` (a grid),
``python -m core generate ...`` (a paired run, then what each model writes), ``python -m core probe
PROBE ...`` (a paired run, then a probe of the trained models):

* ``comparability``: how alike the values are that one channel of BatchNorm pools, per grouping
  (position, sentence, token, pads), against chance (core.studies.analysis.comparability); the models are
  LayerNorm's unless --norms says otherwise;
* ``leak``: how much a held-out sentence's predictions move (KL) when its own later token, another
  sentence's token, its length or its batch changes, per norm and mode (core.studies.leak);
* ``deploy``: the held-out loss with batch, running, re-estimated and per-length statistics, split
  by target (core.studies.deploy);
* ``causality``: the largest influence of a later token on an earlier prediction (core.studies.leak).

Bad flags print one line, ``error: --flag: what is allowed, got what``, and exit with code 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from dataclasses import fields
from typing import TYPE_CHECKING

# Only the pure config here: the arguments are parsed and checked before torch and pandas are
# imported (about 2 s), so --help and a bad flag answer at once; the engine loads when it is needed.
from core.settings.config import (
    ATTENTIONS,
    EXECUTORS,
    LENGTHS,
    LIMITS,
    MAX_SWEEP_RUNS,
    NORMS,
    TASKS,
    RunConfig,
    fmt_number,
    lengths_for,
    sweep_configs,
)
from core.settings.config import ConfigError as ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from core.engine.train import RunResult

DEFAULTS = RunConfig()
FLAG_OF = {f.name: "--" + f.name.replace("_", "-") for f in fields(RunConfig)}
FLAG_OF["corpus"] = "--task"  # no --corpus flag: a text to train on is uploaded in the dashboard (task upload)
SWEEP_FLAG_OF = {
    "batch_size": "--batch-sizes",
    "seed": "--seeds",
    "sweep": "--batch-sizes/--seeds/--lengths/--attention",
}


PROBES = ("comparability", "leak", "deploy", "causality")
CAUSAL_ONLY = ("generate", "leak", "causality")  # an encoder neither writes nor leaks


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump, exit 2
        self.exit(2, f"error: {_one_line(message)}\n")


def _one_line(text: str) -> str:
    """Line breaks inside an argument (possible from a shell) would split the one-line message."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _number(field: str, kind):
    lo, hi = (fmt_number(v) for v in LIMITS[field])

    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {what} in [{lo}, {hi}], got {text!r}") from None

    return parse


def _int_list(field: str):
    one = _number(field, int)

    def parse(text: str):
        items = [s for s in text.split(",") if s.strip()]
        if not items:
            raise argparse.ArgumentTypeError("must be a comma-separated list of integers")
        return [one(s.strip()) for s in items]

    return parse


def _add_run_flags(p: argparse.ArgumentParser, sweep: bool):
    d = DEFAULTS
    p.add_argument(
        "--task", default=d.task, help=f"{' | '.join(TASKS)} (default %(default)s; upload: in the dashboard)"
    )
    p.add_argument(
        "--norms", help=f"comma list of {','.join(NORMS)} (default {','.join(d.norms)}; probe comparability: ln)"
    )
    if sweep:
        p.add_argument(
            "--batch-sizes",
            type=_int_list("batch_size"),
            default=[2, 4, 8, 16, 32],
            help="comma list (default 2,4,8,16,32)",
        )
        p.add_argument("--seeds", type=_int_list("seed"), default=[0, 1, 2], help="comma list (default 0,1,2)")
        p.add_argument(
            "--executor",
            default="local",
            help="local (two cells at a time on this machine) | ray (Ray tasks; pip install ray) (default %(default)s)",
        )
        p.add_argument("--address", help="--executor ray: the Ray cluster to join (default: start one here)")
        p.add_argument(
            "--lengths",
            help=f"comma list of {','.join(LENGTHS)} (default {d.lengths}; the task's own where it takes one)",
        )
    else:
        p.add_argument(
            "--batch-size", type=_number("batch_size", int), default=d.batch_size, help="default %(default)s"
        )
        p.add_argument("--seed", type=_number("seed", int), default=d.seed, help="default %(default)s")
        p.add_argument(
            "--lengths", help=f"{' | '.join(LENGTHS)} (default {d.lengths}; the task's own where it takes one)"
        )
    p.add_argument("--min-len", type=_number("min_len", int), default=d.min_len)
    p.add_argument("--max-len", type=_number("max_len", int), default=d.max_len)
    p.add_argument("--batching", default=d.batching, help="random | bucketed (default %(default)s)")
    p.add_argument("--placement", default=d.placement, help="pre | post (default %(default)s)")
    if sweep:
        p.add_argument(
            "--attention", default=d.attention, help=f"comma list of {','.join(ATTENTIONS)} (default %(default)s)"
        )
    else:
        p.add_argument("--attention", default=d.attention, help=f"{' | '.join(ATTENTIONS)} (default %(default)s)")
    p.add_argument("--steps", type=_number("steps", int), default=d.steps, help="default %(default)s")
    p.add_argument("--lr", type=_number("lr", float), default=d.lr, help="default %(default)s")
    p.add_argument("--d-model", type=_number("d_model", int), default=d.d_model)
    p.add_argument("--n-layers", type=_number("n_layers", int), default=d.n_layers)
    p.add_argument("--n-heads", type=_number("n_heads", int), default=d.n_heads)
    if sweep:  # a grid's summary is scored at the end: scoring on the way costs a sixth of its time
        p.add_argument(
            "--eval-every", type=_number("eval_every", int), help="held-out score every N steps (default: at the end)"
        )
    else:
        p.add_argument("--eval-every", type=_number("eval_every", int), default=d.eval_every)
    p.add_argument("--out", metavar="FILE.csv", help="write the per-step metrics (tidy, with the full config) here")
    p.add_argument("--json", action="store_true", help='print one JSON object {"runs": [...]} to stdout')


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m core", description="Train tiny Transformers with BatchNorm vs LayerNorm, paired.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run_flags(
        sub.add_parser("compare", help="one paired run: every norm from the same init on the same batches"), sweep=False
    )
    _add_run_flags(
        sub.add_parser("sweep", help="a grid of paired runs over batch sizes x seeds x length settings"), sweep=True
    )
    _add_run_flags(
        sub.add_parser("generate", help="a paired run, then every model continues the same held-out prompts"),
        sweep=False,
    )
    probe = sub.add_parser("probe", help="a paired run, then a probe of the trained models")
    probe.add_argument(
        "probe",
        choices=PROBES,
        help="comparability: how alike pooled values are, per grouping | leak: what moves a sentence's predictions | "
        "deploy: held-out loss per kind of statistics | causality: later tokens moving earlier predictions",
    )
    _add_run_flags(probe, sweep=False)
    return p


def _base_config(a: argparse.Namespace, sweep: bool) -> RunConfig:
    kw = {
        k: getattr(a, k)
        for k in (
            "task",
            "norms",
            "min_len",
            "max_len",
            "batching",
            "placement",
            "steps",
            "lr",
            "d_model",
            "n_layers",
            "n_heads",
            "eval_every",
        )
    }
    default_norms = ("ln",) if getattr(a, "probe", None) == "comparability" else DEFAULTS.norms
    kw["norms"] = a.norms if a.norms is not None else default_norms
    kw["lengths"] = lengths_for(a.task)  # unless given: the task's own where it takes only one (control, real text)
    if kw["eval_every"] is None:  # a sweep scores each cell at its end (the summary needs no more)
        kw["eval_every"] = min(a.steps, int(LIMITS["eval_every"][1]))
    if not sweep:
        kw.update(batch_size=a.batch_size, seed=a.seed, lengths=a.lengths or kw["lengths"], attention=a.attention)
    return RunConfig(**kw)


def _report(results: list[RunResult], a: argparse.Namespace, out=None):
    import pandas as pd

    from core.engine.metrics import with_config

    out = out or sys.stdout  # looked up at call time, so redirections of sys.stdout are honoured
    if a.out:
        pd.concat([with_config(r.history, r.config) for r in results], ignore_index=True).to_csv(a.out, index=False)
    if a.json:
        json.dump({"runs": [run for r in results for run in r.runs_json()]}, out)
        out.write("\n")
        return
    table = pd.concat([r.summary.assign(lengths=r.config.lengths, attention=r.config.attention) for r in results])
    varied = [c for c in ("lengths", "attention") if table[c].nunique() > 1]  # a grid's other axes
    cols = [
        "norm",
        *varied,
        "batch_size",
        "seed",
        "final_eval_loss",
        "final_eval_loss_batch_stats",
        "final_train_loss",
        "batch_dependence",
        "pad_fraction",
        "diverged",
        "seconds",
    ]
    out.write(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}") + "\n")
    out.write(f"{len(results)} paired run(s), {sum(r.seconds for r in results):.1f} s\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    sweep = a.command == "sweep"
    try:
        base = _base_config(a, sweep)
        if sweep:
            lengths = [s.strip() for s in (a.lengths or base.lengths).split(",") if s.strip()]
            attentions = [s.strip() for s in a.attention.split(",") if s.strip()]
            cells = len(a.batch_sizes) * len(a.seeds) * max(1, len(lengths)) * max(1, len(attentions))
            if cells > MAX_SWEEP_RUNS:  # refuse before building the grid: it could be huge
                raise ConfigError("sweep", f"at most {MAX_SWEEP_RUNS} paired runs, got {cells}")
            cfgs = sweep_configs(base, a.batch_sizes, a.seeds, lengths, attentions)
        else:
            cfgs = [base]
    except ConfigError as e:
        flag = (SWEEP_FLAG_OF if sweep else {}).get(e.field) or FLAG_OF.get(e.field, e.field)
        parser.exit(2, f"error: {flag}: {_one_line(e.detail)}\n")
    if a.out:  # fail now, not after the training it would have saved
        try:
            with open(a.out, "a"):
                pass
        except OSError as e:
            parser.exit(2, f"error: --out: cannot write {a.out!r}: {_one_line(e.strerror or str(e))}\n")
    if sweep:
        results: list[RunResult] = []
        if a.executor not in EXECUTORS:
            parser.exit(2, f"error: --executor: must be one of {', '.join(EXECUTORS)}, got {_one_line(a.executor)!r}\n")
        if a.executor == "ray" and importlib.util.find_spec("ray") is None:
            parser.exit(2, "error: --executor: ray is not installed (pip install -r requirements-dev.txt)\n")
        from core.engine.report import Listen
        from core.studies.sweep import run_sweep

        run_sweep(cfgs, Listen(cell=lambda p: results.append(p.result)), executor=a.executor, address=a.address)
        results.sort(key=lambda r: cfgs.index(r.config))  # as the cells were listed, however they finished
    elif a.command in ("generate", "probe"):
        what = a.probe if a.command == "probe" else a.command
        if cfgs[0].attention != "causal" and what in CAUSAL_ONLY:
            parser.exit(2, f"error: --attention: {what} needs a causal model (an encoder neither writes nor leaks)\n")
        _after_training(a, cfgs[0])
        return 0
    else:
        from core.engine.train import train_paired

        results = [train_paired(cfgs[0], gradient_probe=True)]
    _report(results, a)
    return 0


def _after_training(a: argparse.Namespace, cfg: RunConfig, out=None):
    """``generate`` and ``probe``: train the paired run, then report the models' writing or the
    probe's figures (one JSON object {<what>: rows, "config"} with --json, else a table)."""
    import pandas as pd

    from core.engine.metrics import with_config
    from core.engine.train import train_paired
    from core.studies.experiments import trained

    out = out or sys.stdout
    models = trained(train_paired(cfg))
    what = a.probe if a.command == "probe" else a.command
    frame, rows = _probe(what, models, cfg)
    if a.out:
        with_config(frame, cfg).to_csv(a.out, index=False)
    if a.json:
        json.dump({what: rows, "config": cfg.to_dict()}, out, ensure_ascii=False)
        out.write("\n")
        return
    out.write(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3g}") + "\n")


def _probe(what: str, models: dict, cfg: RunConfig) -> tuple[pd.DataFrame, list[dict]]:
    """(the full frame for --out, the rows to print) of ``what``."""
    import pandas as pd

    from core.studies.analysis import comparability
    from core.studies.deploy import deployment
    from core.studies.generate import generations
    from core.studies.leak import channel_summary, leaks

    if what == "generate":
        frame = generations(models, cfg)
        return frame, frame.to_dict("records")
    if what == "comparability":
        frame = pd.concat([comparability(m, cfg).assign(norm=n) for n, m in models.items()], ignore_index=True)
        return frame, frame[["norm", "layer", "grouping", "share", "chance", "values", "groups"]].to_dict("records")
    if what == "deploy":
        frame = deployment(models, cfg)
        return frame, frame.to_dict("records")
    channels, causality = leaks(models, cfg)
    if what == "leak":
        return channels, channel_summary(channels).to_dict("records")
    rows = [
        {
            "norm": norm,
            "mode": mode,
            "max_above_diagonal": float(g.loc[g["j"] > g["i"], "influence"].max()),
            "mean_at_or_below_diagonal": float(g.loc[g["j"] <= g["i"], "influence"].mean()),
        }
        for (norm, mode), g in causality.groupby(["norm", "mode"], sort=False)
    ]
    return causality, rows
