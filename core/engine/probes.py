"""Probes of a trained model: how one held-out sentence's logits and gradient change with the
batch around it (the batch-dependence probes), how far real tokens move when a batch gets more
pads, and what a norm layer does to each token (its input and output captured, per-token
statistics, and each channel's variance over real tokens split within and between sentences)."""

from __future__ import annotations

import copy

import pandas as pd
import torch

from core.engine.data import Batch, eval_set
from core.engine.metrics import batch_stats_mode, eval_mode, loss_fn
from core.settings.config import RunConfig


# ---------------------------------------------------------------- probes
def probe_placements(cfg: RunConfig, placements: int = 8) -> list[Batch]:
    """The batch-dependence probes' batches: held-out sentence 0 (row 0) with ``batch_size - 1``
    other held-out sentences drawn at random, ``placements`` times (seeded from the config), the
    same for the forward probe (probe_logits) and the gradient's (grad_batch_dependence)."""
    data = eval_set(cfg)
    g = torch.Generator().manual_seed(cfg.seed + 101)
    out = []
    for _ in range(placements):
        others = 1 + torch.randperm(len(data.lengths) - 1, generator=g)[: cfg.batch_size - 1]
        out.append(data.select(torch.cat([torch.zeros(1, dtype=torch.long), others])))
    return out


@torch.no_grad()
def probe_logits(model, cfg: RunConfig, placements: int = 8) -> torch.Tensor:
    """The held-out sentence 0 scored in ``placements`` different random batches of the training
    size (batch statistics, no state change). Returns its logits (placements, L, V)."""
    L = int(eval_set(cfg).lengths[0])
    with batch_stats_mode(model):
        return torch.stack([model(b.tokens, b.valid)[0, :L] for b in probe_placements(cfg, placements)])


def batch_dependence(model, cfg: RunConfig, placements: int = 8) -> float:
    """Max abs difference of one sentence's logits across the batches it is placed in.
    LayerNorm: float noise (< 1e-5). BatchNorm with batch statistics: clearly > 0."""
    logits = probe_logits(model, cfg, placements)
    return float((logits.max(0).values - logits.min(0).values).max())


@torch.no_grad()
def pad_length_probe(model, batch: Batch, length: int) -> torch.Tensor:
    """How far each real token's logits move (max abs over the vocabulary) when the same batch is
    padded to ``length`` positions (at most the model's max_len), scored with batch statistics.
    Returns (B, T) with 0 at pads."""
    B, T = batch.tokens.shape
    longer = batch.padded_to(length)
    with batch_stats_mode(model):
        a = model(batch.tokens, batch.valid)
        b = model(longer.tokens, longer.valid)[:, :T]
    return (a - b).abs().amax(-1) * batch.valid


# ---------------------------------------------------------------- per-token statistics
@torch.no_grad()
def capture_norm(model, batch: Batch, layer: str, use_batch_stats: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, x_hat) at norm layer ``layer`` (input, and normalised value before gain/bias), each
    (B, T, C), for one forward of ``batch`` with batch statistics (or running ones)."""
    norm = model.norm_layers()[layer]
    norm.capture = True
    try:
        with batch_stats_mode(model) if use_batch_stats else eval_mode(model):
            model(batch.tokens, batch.valid)
        return norm.captured
    finally:
        norm.capture, norm.captured = False, None


def per_token_stats(x: torch.Tensor, x_hat: torch.Tensor, valid: torch.Tensor) -> pd.DataFrame:
    """One row per (sequence, position, stage): each token's mean and std over the C channels
    before ('before') and after ('after') the norm, with its pad flag."""
    rows = []
    for stage, t in (("before", x), ("after", x_hat)):
        std, mean = torch.std_mean(t, dim=-1, correction=0)  # (B, T)
        B, T = mean.shape
        rows.append(pd.DataFrame({
            "seq": torch.arange(B).repeat_interleave(T).numpy(),
            "pos": torch.arange(T).repeat(B).numpy(),
            "pad": (~valid).reshape(-1).numpy(),
            "stage": stage,
            "mean": mean.reshape(-1).numpy(),
            "std": std.reshape(-1).numpy(),
        }))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def real_token_offset(x_hat: torch.Tensor, valid: torch.Tensor) -> float:
    """How far the real tokens' normalised channels are from (0, 1):
    mean_c |mean_real(x_hat_c)| + mean_c |std_real(x_hat_c) - 1|. Zero for masked BN by design."""
    real = x_hat[valid]  # (N, C)
    std, mean = torch.std_mean(real, dim=0, correction=0)
    return float(mean.abs().mean() + (std - 1).abs().mean())


def variance_split(x: torch.Tensor, valid: torch.Tensor) -> dict[str, float]:
    """Split each channel's variance over real tokens into within-sequence and between-sequence
    parts (law of total variance, token-weighted), averaged over channels."""
    m = valid.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
    n_b = m.sum(1)  # (B, 1) tokens per sequence
    n = n_b.sum()
    mean_b = (x * m).sum(1) / n_b  # (B, C) per-sequence means
    mean = (x * m).sum((0, 1)) / n  # (C,)
    within = (((x - mean_b[:, None]) * m) ** 2).sum((0, 1)) / n  # (C,)
    between = (n_b * (mean_b - mean) ** 2).sum(0) / n  # (C,)
    w, b = float(within.mean()), float(between.mean())
    return {"within": w, "between": b, "between_share": b / (w + b) if w + b > 0 else 0.0}


def grad_batch_dependence(model, cfg: RunConfig, placements: int = 8) -> float:
    """Relative spread of the parameter gradient of held-out sentence 0's own loss across
    ``placements`` random batches of held-out sentences (probe_placements, those of
    the forward probe), each a training-mode forward and backward with the norm's own backward
    (PowerNorm's approximated one included), on one throwaway copy of the model whose buffers
    (running statistics, counters) are put back before each placement. LayerNorm: float noise."""
    m = copy.deepcopy(model)
    m.train()
    params = [p for p in m.parameters() if p.requires_grad]
    buffers = {name: b.clone() for name, b in m.named_buffers()}  # by name: masked BN replaces its tensors
    grads = []
    for b in probe_placements(cfg, placements):
        m.load_state_dict(buffers, strict=False)
        loss = loss_fn(m(b.tokens, b.valid)[:1], b.targets[:1])
        grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)]).double())
    g = torch.stack(grads)  # (K, P)
    mean = g.mean(0)
    return float((g - mean).norm(dim=1).square().mean().sqrt() / mean.norm())
