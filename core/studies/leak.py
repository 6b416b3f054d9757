"""Where a batch-statistics norm lets information in, measured as a change of predicted distributions.

A held-out sentence s sits in a held-out batch, batched as in training. Its predicted next-token
distributions p_i (one per real position i) are compared before and after one change, as
KL(p_before || p_after), computed in float64 from log-softmax so that float noise stays near 1e-12:

* ``own_later`` (a): one of its own later tokens j changes; measured at its positions i < j, which
  causal attention keeps from seeing j. Zero for every per-token norm; not zero when the
  normalisation pools position j's value into the statistics position i is normalised with.
* ``other_sentence`` (b): one token of another sentence of the batch changes; measured at every
  real position of s. Only statistics shared across the batch can carry it.
* ``length`` (c): s is cut after position k (every k from 2 to its length - 2; the later positions
  become pads); measured at the positions it keeps (i <= k). The batch keeps its padded length.
* ``batch`` (d): s placed in ``placements`` other batches of held-out sentences drawn at random;
  measured at every real position against s in its own batch.

Each channel is reported as the mean and the max of KL over its (change, position) pairs, per norm
and mode: ``batch_stats`` (normalised with the batch's statistics, as in training, no state change)
and ``eval`` (running statistics, as deployed). A norm whose layers never use the batch computes
the same in both modes: it is measured once and reported for both.

The probed sentences are the longest sentence of each of the ``batches`` held-out batches whose
longest sentence is longest (so the causality map has positions to show: at least 12 where the
task's lengths allow). Causal models only: in a bidirectional model every position legitimately
reads every other and its own length, so (a) and (c) are no leak there; the probe is not run.

The causality map is channel (a)'s measure for every (output i, changed input j), j <= i included.

The gradient's probe (``core.engine.probes.grad_batch_dependence``): one held-out sentence in
``placements`` different batches, each time a training-mode forward and backward of its own loss on
a copy of the model (the copy's state is thrown away): the relative spread of the parameter
gradient, sqrt(mean_k ||g_k - g_mean||^2) / ||g_mean||. A norm can have a batch-independent forward
and a batch-dependent gradient.
"""

from __future__ import annotations

import pandas as pd
import torch

from core.engine.data import PAD, Batch, eval_batches, eval_set, vocab_of
from core.engine.metrics import batch_layers, batch_stats_mode, eval_mode
from core.settings.config import RunConfig
from core.settings.tasks import N_SPECIAL

CHANNELS = ("own_later", "other_sentence", "length", "batch")
MODES = ("batch_stats", "eval")  # normalised with the batch's statistics (as in training), running ones
PROBED_BATCHES = 4
PLACEMENTS = 8
MAX_CHANGES = 48  # changes of other sentences' tokens per probed sentence (evenly spread)
LOGIT_BUDGET = 4_000_000  # logits held at once (G copies x B x T x V): chunks keep memory small


