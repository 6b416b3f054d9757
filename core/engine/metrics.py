"""Metrics: gradient norms, BN statistics distances, held-out losses (probes: core.engine.probes).

Tidy schema (the one place the column names live). A run's per-step history has one row per
(model, step, metric, layer):

    HISTORY_COLUMNS = norm, step, tokens, metric, layer, value   (+ RUN_COLUMNS from the config)

``step`` s means "the model after s updates": the train loss and gradient norms at step s are
those of the (s+1)-th batch at the current weights, so step 0 is the gradient at initialization;
eval losses at step s are scored after s updates (step 0 = init). ``tokens`` counts real tokens
seen before the step. A model's per-step metrics are one record each (``step_metrics``: keys and
values side by side; a new one is its record and its line here); the trainer adds the held-out
losses, pad_fraction, lr and diverged. Metrics (``layer`` in brackets):

    train_loss [all]            mean cross-entropy (nats/token) over the batch's real tokens
    eval_loss [all]             held-out loss, eval mode (BN uses running statistics)
    eval_loss_batch_stats [all] held-out loss normalised with batch statistics (train-size batches)
    grad_norm [all]             global L2 norm of all gradients, before clipping
    grad_norm_block [embed|block{i}|final_norm|head]  L2 norm of that part's gradients
    grad_norm_group [attn|mlp|norm|embed|head]        L2 norm per parameter group
    bn_dist_mu, bn_dist_var [block{i}.norm{j}|final]  (1/C)||mu_B - mu_run||_2, same for var (the
                                PowerNorm paper's Fig. 2), for norms with batch and running mean and
                                variance (their record's ``mean_var``: bn, masked_bn, batchrenorm)
    tid_mean, tid_var [same]    TID (Wang et al. 2022): mean_c |mu_run - mu_B| / sigma_B,
                                mean_c |sigma_run / sigma_B - 1|, sigma = sqrt(var + eps)
    renorm_clipped [all]        Batch Renormalization: share of channels (over its layers) whose r or
                                d was clipped at the step (then its forward depends on the batch)
    pad_fraction [all]          share of the batch's positions that are pads
    lr [all]                    learning rate used at the step
    diverged [all]              the step at which the model was stopped as diverged
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F

from core.engine.data import IGNORE, Batch, eval_batches, eval_set
from core.engine.report import HISTORY_COLUMNS  # noqa: F401 (re-exported: a history's columns)
from core.settings.config import RunConfig

RUN_COLUMNS = ["config_id", "task", "seed", "batch_size", "lengths", "batching", "placement"]
# A run's summary, one row per model. batch_dependence: the forward probe (max |delta logit| of one
# sentence across 8 batches); grad_batch_dependence: the same placements, the relative spread of
# its loss's parameter gradient in training mode (both in core.engine.probes; the gradient's is
# measured by the CLI and the sweeps, NaN in a paired page's run, which does not show it);
# clipped_share: mean renorm_clipped.
SUMMARY_COLUMNS = [
    "norm", "batch_size", "seed", "steps", "final_train_loss", "final_eval_loss",
    "final_eval_loss_batch_stats", "batch_dependence", "grad_batch_dependence", "clipped_share",
    "pad_fraction", "diverged", "diverged_at", "seconds",
]  # fmt: skip
GROUPS = ("attn", "mlp", "norm", "embed", "head")


def with_config(history: pd.DataFrame, cfg: RunConfig) -> pd.DataFrame:
    """The history with every config field as a column (``cfg_<name>``), for CSV export:
    each row then says exactly how it was made."""
    extra = {f"cfg_{k}": ",".join(v) if isinstance(v, list) else v for k, v in cfg.to_dict().items()}
    return history.assign(**extra)


def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats) over real tokens; pads carry target IGNORE and are skipped."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


# ---------------------------------------------------------------- gradient norms
def _block_of(name: str) -> str:
    if name.startswith(("tok_emb", "pos_emb")):
        return "embed"
    if name.startswith("blocks."):
        return "block" + name.split(".")[1]
    return "final_norm" if name.startswith("norm_f") else "head"


def _group_of(name: str) -> str:
    if name.startswith(("tok_emb", "pos_emb")):
        return "embed"
    if name.startswith("head"):
        return "head"
    for g in ("attn", "mlp"):
        if f".{g}." in name:
            return g
    return "norm"


class GradNorms:
    """Global, per-block and per-group gradient L2 norms in one pass (one foreach_norm call).

    ``__call__`` returns (global (1,), blocks (n_blocks,), groups (len(GROUPS),)) as tensors; the
    squares of the per-parameter norms are summed by index, so no per-parameter host sync happens.
    """

    def __init__(self, model: torch.nn.Module):
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in named]
        self.blocks = list(dict.fromkeys(_block_of(n) for n, _ in named))
        self.block_index = torch.tensor([self.blocks.index(_block_of(n)) for n, _ in named])
        self.group_index = torch.tensor([GROUPS.index(_group_of(n)) for n, _ in named])

    def grads(self) -> list[torch.Tensor]:
        return [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]

    def __call__(self, grads: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sq = torch.stack(torch._foreach_norm(grads)).pow(2)  # (P,)
        blocks = torch.zeros(len(self.blocks)).index_add_(0, self.block_index, sq).sqrt()
        groups = torch.zeros(len(GROUPS)).index_add_(0, self.group_index, sq).sqrt()
        return sq.sum().sqrt().view(1), blocks, groups


# ---------------------------------------------------------------- BN statistics
BN_METRICS = ("bn_dist_mu", "bn_dist_var", "tid_mean", "tid_var")


def bn_stat_metrics(bns: list[torch.nn.Module]) -> torch.Tensor:
    """(L, 4) = dist_mu, dist_var, TID_mean, TID_var for each BN layer's last batch statistics
    against the running estimates it had before that batch. All layers in one vectorised pass."""
    mu_b, invstd_b, mu_r, var_r = (
        torch.stack(t) for t in zip(*(bn.last_stats for bn in bns), strict=True)
    )  # (L, C) each
    eps, C = bns[0].eps, mu_b.shape[1]
    sig_b = invstd_b.reciprocal()  # sqrt(var_B + eps)
    var_b = sig_b.square() - eps
    sig_r = (var_r + eps).sqrt()
    return torch.stack([
        torch.linalg.vector_norm(mu_b - mu_r, dim=1) / C,
        torch.linalg.vector_norm(var_b - var_r, dim=1) / C,
        ((mu_r - mu_b).abs() * invstd_b).mean(1),
        (sig_r * invstd_b - 1).abs().mean(1),
    ], dim=1)  # fmt: skip


# ---------------------------------------------------------------- per-step metrics, one record each
@dataclass(frozen=True)
class Step:
    """What one training step of a model computed, for its per-step metrics to read."""

    loss: torch.Tensor  # (1,)
    grad_norm: torch.Tensor  # (1,) global, before clipping
    blocks: torch.Tensor  # (n_blocks,) per-block gradient norms
    groups: torch.Tensor  # (len(GROUPS),) per-group gradient norms


@dataclass(frozen=True)
class StepMetric:
    """A per-step metric of a model (or a family of them over its layers): its history keys
    (metric, layer) and, from a ``Step``, their values as one tensor in the same order, declared side by
    side. The trainer reads all of a step's values in one host transfer."""

    keys: list[tuple[str, str]]
    values: Callable[[Step], torch.Tensor]


