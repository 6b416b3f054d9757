"""A tiny causal Transformer whose norm layers are chosen by name.

Reads top to bottom: attention, MLP, Block, model. Pre-norm: ``x + f(norm(x))`` with a final
norm before the head; Post-norm (Vaswani et al. 2017): ``norm(x + f(x))``. Attention uses
``scaled_dot_product_attention`` with a causal mask and a key-padding mask.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.engine.data import mask_id, vocab_of
from core.engine.norms import make_norm
from core.settings.config import RunConfig
from core.settings.norm_specs import NORM_SPECS, NormSpec

INIT_STD = 0.02  # GPT-2's init scale


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)  # fused q, k, v projection
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None, causal: bool = True) -> torch.Tensor:
        B, T, C = x.shape
        nh = self.n_heads
        q, k, v = self.qkv(x).view(B, T, 3, nh, C // nh).permute(2, 0, 3, 1, 4)  # 3 x (B, nh, T, hs)
        # Without pads a causal mask is purely causal and SDPA can take its fast is_causal path.
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=causal and attn_mask is None)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


class MLP(nn.Module):
    def __init__(self, d_model: int):
        super().__init__()
        self.fc = nn.Linear(d_model, 4 * d_model)
        self.proj = nn.Linear(4 * d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    def __init__(self, cfg: RunConfig, norm: str):
        super().__init__()
        self.pre = cfg.placement == "pre"
        self.causal = cfg.attention == "causal"
        self.norm1 = make_norm(norm, cfg.d_model, cfg.eps, cfg.bn_momentum)
        self.attn = Attention(cfg.d_model, cfg.n_heads)
        self.norm2 = make_norm(norm, cfg.d_model, cfg.eps, cfg.bn_momentum)
        self.mlp = MLP(cfg.d_model)

    def forward(self, x, valid, attn_mask):
        if self.pre:
            x = x + self.attn(self.norm1(x, valid), attn_mask, self.causal)
            return x + self.mlp(self.norm2(x, valid))
        x = self.norm1(x + self.attn(x, attn_mask, self.causal), valid)
        return self.norm2(x + self.mlp(x), valid)


class TinyTransformer(nn.Module):
    """Token + learned position embeddings, ``n_layers`` blocks, (final norm if Pre), linear head.

    Args:
        cfg: sizes, placement, eps and BN momentum. norm: one of core.settings.config.NORMS.
        vocab_size: V. generator: draws the initial weights (no global RNG is touched).
    Shape: tokens (B, T) int64, valid (B, T) bool -> logits (B, T, V).
    """

    def __init__(self, cfg: RunConfig, norm: str, vocab_size: int, generator: torch.Generator):
        super().__init__()
        self.norm_kind = norm
        self.causal = cfg.attention == "causal"
        C = cfg.d_model
        self.tok_emb = nn.Embedding(vocab_size, C)
        self.pos_emb = nn.Embedding(cfg.max_len, C)
        self.blocks = nn.ModuleList(Block(cfg, norm) for _ in range(cfg.n_layers))
        self.norm_f = make_norm(norm, C, cfg.eps, cfg.bn_momentum) if cfg.placement == "pre" else None
        self.head = nn.Linear(C, vocab_size)
        self._init_weights(generator, cfg.n_layers)

    @torch.no_grad()
    def _init_weights(self, g: torch.Generator, n_layers: int):
        for name, p in self.named_parameters():
            if p.dim() < 2:  # biases, norm gains and biases keep their defaults (0 and 1)
                if name.endswith(".bias") and ("norm" not in name):
                    p.zero_()
                continue
            # Residual-branch outputs are scaled down with depth (GPT-2), the rest N(0, 0.02).
            std = INIT_STD / math.sqrt(2 * n_layers) if name.endswith("proj.weight") else INIT_STD
            nn.init.normal_(p, 0.0, std, generator=g)

    def norm_layers(self) -> dict[str, nn.Module]:
        """Name -> norm layer, in forward order (block0.norm1, block0.norm2, ..., final)."""
        out = {}
        for i, b in enumerate(self.blocks):
            out[f"block{i}.norm1"], out[f"block{i}.norm2"] = b.norm1, b.norm2
        if self.norm_f is not None:
            out["final"] = self.norm_f
        return out

    @property
    def spec(self) -> NormSpec:
        """The norm's record: what its layers depend on (core/settings/norm_specs.py)."""
        return NORM_SPECS[self.norm_kind]

    def stat_layers(self) -> dict[str, nn.Module]:
        """Norm layers that expose batch against running mean and variance (``mean_var`` norms)."""
        return self.norm_layers() if self.spec.mean_var else {}

    def forward(self, tokens: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        B, T = tokens.shape
        x = self.tok_emb(tokens) + self.pos_emb.weight[:T]  # (B, T, C)
        attn_mask = None
        if not bool(valid.all()) and self.causal:
            # Queries may see earlier real tokens only; every row keeps position 0 (a real token).
            causal = torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril()
            attn_mask = (causal & valid[:, None, :]).unsqueeze(1)  # (B, 1, T, T)
        elif not bool(valid.all()):
            attn_mask = valid[:, None, None, :]  # (B, 1, 1, T): every query sees every real token
        for block in self.blocks:
            x = block(x, valid, attn_mask)
        if self.norm_f is not None:
            x = self.norm_f(x, valid)
        return self.head(x)  # (B, T, V)


def build_models(cfg: RunConfig) -> dict[str, TinyTransformer]:
    """One model per norm in cfg.norms, sharing the initial value of every shared parameter; the
    vocabulary is the task's (``core.engine.data.vocab_of``).

    The first model draws its weights from a generator seeded by cfg.seed; the others copy every
    parameter with the same name and shape (all but norm parameters a variant lacks).
    """
    models: dict[str, TinyTransformer] = {}
    vocab_size = mask_id(cfg) + 1 if cfg.attention == "bidirectional" else vocab_of(cfg).size
    for norm in cfg.norms:
        m = TinyTransformer(cfg, norm, vocab_size, torch.Generator().manual_seed(cfg.seed))
        if models:
            ref = next(iter(models.values())).state_dict()
            own = m.state_dict()
            shared = {k: v for k, v in ref.items() if k in own and own[k].shape == v.shape and "running" not in k}
            m.load_state_dict(shared, strict=False)
        models[norm] = m
    return models
