"""The reproducibility contract: what "the same numbers" means, on this machine and on another.

* **Same config, seed, machine and thread setting: identical numbers**, to the last bit, also for
  runs in concurrent threads (tests/test_core.py).
* **Another processor: equal within float noise.** PyTorch picks its CPU kernels per instruction
  set (AVX-512, AVX2, or the portable ``ATEN_CPU_CAPABILITY=default``), and their sums round
  differently. Measured on the guided tour's scenarios across those three kernel sets (the
  table is in docs/reproducibility.md):

  - training itself barely moves: train losses, gradient norms and held-out losses with batch
    statistics agree to 4e-5 (relative) at every one of 300 steps;
  - what moves is whatever reads a BatchNorm's running mean. The mean of a channel is small next
    to its values, so its last bits are a large share of it: eval-mode held-out losses of BN models
    differ by up to 0.05 mid-run and 0.004 at the end (of 4.6, in the train-vs-inference
    scenario; 2e-4 of 1.3 elsewhere), and the two statistics that subtract nearly equal means
    (``bn_dist_mu``, ``tid_mean``) by up to 16%.

So stored results are compared with a new run in three parts, each as tightly as it allows:

  ``FIRST_STEPS``  every metric of the first steps of a history, tightly (``TIGHT``), but the two
                   mean-difference statistics (``ILL_CONDITIONED``);
  ``FIGURES``      the figures the pages show (``figures``): final held-out losses both ways, the
                   train loss at the end, sweep summaries, probe values, per-token offsets and
                   variance shares, gradient profiles, causality maps: within ``FIGURE_TOL``, a few times what
                   was measured, and far below the effects the tour points at (gaps of 0.04-3 nats);
  ``EVAL_MODE_TOL`` the leak probes and causality maps of a norm with running statistics in eval
                   mode, which read its running mean (measured up to 0.76% apart);
  the rest         the same rows, steps and metrics, the values not compared; what the models
                   write (generations) the same prompts and rows, the sampled text not compared:
                   a last-bit difference in a probability can flip a sampled character.
"""

from __future__ import annotations

import math

import pandas as pd

from core.settings.norm_specs import NORM_SPECS

FIRST_STEPS = 10  # steps 0..10 of a history are compared tightly
TIGHT = {"rtol": 1e-4, "atol": 1e-6}  # measured: 4e-6 relative in the first steps
FIGURE_TOL = {"rtol": 2e-3, "atol": 1e-3}  # measured: 0.004 on a loss of 4.6 (0.9e-3), 2e-4 on 1.3
ILL_CONDITIONED = ("bn_dist_mu", "tid_mean")  # differences of nearly equal means: up to 16% apart
# The leak probes and causality maps of a norm with running statistics, in eval mode, read its running
# mean: measured up to 0.76% apart (AVX2 against the portable kernels, KL of 0.1-1), a few times that.
EVAL_MODE_TOL = {"rtol": 3e-2, "atol": 1e-3}
EVAL_MODE_FRAMES = ("leak", "causality")
SUMMARY_FIGURES = (
    "final_train_loss",
    "final_eval_loss",
    "final_eval_loss_batch_stats",
    "batch_dependence",
    "grad_batch_dependence",
    "clipped_share",
)
SUMMARY_KEYS = ("norm", "batch_size", "seed", "lengths", "batching", "task", "placement", "attention")