def step_metrics(model, grad_norms: GradNorms) -> list[StepMetric]:
    """A model's per-step metrics (the module docstring defines them). train_loss and grad_norm come
    first: the trainer's divergence check and gradient clipping read them there."""
    out = [
        StepMetric([("train_loss", "all")], lambda s: s.loss),
        StepMetric([("grad_norm", "all")], lambda s: s.grad_norm),
        StepMetric([("grad_norm_block", b) for b in grad_norms.blocks], lambda s: s.blocks),
        StepMetric([("grad_norm_group", g) for g in GROUPS], lambda s: s.groups),
    ]
    if stat := model.stat_layers():  # batch against running mean and variance (mean_var norms)
        layers = list(stat.values())
        keys = [(metric, layer) for layer in stat for metric in BN_METRICS]  # bn_stat_metrics' (L, 4), row-major
        out.append(StepMetric(keys, lambda s: bn_stat_metrics(layers).flatten()))
    if model.spec.clips:
        clipping = list(model.norm_layers().values())
        out.append(
            StepMetric(
                [("renorm_clipped", "all")], lambda s: torch.stack([m.last_clipped for m in clipping]).mean().view(1)
            )
        )
    return out


@contextmanager
def batch_stats_mode(model: torch.nn.Module):
    """Eval mode, but the layers of a norm that uses the batch in training normalise as in training
    (batch statistics) and leave their state alone. On exit every flag is as it was."""
    was_training = model.training
    layers = batch_layers(model)
    was_batch_stats = [m.use_batch_stats for m in layers]
    model.eval()
    for m in layers:
        m.use_batch_stats = True
    try:
        yield model
    finally:
        for m, flag in zip(layers, was_batch_stats, strict=True):
            m.use_batch_stats = flag
        model.train(was_training)


