"""Pure data helpers the pages need on top of core: per-token statistics for every norm layer,
the probes as tidy frames, the overview's pooling picture, and the last values of a history.

No Streamlit import: everything here takes models, configs and frames and returns frames, so it
is testable on its own.
"""

from __future__ import annotations

import pandas as pd
import torch

from core.engine.data import IGNORE, PAD, Batch, eval_batches, eval_set
from core.engine.probes import (
    capture_norm,
    pad_length_probe,
    per_token_stats,
    probe_logits,
    real_token_offset,
    variance_split,
)
from core.settings.config import NORMS, RunConfig
from core.settings.tasks import BOS

EVAL_METRICS = ("eval_loss", "eval_loss_batch_stats")


def analysis_batch(cfg: RunConfig) -> Batch:
    """The first held-out batch of the training size, batched as in training: what a norm layer
    sees in one training step, on sentences every run scores alike."""
    return eval_batches(cfg)[0]


def normalised_layers(model) -> list[str]:
    """Norm layers that normalise something ('none' has nothing to capture)."""
    return [name for name, m in model.norm_layers().items() if hasattr(m, "captured")]


def token_statistics(models: dict, cfg: RunConfig, when: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-token mean/std before and after every norm layer of every model, with batch statistics
    (as in a training step), plus the variance split and the real tokens' offset from (0, 1).

    Returns (stats: seq, pos, pad, stage, mean, std, norm, layer, when;
             splits: norm, layer, when, stage, within, between, between_share, offset).
    ``when`` labels the models' state, e.g. "init" or "trained"."""
    batch = analysis_batch(cfg)
    stats, splits = [], []
    for norm, model in models.items():
        for layer in normalised_layers(model):
            x, x_hat = capture_norm(model, batch, layer, use_batch_stats=True)
            stats.append(per_token_stats(x, x_hat, batch.valid).assign(norm=norm, layer=layer, when=when))
            offset = real_token_offset(x_hat, batch.valid)
            for stage, t in (("before", x), ("after", x_hat)):
                splits.append(
                    {
                        "norm": norm,
                        "layer": layer,
                        "when": when,
                        "stage": stage,
                        **variance_split(t, batch.valid),
                        "offset": offset,
                    }
                )
    return pd.concat(stats, ignore_index=True), pd.DataFrame(splits)


def probe_probabilities(models: dict, cfg: RunConfig, placements: int = 8) -> pd.DataFrame:
    """The batch-dependence probe as probabilities: held-out sentence 0 scored (with batch
    statistics) inside ``placements`` random batches; p(target) at each position that has one (every
    position in a causal run: the next token; the hidden ones in a bidirectional run).
    Columns: norm, batch, pos, prob."""
    targets = eval_set(cfg).targets[0]
    frames = []
    for norm, model in models.items():
        logits = probe_logits(model, cfg, placements)  # (K, L, V)
        K, L, _ = logits.shape
        pos = torch.nonzero(targets[:L] != IGNORE).flatten()  # (P,)
        probs = logits.softmax(-1)[:, pos, targets[pos]]  # (K, P)
        frames.append(
            pd.DataFrame(
                {
                    "norm": norm,
                    "batch": torch.arange(K).repeat_interleave(len(pos)).numpy(),
                    "pos": pos.repeat(K).numpy(),
                    "prob": probs.reshape(-1).numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


GROUPINGS = ("position", "position_no_bos", "sentence", "token", "pad")
PICTURE_CHANNELS = 8  # channels stored per layer for the overview's picture of what BN pools


def between_share(x: torch.Tensor, groups: torch.Tensor) -> float:
    """The share of each channel's variance that lies between ``groups`` (law of total variance,
    every value weighted alike), averaged over channels as sum_c between_c / sum_c total_c.
    x: (N, C) values; groups: (N,) integer labels."""
    x = x.double()
    _, label, count = torch.unique(groups, return_inverse=True, return_counts=True)
    k = len(count)
    means = torch.zeros(k, x.shape[1], dtype=x.dtype).index_add_(0, label, x) / count[:, None]  # (k, C)
    mean = x.mean(0)
    between = (count[:, None] * (means - mean) ** 2).sum()
    total = ((x - mean) ** 2).sum()
    return float(between / total) if total > 0 else 0.0


def chance_share(groups: torch.Tensor) -> float:
    """The between-group share expected when the values are shuffled among the groups (group sizes
    kept): exactly (k - 1) / (N - 1) for k groups of N values, whatever the values (the expected
    between-group sum of squares under permutation is (k - 1) / (N - 1) of the total)."""
    n, k = len(groups), len(torch.unique(groups))
    return (k - 1) / (n - 1) if n > 1 else 0.0


def shuffled_share(x: torch.Tensor, groups: torch.Tensor, shuffles: int, seed: int) -> float:
    """between_share with the values shuffled among the groups, averaged over ``shuffles`` draws
    (what chance_share predicts; the tests compare the two)."""
    g = torch.Generator().manual_seed(seed)
    return sum(between_share(x[torch.randperm(len(x), generator=g)], groups) for _ in range(shuffles)) / shuffles


def comparability_groups(cfg: RunConfig) -> dict[str, torch.Tensor]:
    """For each grouping of the held-out set's real tokens (eval_set, (B, T)), the (B, T) label
    of each position, -1 where the grouping leaves it out (pads; BOS for position_no_bos)."""
    data = eval_set(cfg)
    B, T = data.tokens.shape
    real = data.valid
    position = torch.arange(T).expand(B, T)
    out = {
        "position": position,
        "position_no_bos": position.masked_fill(data.tokens == BOS, -1),
        "sentence": torch.arange(B)[:, None].expand(B, T),
        "token": data.tokens,
    }
    return {name: labels.masked_fill(~real, -1) for name, labels in out.items()}


def comparability(model, cfg: RunConfig) -> pd.DataFrame:
    """The article's principle as numbers: at each norm layer's input (eval mode) of ``model``,
    the share of a channel's variance that lies between groups, for each grouping:

    * position: the held-out real tokens grouped by their position in the sentence (what one
      channel of BatchNorm pools across: every position of every sentence); position_no_bos the
      same without the BOS tokens;
    * sentence: grouped by sentence; token: grouped by token identity;
    * pad: every position of the held-out batches as batched in training, pads included (naive
      BN's pool), grouped into pads and real tokens (left out where there are no pads).

    ``chance``: the share the same values give shuffled among the same groups (chance_share).
    Near chance, the pooled values are alike; far above it, they are not.
    Columns: layer, grouping, share, chance, values, groups."""
    data = eval_set(cfg)
    labels = comparability_groups(cfg)
    rows = []
    for layer in normalised_layers(model):
        x, _ = capture_norm(model, data, layer, use_batch_stats=False)  # (B, T, C)
        for grouping, lab in labels.items():
            keep = lab >= 0
            rows.append(_share_row(layer, grouping, x[keep], lab[keep]))
        pooled = [capture_norm(model, b, layer, use_batch_stats=False)[0] for b in eval_batches(cfg)]
        values = torch.cat([p.reshape(-1, p.shape[-1]) for p in pooled])
        pads = torch.cat([(~b.valid).reshape(-1) for b in eval_batches(cfg)]).long()
        if 0 < int(pads.sum()) < len(pads):
            rows.append(_share_row(layer, "pad", values, pads))
    return pd.DataFrame(rows)


def _share_row(layer: str, grouping: str, x: torch.Tensor, groups: torch.Tensor) -> dict:
    return {"layer": layer, "grouping": grouping, "share": between_share(x, groups),
            "chance": chance_share(groups), "values": len(groups), "groups": len(torch.unique(groups))}  # fmt: skip


def position_profile(model, cfg: RunConfig, channels: int = PICTURE_CHANNELS) -> pd.DataFrame:
    """What one channel of BatchNorm pools, position by position: at each norm layer's input (eval
    mode) over the held-out real tokens, each position's mean and standard deviation of each of the
    first ``channels`` channels, and the single mean and standard deviation of all of them pooled
    (what a BatchNorm over these tokens would normalise every position with).
    Columns: layer, channel, pos, mean, sd, count, pooled_mean, pooled_sd."""
    data = eval_set(cfg)
    B, T = data.tokens.shape
    frames = []
    for layer in normalised_layers(model):
        x, _ = capture_norm(model, data, layer, use_batch_stats=False)
        x = x[..., :channels].double()  # (B, T, c)
        real = data.valid
        pooled_sd, pooled_mean = torch.std_mean(x[real], dim=0, correction=0)  # (c,)
        for p in range(T):
            at = x[:, p][real[:, p]]  # (n_p, c)
            if len(at) == 0:
                continue
            sd, mean = torch.std_mean(at, dim=0, correction=0)
            frames.append(pd.DataFrame({"layer": layer, "channel": range(x.shape[-1]), "pos": p,
                                        "mean": mean.numpy(), "sd": sd.numpy(), "count": len(at),
                                        "pooled_mean": pooled_mean.numpy(), "pooled_sd": pooled_sd.numpy()}))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def pad_probe_batch(cfg: RunConfig, rows: int = 8) -> Batch | None:
    """Up to ``rows`` held-out sentences of at most half the maximum length, so the batch can be
    padded to twice its length or more; None if there are none (fixed-length settings)."""
    data = eval_set(cfg)
    short = torch.nonzero(data.lengths <= cfg.max_len // 2).flatten()[:rows]
    return data.select(short) if len(short) else None


def pad_probe(models: dict, batch: Batch, length: int) -> pd.DataFrame:
    """How far each real token's logits move (max abs over the vocabulary) when ``batch`` is
    padded to ``length`` positions, scored with batch statistics. Columns: norm, seq, pos, pad,
    movement (0 at pads, which are not scored)."""
    B, T = batch.tokens.shape
    frames = []
    for norm, model in models.items():
        moved = pad_length_probe(model, batch, length)  # (B, T)
        frames.append(
            pd.DataFrame(
                {
                    "norm": norm,
                    "seq": torch.arange(B).repeat_interleave(T).numpy(),
                    "pos": torch.arange(T).repeat(B).numpy(),
                    "pad": (~batch.valid).reshape(-1).numpy(),
                    "movement": moved.reshape(-1).numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


POOLING_NORMS = ("bn", "masked_bn", "ln")


def pooling_cells(batch: Batch, picked: tuple[int, int, int], channels: int = 4) -> pd.DataFrame:
    """Every (norm, channel, seq, pos) cell of ``batch`` with its role relative to the ``picked``
    (seq, pos, channel) value: "picked", "pooled" (shares its mean and variance) or "other".

    BN pools one channel over every position of the batch, pads included; masked BN the same
    over real tokens only; LN pools every channel of the picked token and nothing else."""
    pb, pt, pc = picked
    B, T = batch.tokens.shape
    seq = torch.arange(B).repeat_interleave(T)  # (B*T,)
    pos = torch.arange(T).repeat(B)
    valid = batch.valid.reshape(-1)
    tokens = batch.tokens.reshape(-1)
    frames = []
    for norm in POOLING_NORMS:
        for c in range(channels):
            if norm == "ln":
                pooled = (seq == pb) & (pos == pt)
            else:
                pooled = torch.full_like(valid, c == pc)
                if norm == "masked_bn":
                    pooled &= valid
            role = pd.Series(["pooled" if p else "other" for p in pooled.tolist()])
            role[((seq == pb) & (pos == pt) & (c == pc)).numpy()] = "picked"
            frames.append(
                pd.DataFrame(
                    {
                        "norm": norm,
                        "channel": c,
                        "seq": seq.numpy(),
                        "pos": pos.numpy(),
                        "pad": (~valid).numpy(),
                        "token": ["PAD" if t == PAD else str(t) for t in tokens.tolist()],
                        "role": role,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def compares_to_layer_norm(summary: pd.DataFrame) -> bool:
    """Whether a sweep has LayerNorm and something to set against it (for gap charts)."""
    return "ln" in set(summary["norm"]) and summary["norm"].nunique() > 1


def last_values(history: pd.DataFrame, metric: str) -> pd.Series:
    """Each norm's last recorded value of an 'all'-layer metric (e.g. the final held-out loss)."""
    rows = history[(history["metric"] == metric) & (history["layer"] == "all")]
    return rows.sort_values("step").groupby("norm")["value"].last()


def mean_tail(history: pd.DataFrame, metric: str, steps: int) -> pd.Series:
    """Each norm's mean of ``metric`` over its last ``steps`` steps (one-batch values are noisy)."""
    rows = history[(history["metric"] == metric) & (history["layer"] == "all")].sort_values("step")
    return rows.groupby("norm")["value"].apply(lambda s: s.tail(steps).mean())


def in_norm_order(values: pd.Series | pd.DataFrame) -> pd.Series | pd.DataFrame:
    """Per-norm values (indexed by norm) in the legends' order (NORMS), so metrics line up with charts."""
    return values.reindex([n for n in NORMS if n in values.index])


def token_offsets(stats: pd.DataFrame, splits: pd.DataFrame) -> pd.DataFrame:
    """After the norm, how far real tokens are from mean 0 and std 1, measured two ways, per norm:
    ``per_token`` (over each token's channels: LayerNorm's target, 0 under LN) and ``per_channel``
    (over the real tokens in each channel: BatchNorm's target, 0 under masked BN; pads spoil it
    under naive BN). Both: mean |mean| + mean |std - 1|. ``stats``/``splits`` of one layer and state."""
    real = stats[(stats["stage"] == "after") & ~stats["pad"]]
    per_token = real.groupby("norm").apply(lambda g: g["mean"].abs().mean() + (g["std"] - 1).abs().mean())
    per_channel = splits.drop_duplicates("norm").set_index("norm")["offset"]
    return in_norm_order(pd.DataFrame({"per_token": per_token, "per_channel": per_channel}))