def figures(name: str, df: pd.DataFrame) -> pd.Series:
    """The figures a page shows from the frame ``name``, as one Series named by what each is.

    history: each norm's last held-out losses (eval mode, batch statistics) and its train loss
    averaged over the last 25 steps; summary: the per-run figures of SUMMARY_FIGURES; probe:
    every probed value; stats: each norm's, layer's and state's real-token offset from (0, 1)
    after the norm (the per-token page's metrics); splits and profile: every value."""
    if name == "history":
        whole = df[df["layer"] == "all"].sort_values("step", kind="stable")
        held_out = whole[whole["metric"].isin(["eval_loss", "eval_loss_batch_stats"])]
        last = held_out.groupby(["norm", "metric"])["value"].last()
        train = whole[whole["metric"] == "train_loss"].groupby("norm")["value"].apply(lambda s: s.tail(25).mean())
        out = pd.concat([last, train.rename(lambda n: (n, "train_loss (last 25 steps)"))])
    elif name == "summary":
        keys = [k for k in SUMMARY_KEYS if k in df.columns]
        out = df.set_index(keys)[[c for c in SUMMARY_FIGURES if c in df.columns]].stack()
    elif name == "stats":
        real = df[(df["stage"] == "after") & ~df["pad"]]
        offset = (real["mean"].abs() + (real["std"] - 1).abs()).groupby([real[k] for k in ("norm", "layer", "when")])
        out = offset.mean()
    else:  # probe, splits, profile: every number, keyed by the frame's other columns
        numbers = [c for c in df.columns if pd.api.types.is_float_dtype(df[c])]
        keys = [c for c in df.columns if c not in numbers]
        out = df.set_index(keys)[numbers].stack()
    out.index = [" · ".join(map(str, k)) if isinstance(k, tuple) else str(k) for k in out.index]
    return out.astype(float)


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= atol + rtol * abs(b)


def _far(label: str, got: pd.Series, want: pd.Series, tol: dict) -> list[str]:
    if list(got.index) != list(want.index):
        return [f"{label}: other figures ({len(got)} against {len(want)} stored)"]
    bad = [k for k in want.index if not _close(got[k], want[k], **tol)]
    return [f"{label} {k}: {got[k]:.6g}, stored {want[k]:.6g}" for k in bad[:5]] + (
        [f"{label}: and {len(bad) - 5} more"] if len(bad) > 5 else []
    )


def _row_names(history: pd.DataFrame) -> pd.Index:
    return pd.Index(history[["norm", "step", "metric", "layer"]].astype(str).agg(" · ".join, axis=1))


def differences(stored: dict[str, pd.DataFrame], made: dict[str, pd.DataFrame]) -> list[str]:
    """Where ``made`` (a new run's frames) breaks the contract with ``stored``: one line each,
    none if they agree. Frames must match in name, columns and rows; then the first steps of a
    history are compared tightly, the figures within FIGURE_TOL."""
    if list(made) != list(stored):
        return [f"frames {list(made)}, stored {list(stored)}"]
    out = []
    for name, want in stored.items():
        got = made[name]
        if list(got.columns) != list(want.columns) or len(got) != len(want):
            out.append(f"{name}: shape {got.shape} {list(got.columns)}, stored {want.shape} {list(want.columns)}")
            continue
        if name == "history":
            if not _row_names(got).equals(_row_names(want)):
                out.append("history: other rows (norm, step, metric, layer) than stored")
                continue
            first = (want["step"] <= FIRST_STEPS) & ~want["metric"].isin(ILL_CONDITIONED)
            out += _far(
                f"history, first {FIRST_STEPS} steps,",
                got.loc[first, "value"].set_axis(_row_names(got[first])),
                want.loc[first, "value"].set_axis(_row_names(want[first])),
                TIGHT,
            )
        got_f, want_f = figures(name, got), figures(name, want)
        loose = _reads_running_mean(want_f.index) if name in EVAL_MODE_FRAMES else pd.Series(False, want_f.index)
        if list(got_f.index) != list(want_f.index):
            out += _far(f"{name}:", got_f, want_f, FIGURE_TOL)
            continue
        out += _far(f"{name}:", got_f[~loose.values], want_f[~loose.values], FIGURE_TOL)
        out += _far(f"{name}, eval mode of a norm with running statistics:", got_f[loose.values], want_f[loose.values],
                    EVAL_MODE_TOL)  # fmt: skip
    return out


def _reads_running_mean(keys: pd.Index) -> pd.Series:
    """Which figures (keyed "norm · mode · ...") are eval-mode values of a norm with running statistics."""
    parts = pd.Series(keys, index=keys).str.split(" · ")
    return parts.map(lambda p: len(p) > 1 and p[1] == "eval" and p[0] in NORM_SPECS and NORM_SPECS[p[0]].running)