def batch_layers(model) -> list[torch.nn.Module]:
    """The model's norm layers if its norm uses the batch in training (its record's
    ``batch_in_training``, core/settings/norm_specs.py), else none."""
    return list(model.norm_layers().values()) if model.spec.batch_in_training else []


def batch_stats_twin(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model``'s modules that shares every parameter and buffer tensor with it, fixed in
    batch-statistics mode. Mode flags live on the modules, so the twin can score the held-out set
    with batch statistics on one thread while ``model`` is scored in eval mode on another; updates
    to ``model``'s weights are the twin's too (the optimizer updates the shared tensors in place).
    Its running statistics may go stale (masked BN replaces them), but batch statistics never
    read them."""
    shared = {id(t): t for t in (*model.parameters(), *model.buffers())}
    twin = copy.deepcopy(model, shared)
    twin.eval()
    for m in batch_layers(twin):
        m.use_batch_stats = True
    return twin


@contextmanager
def eval_mode(model: torch.nn.Module):
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


# ---------------------------------------------------------------- held-out losses
def targets(batch: Batch) -> int:
    """How many tokens of ``batch`` are predicted (pads and, bidirectional, visible tokens are not)."""
    return int((batch.targets != IGNORE).sum())


@torch.no_grad()
def _token_weighted_loss(model, batches: list[Batch]) -> float:
    """Mean cross-entropy over every target of ``batches`` (each real token in a causal run, the
    hidden ones in a bidirectional run), however they are batched."""
    total, count = 0.0, 0
    for b in batches:
        n = targets(b)
        total += loss_fn(model(b.tokens, b.valid), b.targets).item() * n
        count += n
    return total / count


def eval_loss(model, cfg: RunConfig) -> float:
    """Held-out loss in eval mode. Every norm is per-token in eval mode, so how the set is batched
    does not change the result: length-sorted chunks of 16 keep padding (wasted work) low and the
    activations in cache (measured: 32 or 64 per chunk is slower, 8 too)."""
    data = eval_set(cfg)
    order = torch.argsort(data.lengths, stable=True)
    with eval_mode(model):
        return _token_weighted_loss(model, [data.select(order[i : i + 16]) for i in range(0, len(order), 16)])


GROUP_ROWS = 16  # sentences per stacked forward of the batch-statistics score (more spill out of cache)


@torch.no_grad()
def eval_loss_batch_stats(model, cfg: RunConfig) -> float:
    """Held-out loss with batch statistics, batches of the training size; no state changes.

    Each batch is normalised with its own statistics, as in training. To save per-call overhead
    (64 forwards per score at batch size 2), up to GROUP_ROWS sentences of whole batches go through
    one forward: stacked and padded to one length, with each BN layer told which rows form a batch
    and which positions are that batch's own (BatchNorm.groups). Tests check it against scoring the
    batches one by one."""
    B = cfg.batch_size
    per = GROUP_ROWS // B  # batches per forward
    if per < 2 or not model.spec.stacks:  # only some norms normalise stacked batches apart
        return eval_loss_batch_stats_loop(model, cfg)
    batches = eval_batches(cfg)
    full = [b for b in batches if b.tokens.shape[0] == B]
    bns = batch_layers(model)
    total, count = 0.0, 0
    with batch_stats_mode(model):
        for i in range(0, len(full), per):
            chunk = full[i : i + per]
            T = max(b.tokens.shape[1] for b in chunk)
            stacked = [b.padded_to(T) for b in chunk]
            within = torch.cat([(torch.arange(T) < b.tokens.shape[1]).expand(B, T) for b in chunk])
            for m in bns:
                m.groups = (len(chunk), within)
            try:
                valid = torch.cat([b.valid for b in stacked])
                logits = model(torch.cat([b.tokens for b in stacked]), valid)
            finally:
                for m in bns:
                    m.groups = None
            labels = torch.cat([b.targets for b in stacked])
            n = int((labels != IGNORE).sum())
            total += loss_fn(logits, labels).item() * n
            count += n
        rest = [b for b in batches if b.tokens.shape[0] != B]  # a last, smaller batch
        if rest:
            n = targets(rest[0])
            total += _token_weighted_loss(model, rest) * n
            count += n
    return total / count


def eval_loss_batch_stats_loop(model, cfg: RunConfig) -> float:
    """eval_loss_batch_stats the plain way, one forward per batch: the reference the tests use."""
    with batch_stats_mode(model):
        return _token_weighted_loss(model, eval_batches(cfg))
