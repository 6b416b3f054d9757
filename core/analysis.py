"""Pure data helpers the pages need on top of core: per-token statistics for every norm layer,
the probes as tidy frames, the overview's pooling picture, and the last values of a history.

No Streamlit import: everything here takes models, configs and frames and returns frames, so it
is testable on its own.
"""

from __future__ import annotations

import pandas as pd
import torch

from core.config import NORMS, RunConfig
from core.data import IGNORE, PAD, Batch, eval_batches, eval_set
from core.metrics import (
    CAUSALITY_MODES,
    capture_norm,
    causality_map,
    pad_length_probe,
    per_token_stats,
    probe_logits,
    real_token_offset,
    variance_split,
)

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


def causality(models: dict, cfg: RunConfig) -> pd.DataFrame:
    """Every model's causality map (core.metrics.causality_map) in both modes, long: one row per
    (norm, mode, output position i, input position j) that a probed sentence has. A model without
    a norm that does not use the batch in training computes the same in both modes: its map is measured once
    and shown twice.
    Columns: norm, mode, i, j, influence."""
    frames = []
    for norm, model in models.items():
        maps = {
            mode: causality_map(model, cfg, mode)
            for mode in CAUSALITY_MODES
            if model.spec.batch_in_training or mode == "eval"
        }
        for mode in CAUSALITY_MODES:
            influence = maps.get(mode, maps["eval"])
            T = influence.shape[0]
            i, j = torch.arange(T).repeat_interleave(T), torch.arange(T).repeat(T)
            df = pd.DataFrame({"norm": norm, "mode": mode, "i": i.numpy(), "j": j.numpy(),
                               "influence": influence.reshape(-1).numpy()})  # fmt: skip
            frames.append(df.dropna())
    return pd.concat(frames, ignore_index=True)


def comparability(model, cfg: RunConfig) -> pd.DataFrame:
    """The article's principle as a number: for each norm layer, the share of each channel's
    variance over the held-out set's real tokens that lies between sentences (law of total
    variance, core.metrics.variance_split), averaged over channels, at the layer's input (eval
    mode). Near 0, the values BatchNorm pools across a batch are alike; large, they are not.
    ``chance_share``: the same, with the real tokens shuffled among the sentences (seeded), what
    sentences of these lengths would show if they did not differ at all.
    Columns: layer, within, between, between_share, chance_share."""
    data = eval_set(cfg)
    real = torch.nonzero(data.valid)  # (N, 2): (sentence, position) of each real token
    shuffled = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(cfg.seed))]
    rows = []
    for layer in normalised_layers(model):
        x, _ = capture_norm(model, data, layer, use_batch_stats=False)
        mixed = x.clone()
        mixed[real[:, 0], real[:, 1]] = x[shuffled[:, 0], shuffled[:, 1]]
        chance = variance_split(mixed, data.valid)["between_share"]
        rows.append({"layer": layer, **variance_split(x, data.valid), "chance_share": chance})
    return pd.DataFrame(rows)


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
