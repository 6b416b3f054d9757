"""Normalization layers for (B, T, C) token features with a (B, T) valid-token mask.

All layers take ``forward(x, valid)``; ``valid`` is True for real tokens and False for pads.
Hot paths use torch's fused kernels where one computes exactly the algorithm (``F.layer_norm``;
``torch.native_batch_norm`` on the (B*T, C) view for naive BN, which also hands back the batch
statistics). The per-token statistics need x_hat, so with ``capture`` set every layer takes its
written-out formula instead; the tests check both paths against ``F.layer_norm``,
``nn.BatchNorm1d`` and ``F.rms_norm``.

Every layer can ``capture`` its last input and its normalised value x_hat (before the affine
gain/bias) for the per-token statistics; BN layers also keep their last batch statistics and the
running statistics they were compared against, for the train/inference metrics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import core.torch_threads  # noqa: F401  (one intra-op thread per process: see there)


class _Norm(nn.Module):
    """Shared plumbing: optional affine gain/bias and the capture of (x, x_hat)."""

    def __init__(self, num_features: int, eps: float, bias: bool = True):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features)) if bias else None
        self.capture = False
        self.captured: tuple[torch.Tensor, torch.Tensor] | None = None

    def _affine(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        if self.capture:
            self.captured = (x.detach(), x_hat.detach())
        y = x_hat * self.weight
        return y + self.bias if self.bias is not None else y


class LayerNorm(_Norm):
    r"""Layer normalization (Ba et al. 2016) over the channels of each token.

    .. math:: y = \frac{x - \mathrm{E}_C[x]}{\sqrt{\mathrm{Var}_C[x] + \epsilon}} \cdot \gamma + \beta

    Reduces over C only (biased variance), so a token's output never depends on any other token,
    its sentence, its batch, or padding. Identical in train and eval mode.

    Args:
        num_features: C. eps: added to the variance (default 1e-5).
    Shape:
        x: (B, T, C), valid: (B, T) (unused); output (B, T, C).
    """

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        if not self.capture:
            return F.layer_norm(x, (self.num_features,), self.weight, self.bias, self.eps)
        var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)  # (B, T, 1) each
        return self._affine(x, (x - mean) * torch.rsqrt(var + self.eps))


class RMSNorm(_Norm):
    r"""RMS normalization (Zhang & Sennrich 2019): LayerNorm without centring or bias.

    .. math:: y = \frac{x}{\sqrt{\mathrm{E}_C[x^2] + \epsilon}} \cdot g

    Reduces over C only; per token, batch-independent, same in train and eval.

    Shape: x (B, T, C), valid (B, T) (unused) -> (B, T, C).
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__(num_features, eps, bias=False)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        ms = x.pow(2).mean(dim=-1, keepdim=True)  # (B, T, 1)
        return self._affine(x, x * torch.rsqrt(ms + self.eps))


