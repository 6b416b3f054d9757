"""What each model writes: the same prompts continued by every model, as it would be deployed.

The prompts are the openings of a few held-out sentences (BOS and their first symbols, about a
third of the sentence). Each model continues them in eval mode (BatchNorm with its running
statistics), one token at a time, sampling at TEMPERATURE until EOS or the model's last position.
Every model samples with the same random numbers (a generator seeded from the config's seed,
the same uniform draw turned into a token by each model's own distribution: inverse-CDF
sampling), so two models that predict alike write alike, and what differs is the models.
Deterministic per config and seed.
"""

from __future__ import annotations

import pandas as pd
import torch

from core.engine.data import EOS, PAD, eval_set, vocab_of
from core.engine.metrics import eval_mode
from core.settings.config import RunConfig

N_PROMPTS = 4
TEMPERATURE = 0.8  # a little below 1: fewer one-in-a-hundred characters, the same model
SEED_OFFSET = 4242  # the sampling generator's seed is cfg.seed + this (apart from data and init)


def prompts(cfg: RunConfig, n: int = N_PROMPTS) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens (n, max_len), prompt lengths (n,)): n held-out sentences of at least 4 tokens (or as
    long as the setting allows), each to be continued after its first third (at least one symbol
    after BOS, at most 10 tokens); none if the setting's sentences are shorter than 3 tokens."""
    data = eval_set(cfg)
    rows = torch.nonzero(data.lengths >= min(4, cfg.max_len)).flatten()[:n]
    tokens = torch.full((len(rows), cfg.max_len), PAD, dtype=torch.long)
    tokens[:, : data.tokens.shape[1]] = data.tokens[rows]
    lengths = (data.lengths[rows] // 3).clamp(min=2, max=10).clamp(max=cfg.max_len - 1)
    return tokens, lengths


@torch.no_grad()
def generate(model, cfg: RunConfig, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Continue each row of ``tokens`` after its first ``lengths[r]`` tokens up to max_len
    positions, in eval mode, sampling at TEMPERATURE with the generator of cfg.seed. Returns
    (n, max_len) ids; a row that has written EOS keeps writing, but nothing after its EOS counts."""
    g = torch.Generator().manual_seed(cfg.seed + SEED_OFFSET)
    out = tokens.clone()
    n, T = out.shape
    valid = torch.ones(n, T, dtype=torch.bool)
    with eval_mode(model):
        for t in range(int(lengths.min()), T):
            logits = model(out[:, :t], valid[:, :t])[:, -1]  # (n, V): the next token after position t-1
            cdf = torch.softmax(logits.double() / TEMPERATURE, -1).cumsum(-1)
            u = torch.rand(n, 1, generator=g, dtype=torch.float64) * cdf[:, -1:]
            sampled = torch.searchsorted(cdf, u).squeeze(1).clamp(max=cdf.shape[1] - 1)
            out[:, t] = torch.where(t < lengths, out[:, t], sampled)
    return out


def generations(models: dict, cfg: RunConfig, n: int = N_PROMPTS) -> pd.DataFrame:
    """Every model's continuations of the same prompts, as text. Columns: norm, prompt_id,
    prompt, continuation, ended (it wrote EOS before the last position)."""
    vocab = vocab_of(cfg)
    tokens, lengths = prompts(cfg, n)
    rows = []
    for norm, model in models.items() if len(lengths) else ():  # no held-out sentence to start from
        out = generate(model, cfg, tokens, lengths)
        for i, (ids, k) in enumerate(zip(out.tolist(), lengths.tolist(), strict=True)):
            rest = ids[k:]
            rows.append({
                "norm": norm,
                "prompt_id": i,
                "prompt": vocab.decode(ids[:k]),
                "continuation": vocab.decode(rest),
                "ended": EOS in rest,
            })  # fmt: skip
    return pd.DataFrame(rows, columns=["norm", "prompt_id", "prompt", "continuation", "ended"])
