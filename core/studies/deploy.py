"""Deployment statistics: which statistics a trained batch-statistics norm should be deployed with.

The held-out loss of each model whose norm keeps running statistics (its record's ``running``,
core/settings/norm_specs.py: bn, masked_bn, batchrenorm, powernorm), with LayerNorm beside it as the
reference, under five kinds of statistics (``STATISTICS``), split by target (``TARGETS``).

"Precise BN" (fvcore's ``update_bn_stats``, Detectron2's PreciseBN): after training, the running
statistics are replaced by population statistics re-estimated over N training batches,

    mu_pop = (1/N) sum_k mu_k,   var_pop = (1/N) sum_k n_k / (n_k - 1) * var_k,   phi_pop = (1/N) sum_k x2_k,

every batch weighted equally; mu_k and var_k (biased) are batch k's statistics at the layer, over
the n_k positions the layer pools (naive BN: all B*T positions, pads included; masked BN and
BatchRenorm: the real tokens), x2_k PowerNorm's quadratic mean of its group-scaled input over the
real tokens. During the pass every layer normalises as in training (``batch_stats_mode``), so each
layer sees the inputs it saw in training. The re-estimation runs on deep copies: the caller's
models are never changed. Pure torch and pandas.
"""

from __future__ import annotations

import copy
from itertools import islice

import pandas as pd
import torch
import torch.nn.functional as F

from core.engine.data import IGNORE, Batch, BatchStream, eval_batches
from core.engine.metrics import batch_stats_mode, eval_mode
from core.engine.norms import BatchNorm
from core.settings.config import RunConfig
from core.settings.tasks import EOS

STATISTICS = ("batch", "running", "precise_as_batched", "precise_random", "per_length")
TARGETS = ("all", "eos", "other")
COLUMNS = ["norm", "statistics", "target", "loss", "targets"]

Stats = dict[str, dict[str, torch.Tensor]]  # norm layer name -> running buffer name -> batch value


@torch.no_grad()
def batch_statistics(model, batches) -> list[Stats]:
    """For each batch, each norm layer's batch value of each of its running buffers, from one
    forward of ``model`` with batch statistics (``batch_stats_mode``: no buffer changes; the layers'
    ``last_stats`` / ``last_x2`` are overwritten, so pass a copy). Mean/variance norms (their
    record's ``mean_var``) give running_mean = mu_B and running_var = n / (n - 1) * var_B, var_B
    = 1 / invstd^2 - eps read from ``last_stats``; a layer with ``running_phi`` (PowerNorm) gives x2."""
    out = []
    with batch_stats_mode(model):
        for b in batches:
            model(b.tokens, b.valid)
            stats = {}
            for name, layer in model.norm_layers().items():
                if model.spec.mean_var:
                    mean, invstd = layer.last_stats[:2]
                    pads_count = isinstance(layer, BatchNorm) and not layer.masked
                    n = b.valid.numel() if pads_count else int(b.valid.sum())
                    stats[name] = {"running_mean": mean, "running_var": (invstd.pow(-2) - layer.eps) * (n / (n - 1))}
                elif hasattr(layer, "running_phi"):
                    stats[name] = {"running_phi": layer.last_x2}
                else:
                    raise TypeError(f"{type(layer).__name__} keeps no statistics to re-estimate")
            out.append(stats)
    return out


@torch.no_grad()
def with_average(model, stats: list[Stats]):
    """A deep copy of ``model`` whose running buffers are the average of ``stats`` (equal weights)."""
    twin = copy.deepcopy(model)
    for name, layer in twin.norm_layers().items():
        for buf in stats[0][name]:
            getattr(layer, buf).copy_(torch.stack([s[name][buf] for s in stats]).mean(0))
    return twin


def precise_copy(model, batches):
    """A deep copy of ``model`` with population statistics re-estimated over ``batches`` (precise
    BN, see the module docstring); ``model`` itself is unchanged."""
    twin = copy.deepcopy(model)
    return with_average(twin, batch_statistics(twin, list(batches)))


@torch.no_grad()
def _score(held_out: list[Batch], model_for) -> list[tuple[str, float, int]]:
    """(target, loss, targets) for TARGETS: summed per-token cross-entropy over the held-out
    batches, each scored by ``model_for(batch)`` as it is (its mode is the caller's business)."""
    sums = torch.zeros(len(TARGETS), dtype=torch.float64)
    counts = torch.zeros(len(TARGETS), dtype=torch.long)
    for b in held_out:
        logits = model_for(b)(b.tokens, b.valid)
        t = b.targets.reshape(-1)
        nll = F.cross_entropy(logits.reshape(t.numel(), -1), t, ignore_index=IGNORE, reduction="none")
        real, eos = t != IGNORE, t == EOS
        for i, mask in enumerate((real, eos, real & ~eos)):
            sums[i] += nll[mask].double().sum()
            counts[i] += mask.sum()
    return [
        (target, float(s / c) if c else float("nan"), int(c))
        for target, s, c in zip(TARGETS, sums, counts, strict=True)
    ]