def kl(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """KL(p_before || p_after) over the last axis, from logits, in float64: (..., V) -> (...)."""
    lp, lq = before.double().log_softmax(-1), after.double().log_softmax(-1)
    return (lp.exp() * (lp - lq)).sum(-1).clamp_min(0.0)


def swapped(tokens: torch.Tensor, n_symbols: int) -> torch.Tensor:
    """Each token replaced by the symbol half the symbol range away (a special one by a symbol)."""
    return (tokens - N_SPECIAL + n_symbols // 2) % n_symbols + N_SPECIAL


def probed_batches(cfg: RunConfig, count: int = PROBED_BATCHES) -> list[tuple[Batch, int]]:
    """(batch, probed row) for the ``count`` full held-out batches (batched as in training) whose
    longest sentence is longest; the probed row is that sentence. Ties keep the batches' order."""
    full = [b for b in eval_batches(cfg) if b.tokens.shape[0] == cfg.batch_size]
    longest = sorted(full, key=lambda b: -int(b.lengths.max()))[:count]
    return [(b, int(torch.argmax(b.lengths))) for b in longest]


def variant_logits(model, tokens: torch.Tensor, valid: torch.Tensor, row: int, grouped: bool) -> torch.Tensor:
    """Row ``row``'s logits (G, T, V) in each of G variants (G, B, T) of one batch. ``grouped``: each
    variant normalised with its own batch statistics (BatchNorm.groups, one forward per chunk);
    otherwise the norm is per token in this mode and variants may share a forward."""
    G, B, T = tokens.shape
    layers = batch_layers(model) if grouped else []
    if layers and not model.spec.stacks:  # a batch-statistics norm without stacked batches
        return torch.stack([model(tokens[g], valid[g])[row] for g in range(G)])
    vocab = model.head.out_features
    chunk = max(1, LOGIT_BUDGET // (B * T * vocab))
    out = []
    for start in range(0, G, chunk):
        t, v = tokens[start : start + chunk], valid[start : start + chunk]
        g = t.shape[0]
        for m in layers:
            m.groups = (g, torch.ones(g * B, T, dtype=torch.bool))
        try:
            out.append(model(t.reshape(g * B, T), v.reshape(g * B, T)).view(g, B, T, -1)[:, row])
        finally:
            for m in layers:
                m.groups = None
    return torch.cat(out)


def _variants(batch: Batch, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` copies of the batch's tokens and valid mask: (count, B, T) each, writable."""
    return batch.tokens.repeat(count, 1, 1), batch.valid.repeat(count, 1, 1)


def _sentence_probe(model, cfg: RunConfig, batch: Batch, s: int, grouped: bool, placements: int) -> dict:
    """The four channels and the causality map for sentence ``s`` of ``batch``, in the current mode."""
    n_symbols = vocab_of(cfg).size - N_SPECIAL
    n = int(batch.lengths[s])
    base = variant_logits(model, batch.tokens[None], batch.valid[None], s, grouped)[0, :n]  # (n, V)

    # (a) and the map: each position j of s changed in turn; KL at every position i
    tokens, valid = _variants(batch, n)
    j = torch.arange(n)
    tokens[j, s, j] = swapped(tokens[j, s, j], n_symbols)
    moved = kl(base, variant_logits(model, tokens, valid, s, grouped)[:, :n])  # (j, i)
    later = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1).T  # [j, i]: i < j
    own = moved[later]

    # (b) one token of another sentence changed, every real position of s measured
    others = [(r, p) for r in range(batch.tokens.shape[0]) if r != s for p in range(int(batch.lengths[r]))]
    pick = torch.linspace(0, len(others) - 1, min(MAX_CHANGES, len(others))).round().long().unique()
    rows = torch.tensor([others[i][0] for i in pick])
    cols = torch.tensor([others[i][1] for i in pick])
    tokens, valid = _variants(batch, len(pick))
    g = torch.arange(len(pick))
    tokens[g, rows, cols] = swapped(tokens[g, rows, cols], n_symbols)
    other = kl(base, variant_logits(model, tokens, valid, s, grouped)[:, :n]).flatten()

    # (c) cut after position k: the positions it keeps, i <= k
    ks = torch.arange(2, n - 1)
    tokens, valid = _variants(batch, len(ks))
    for c, k in enumerate(ks.tolist()):
        tokens[c, s, k + 1 :] = PAD
        valid[c, s, k + 1 :] = False
    cut = kl(base, variant_logits(model, tokens, valid, s, grouped)[:, :n])  # (k, i)
    kept = torch.arange(n)[None] <= ks[:, None]
    length = cut[kept]

    # (d) the same sentence in other batches of held-out sentences
    data, gen = eval_set(cfg), torch.Generator().manual_seed(cfg.seed + 101)
    index = _row_in_set(data, batch, s)
    placed = []
    for _ in range(placements):
        pool = torch.tensor([i for i in torch.randperm(len(data.lengths), generator=gen).tolist() if i != index])
        b = data.select(torch.cat([torch.tensor([index]), pool[: batch.tokens.shape[0] - 1]]))
        placed.append(variant_logits(model, b.tokens[None], b.valid[None], 0, grouped)[0, :n])
    moved_batch = kl(base, torch.stack(placed)).flatten() if placements else torch.zeros(0)

    influence = torch.full((cfg.max_len, cfg.max_len), float("nan"), dtype=torch.float64)
    influence[:n, :n] = moved.T  # [i, j]
    return {"own_later": own, "other_sentence": other, "length": length, "batch": moved_batch, "map": influence}


def _row_in_set(data: Batch, batch: Batch, s: int) -> int:
    """The held-out set's index of row ``s`` of ``batch`` (same tokens and length)."""
    n = int(batch.lengths[s])
    same = (data.lengths == n) & (data.tokens[:, :n] == batch.tokens[s, :n]).all(1)
    return int(torch.nonzero(same)[0])


@torch.no_grad()
def probe_model(model, cfg: RunConfig, mode: str, batches: int = PROBED_BATCHES, placements: int = PLACEMENTS):
    """One model in one mode: (channel rows: channel, sentence, mean_kl, max_kl, pairs; the mean
    causality map (max_len, max_len), NaN where no probed sentence has both positions)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    grouped = mode == "batch_stats" and model.spec.batch_in_training
    rows, maps = [], []
    with batch_stats_mode(model) if mode == "batch_stats" else eval_mode(model):
        for k, (batch, s) in enumerate(probed_batches(cfg, batches)):
            found = _sentence_probe(model, cfg, batch, s, grouped, placements)
            maps.append(found.pop("map"))
            for channel, values in found.items():
                rows.append({"channel": channel, "sentence": k, "mean_kl": float(values.mean()) if len(values) else
                             float("nan"), "max_kl": float(values.max()) if len(values) else float("nan"),
                             "pairs": len(values)})  # fmt: skip
    stacked = torch.stack(maps)
    counted = (~stacked.isnan()).sum(0)
    mean_map = torch.where(counted > 0, stacked.nan_to_num(0.0).sum(0) / counted.clamp_min(1), float("nan"))
    return rows, mean_map


def causality_map(model, cfg: RunConfig, mode: str, batches: int = PROBED_BATCHES) -> torch.Tensor:
    """The causality map alone: (max_len, max_len), [i, j] the mean KL at output i when input j of
    the same sentence changes (NaN where no probed sentence has both positions)."""
    return probe_model(model, cfg, mode, batches, placements=0)[1]


def largest_above_diagonal(influence: torch.Tensor) -> float:
    """The largest influence of a later input on an earlier output (j > i): 0 for a causal model."""
    return float(torch.nan_to_num(torch.triu(influence, diagonal=1), nan=0.0).max())


def leaks(models: dict, cfg: RunConfig, batches: int = PROBED_BATCHES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every model's channels and causality map in both modes (a per-token model measured once).

    Returns (channels: norm, mode, channel, sentence, mean_kl, max_kl, pairs;
             causality: norm, mode, i, j, influence), the map long, without the NaN cells."""
    if cfg.attention != "causal":
        raise ValueError("the leak probe needs a causal model: in an encoder every position reads every other")
    channels, maps = [], []
    for norm, model in models.items():
        measured = {
            mode: probe_model(model, cfg, mode, batches)
            for mode in MODES
            if model.spec.batch_in_training or mode == "eval"
        }
        for mode in MODES:
            rows, influence = measured.get(mode, measured["eval"])
            channels += [{"norm": norm, "mode": mode, **r} for r in rows]
            T = influence.shape[0]
            i, j = torch.arange(T).repeat_interleave(T), torch.arange(T).repeat(T)
            df = pd.DataFrame({"norm": norm, "mode": mode, "i": i.numpy(), "j": j.numpy(),
                               "influence": influence.reshape(-1).numpy()})  # fmt: skip
            maps.append(df.dropna())
    return pd.DataFrame(channels), pd.concat(maps, ignore_index=True)


def channel_summary(channels: pd.DataFrame) -> pd.DataFrame:
    """Per norm, mode and channel: the pair-weighted mean KL and the largest KL over the sentences.
    Columns: norm, mode, channel, mean_kl, max_kl."""
    rows = []
    for (norm, mode, channel), g in channels.groupby(["norm", "mode", "channel"], sort=False):
        g = g[g["pairs"] > 0]
        mean = float((g["mean_kl"] * g["pairs"]).sum() / g["pairs"].sum()) if len(g) else float("nan")
        rows.append(
            {"norm": norm, "mode": mode, "channel": channel, "mean_kl": mean, "max_kl": float(g["max_kl"].max())}
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- the gradient, across batches