class BatchNorm(_Norm):
    r"""Batch normalization (Ioffe & Szegedy 2015) of each channel over the batch and positions.

    .. math:: y = \frac{x - \mu_B}{\sqrt{\sigma^2_B + \epsilon}} \cdot \gamma + \beta,\quad
              \mu_B = \frac{1}{|S|}\sum_{(b,t)\in S} x_{b,t},\;
              \sigma^2_B = \frac{1}{|S|}\sum_{(b,t)\in S} (x_{b,t} - \mu_B)^2

    Reduces over B and T, per channel. ``masked=False`` (naive, "bn"): S is every one of the B*T
    positions, pads included, exactly ``nn.BatchNorm1d`` on the (B*T, C) view. ``masked=True``
    ("masked_bn"): S is the real tokens only; pads neither feed the statistics nor change any real
    token's output (pads are still normalised, with the real tokens' statistics).

    Training: normalise with the batch statistics and update the running estimates,
    ``running = (1 - momentum) * running + momentum * stat`` with the unbiased variance
    (|S| / (|S| - 1) * sigma^2_B), as PyTorch does. Eval: normalise with the running estimates.
    ``use_batch_stats=True`` in eval mode normalises with batch statistics without touching the
    running estimates (the "batch statistics" held-out score and the batch-dependence probe).
    With ``groups = (G, within)`` set as well, the B rows are G batches stacked (padded to one
    length): each group of B/G rows is normalised with its own statistics, over the positions
    ``within`` (B, T) marks as its own (naive: every position up to that batch's own length;
    masked: its real tokens), exactly as if each batch had been run alone, in one forward.

    Args:
        num_features: C. eps: 1e-5. momentum: 0.1. masked: count only real tokens.
    Shape:
        x: (B, T, C), valid: (B, T) bool; output (B, T, C).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, masked: bool = False):
        super().__init__(num_features, eps)
        self.momentum, self.masked = momentum, masked
        self.use_batch_stats = False
        self.groups: tuple[int, torch.Tensor] | None = None
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        # (mu_B, 1/sqrt(var_B + eps), running mean, running var): the last batch's statistics and
        # the running estimates as they were before absorbing them, for core.metrics.
        self.last_stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        B, T, C = x.shape
        if self.groups is not None and self.use_batch_stats and not self.training:
            return self._grouped(x, valid)
        if not (self.training or self.use_batch_stats):
            if not self.capture:  # nn.BatchNorm1d's eval kernel: the running estimates, one fused op
                y = F.batch_norm(x.reshape(B * T, C), self.running_mean, self.running_var, self.weight, self.bias,
                                 False, 0.0, self.eps)  # fmt: skip
                return y.view(B, T, C)
            mean, invstd = self.running_mean, torch.rsqrt(self.running_var + self.eps)
        elif self.masked:
            real = x.reshape(B * T, C)[valid.reshape(B * T)]  # (N, C): the real tokens only
            var, mean = torch.var_mean(real, dim=0, correction=0)  # (C,) each, biased var
            invstd = torch.rsqrt(var + self.eps)
            self._track(mean, var, invstd, real.shape[0])
        elif not self.capture:
            # nn.BatchNorm1d's own kernel on the (B*T, C) view: every position counts, pads too.
            before = (self.running_mean.clone(), self.running_var.clone())
            track = (self.running_mean, self.running_var) if self.training else (None, None)
            y, mean, invstd = torch.native_batch_norm(
                x.reshape(B * T, C), self.weight, self.bias, *track, True, self.momentum, self.eps
            )
            self.last_stats = (mean.detach(), invstd.detach(), *before)
            return y.view(B, T, C)
        else:
            var, mean = torch.var_mean(x, dim=(0, 1), correction=0)  # (C,) each: this is
            invstd = torch.rsqrt(var + self.eps)  # nn.BatchNorm1d on x.view(B*T, C)
            self._track(mean, var, invstd, B * T)
        return self._affine(x, (x - mean) * invstd)

    def _grouped(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        G, within = self.groups
        B, T, C = x.shape
        counted = (valid & within) if self.masked else within
        w = counted.reshape(G, -1, 1).to(x.dtype)  # (G, B/G*T, 1)
        xg = x.reshape(G, -1, C)
        n = w.sum(1, keepdim=True)  # (G, 1, 1) positions counted per group
        mean = (xg * w).sum(1, keepdim=True) / n  # (G, 1, C)
        d = xg - mean
        var = (d * d * w).sum(1, keepdim=True) / n  # biased, as in training
        return self._affine(x, (d * torch.rsqrt(var + self.eps)).reshape(B, T, C))

    @torch.no_grad()
    def _track(self, mean: torch.Tensor, var: torch.Tensor, invstd: torch.Tensor, n: int):
        """Keep the batch statistics; in training, update the running estimates (unbiased var).
        The update builds new tensors, so the previous estimates survive in last_stats uncopied."""
        self.last_stats = (mean.detach(), invstd.detach(), self.running_mean, self.running_var)
        if self.training:
            self.running_mean = torch.lerp(self.running_mean, mean, self.momentum)
            self.running_var = torch.lerp(self.running_var, var * (n / (n - 1)), self.momentum)


class Identity(nn.Module):
    """No normalization (the 'none' variant): returns x unchanged."""

    capture = False

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        return x


def make_norm(kind: str, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> nn.Module:
    """The norm layer named by ``kind`` (one of core.config.NORMS)."""
    if kind == "ln":
        return LayerNorm(num_features, eps)
    if kind == "bn":
        return BatchNorm(num_features, eps, momentum, masked=False)
    if kind == "masked_bn":
        return BatchNorm(num_features, eps, momentum, masked=True)
    if kind == "rms":
        return RMSNorm(num_features, eps)
    if kind == "none":
        return Identity()
    raise ValueError(f"unknown norm {kind!r}")