def _nearest(length: int, lengths) -> int:
    return min(lengths, key=lambda t: (abs(t - length), t))


def deployment(models: dict, cfg: RunConfig, batches: int = 300) -> pd.DataFrame:
    """The held-out loss (nats per target, over ``eval_batches(cfg)``) of each model whose norm
    keeps running statistics, under each kind of statistics in ``STATISTICS``:

    * ``batch``: each held-out batch normalised with its own batch statistics (batch_stats_mode);
    * ``running``: eval mode, the running statistics as deployed;
    * ``precise_as_batched``: eval mode with population statistics re-estimated (precise BN) over
      the first ``batches`` training batches of the run (``BatchStream.for_run(cfg)``);
    * ``precise_random``: the same over ``batches`` batches drawn with ``batching="random"``;
    * ``per_length``: one set of statistics per padded length T, each re-estimated from those of
      the same ``batches`` training batches (as batched) padded to T; a held-out batch is scored
      with its own length's set, or, if no training batch had its length, with the set of the
      nearest length that had one (the shorter on a tie).

    Each loss is split by target (``TARGETS``): ``eos`` the targets equal to EOS, ``other`` every
    other real target, ``all`` both. LayerNorm ("ln", when present) is the reference: it has no
    statistics, so it is scored once in eval mode and reported under ``batch`` and ``running``
    only. Other norms without running statistics (rms, groupnorm, none) are skipped. For PowerNorm
    after its warm-up, the batch-statistics forward divides by running_phi, so ``batch`` equals
    ``running``: that is what it computes; so, nearly, for BatchRenorm once r and d are within their
    bounds (its batch forward then equals the running one). The caller's models are not changed
    (every forward is on a copy).

    Returns one row per (norm, statistics, target): ``COLUMNS`` = norm, statistics, target, loss,
    targets (how many targets the cell averages over).
    """
    held_out = eval_batches(cfg)
    train = rand = None
    rows = []
    for norm, model in models.items():
        if model.spec.key == "ln":
            rows += [(norm, kind, *cell) for kind in ("batch", "running") for cell in _reference(model, held_out)]
        elif model.spec.running:
            if train is None:  # drawn once, for every model
                train = list(islice(BatchStream.for_run(cfg), batches))
                random_cfg = cfg.replace(batching="random")
                rand = train if cfg.batching == "random" else list(islice(BatchStream.for_run(random_cfg), batches))
            scores = _kinds(model, held_out, train, rand)
            rows += [(norm, kind, *cell) for kind in STATISTICS for cell in scores[kind]]
    return pd.DataFrame(rows, columns=COLUMNS)


def _reference(model, held_out: list[Batch]) -> list[tuple[str, float, int]]:
    """A per-token norm's cells: eval mode, once (it has no statistics)."""
    with eval_mode(model):
        return _score(held_out, lambda b: model)


def _kinds(model, held_out: list[Batch], train: list[Batch], rand: list[Batch]) -> dict[str, list]:
    """STATISTICS -> the cells of ``model``, every forward on a copy."""
    scratch = copy.deepcopy(model)  # the caller's model is never run
    as_batched = batch_statistics(scratch, train)
    random_stats = as_batched if rand is train else batch_statistics(scratch, rand)
    by_length: dict[int, list[Stats]] = {}
    for b, s in zip(train, as_batched, strict=True):
        by_length.setdefault(b.tokens.shape[1], []).append(s)
    per_length = {T: with_average(scratch, group).eval() for T, group in by_length.items()}
    with batch_stats_mode(scratch):
        scores = {"batch": _score(held_out, lambda b: scratch)}
    scratch.eval()
    precise = with_average(scratch, as_batched).eval()
    precise_random = with_average(scratch, random_stats).eval()
    scores["running"] = _score(held_out, lambda b: scratch)
    scores["precise_as_batched"] = _score(held_out, lambda b: precise)
    scores["precise_random"] = _score(held_out, lambda b: precise_random)
    scores["per_length"] = _score(held_out, lambda b: per_length[_nearest(b.tokens.shape[1], per_length)])
    return scores
