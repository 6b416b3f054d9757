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

import core.engine.torch_threads  # noqa: F401  (one intra-op thread per process: see there)
from core.settings.norm_specs import NORM_SPECS


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
        # the running estimates as they were before absorbing them, for core.engine.metrics.
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


class GroupNorm(_Norm):
    r"""Group normalization (Wu & He 2018) over groups of consecutive channels of each token.

    .. math:: y = \frac{x - \mathrm{E}_g[x]}{\sqrt{\mathrm{Var}_g[x] + \epsilon}} \cdot \gamma + \beta

    The C channels are split into ``num_groups`` groups of C / num_groups consecutive channels;
    per token, each group is normalised with its own mean and biased variance. Reduces over the
    channels of one group of one token only, so, like LayerNorm (``num_groups=1``), a token's output
    never depends on any other token, its sentence, its batch, or padding. Identical in train and
    eval mode (``use_batch_stats`` changes nothing), and a stacked forward of several batches is
    already exactly per batch: it has no ``groups`` mode because it needs none. Equals
    ``torch.nn.functional.group_norm`` on the (B*T, C) view, which is its hot path; with
    ``capture`` set the formula is written out (x_hat: the normalised value before gain/bias).

    Args:
        num_features: C, divisible by ``num_groups``. num_groups: 8. eps: added to the variance
            (default 1e-5).
    Shape:
        x: (B, T, C), valid: (B, T) (unused); output (B, T, C).
    """

    def __init__(self, num_features: int, num_groups: int = 8, eps: float = 1e-5):
        if num_features % num_groups:
            raise ValueError(f"num_groups ({num_groups}) must divide num_features ({num_features})")
        super().__init__(num_features, eps)
        self.num_groups = num_groups
        self.use_batch_stats = False  # no effect: the layer never uses the batch

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        B, T, C = x.shape
        if not self.capture:
            return F.group_norm(x.reshape(B * T, C), self.num_groups, self.weight, self.bias, self.eps).view(B, T, C)
        xg = x.reshape(B, T, self.num_groups, C // self.num_groups)
        var, mean = torch.var_mean(xg, dim=-1, keepdim=True, correction=0)  # (B, T, G, 1) each
        return self._affine(x, ((xg - mean) * torch.rsqrt(var + self.eps)).reshape(B, T, C))


class BatchRenorm(_Norm):
    r"""Batch renormalization (Ioffe 2017), masked: batch statistics over real tokens, corrected
    towards the running ones by r and d.

    .. math:: \hat x = \frac{x - \mu_B}{\sigma_B} \cdot r + d,\quad y = \hat x \cdot \gamma + \beta,
              \quad \sigma_B = \sqrt{\sigma^2_B + \epsilon},\quad \sigma_{run} = \sqrt{\sigma^2_{run} + \epsilon}

    .. math:: r = \mathrm{clip}_{[1/r_{max}, r_{max}]}\Big(\frac{\sigma_B}{\sigma_{run}}\Big),\quad
              d = \mathrm{clip}_{[-d_{max}, d_{max}]}\Big(\frac{\mu_B - \mu_{run}}{\sigma_{run}}\Big)

    mu_B and sigma^2_B (biased) reduce over B and T, per channel, over the real tokens only (as the
    masked BatchNorm): pads neither feed the statistics nor change a real token's output (pads are
    still normalised, with the real tokens' statistics). r and d are constants in the backward pass
    (detached); the gradient flows through mu_B and sigma_B as in BatchNorm.

    Training: normalise as above with the running estimates as they were before this batch, then
    update them from the real tokens as ``nn.BatchNorm1d`` does: ``running = (1 - momentum) *
    running + momentum * stat``, unbiased variance (N / (N - 1) * sigma^2_B) into running_var; and
    count the update in ``num_batches_tracked`` (int64). Clipping schedule (the paper: plain BN for
    its first 5k steps, then r_max and d_max relaxed to 3 and 5), shortened for runs of a few
    hundred steps (300 by default): training update k (1-based; k - 1 = num_batches_tracked before
    it) uses r_max = 1 + (rmax - 1) * f_k and d_max = dmax * f_k with
    f_k = clip((k - warmup) / ramp, 0, 1), so the first ``warmup`` (50) updates are exactly the
    masked BatchNorm (r = 1, d = 0) and the bounds reach rmax, dmax after a further ``ramp`` (100).
    Eval: normalise with the running estimates, as BatchNorm (r and d play no part).
    ``use_batch_stats=True`` in eval mode normalises exactly as the next training forward would
    (batch statistics, r and d at the current counter) and changes no state: no running-estimate
    update, no counter increment. Buffers are updated in place, since core.engine.metrics' batch-statistics
    twin shares them and this layer's batch-statistics forward reads them.

    ``last_clipped``: the share of channels whose r or d was clipped in the last batch-statistics
    forward (0-dim tensor); during the warm-up every channel whose r is not exactly 1 counts.
    ``last_stats`` = (mu_B, 1/sqrt(sigma^2_B + eps), running mean, running var), the last batch's
    statistics and the running estimates as they were before absorbing them (set in training and
    in ``use_batch_stats`` mode), as BatchNorm's, for core.engine.metrics.bn_stat_metrics.
    No ``groups`` mode (stacked batches each with its own statistics): not supported, it raises if
    set; score batch by batch. Not a subclass of BatchNorm, so nothing takes it for one.

    Args:
        num_features: C. eps: 1e-5. momentum: 0.1. rmax: 3.0. dmax: 5.0. warmup: 50 updates of
            plain BN. ramp: 100 updates over which the bounds relax linearly to rmax, dmax.
    Shape:
        x: (B, T, C), valid: (B, T) bool (None: every position is real); output (B, T, C).
    """

    groups = None  # stacked-batch scoring is not supported (see forward)

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, rmax: float = 3.0,
                 dmax: float = 5.0, warmup: int = 50, ramp: int = 100):  # fmt: skip
        super().__init__(num_features, eps)
        self.momentum, self.rmax, self.dmax, self.warmup, self.ramp = momentum, rmax, dmax, warmup, ramp
        self.use_batch_stats = False
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self.last_stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.last_clipped: torch.Tensor | None = None  # share of channels with r or d at a bound, last batch

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(r_max, d_max) for the next training update, as 0-dim tensors (no host sync)."""
        k = self.num_batches_tracked + 1
        f = ((k - self.warmup) / max(self.ramp, 1)).clamp(0.0, 1.0).to(self.running_var.dtype)
        return 1.0 + (self.rmax - 1.0) * f, self.dmax * f

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        B, T, C = x.shape
        if self.groups is not None:
            raise NotImplementedError("BatchRenorm has no groups mode: score stacked batches one by one")
        if not (self.training or self.use_batch_stats):
            if not self.capture:  # the running estimates, one fused op (as BatchNorm)
                y = F.batch_norm(x.reshape(B * T, C), self.running_mean, self.running_var, self.weight, self.bias,
                                 False, 0.0, self.eps)  # fmt: skip
                return y.view(B, T, C)
            return self._affine(x, (x - self.running_mean) * torch.rsqrt(self.running_var + self.eps))
        flat = x.reshape(B * T, C)
        real = flat if valid is None else flat[valid.reshape(B * T)]  # (N, C): the real tokens only
        var, mean = torch.var_mean(real, dim=0, correction=0)  # (C,) each, biased var
        sigma = torch.sqrt(var + self.eps)
        with torch.no_grad():
            r_max, d_max = self.bounds()
            sigma_run = torch.sqrt(self.running_var + self.eps)
            r_raw, d_raw = sigma / sigma_run, (mean - self.running_mean) / sigma_run
            r = torch.clamp(r_raw, 1.0 / r_max, r_max)  # no grad: constants in backward
            d = torch.clamp(d_raw, -d_max, d_max)
            # a channel whose r or d was clipped keeps a batch-dependent forward (unclipped, the
            # batch statistics cancel: x_hat = (x - mu_run) / sigma_run)
            self.last_clipped = ((r != r_raw) | (d != d_raw)).to(x.dtype).mean()
            self.last_stats = (mean.detach(), sigma.reciprocal(), self.running_mean.clone(), self.running_var.clone())
            if self.training:
                n = real.shape[0]
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * (n / (n - 1)), self.momentum)
                self.num_batches_tracked.add_(1)
        return self._affine(x, (x - mean) / sigma * r + d)


class _PowerNormFunction(torch.autograd.Function):
    """PowerNorm's normalisation and approximated backward (the authors' ``PowerFunction`` without
    the affine part, which autograd differentiates identically: sum(grad_out * z), sum(grad_out))."""

    @staticmethod
    def forward(ctx, s, x2, denom, ema_gz, alpha_bkw: float, eps: float):
        z = s / torch.sqrt(denom + eps)
        ctx.save_for_backward(z, x2)
        ctx.ema_gz, ctx.alpha_bkw, ctx.eps = ema_gz, alpha_bkw, eps
        return z

    @staticmethod
    def backward(ctx, g):  # g = grad_out * gamma, (B, T, C)
        z, x2 = ctx.saved_tensors
        approx = g - (1.0 - ctx.alpha_bkw) * ctx.ema_gz * z
        ctx.ema_gz.add_((approx * z).mean(dim=(0, 1)))  # over all B*T positions, pads included
        return approx / torch.sqrt(x2 + ctx.eps), None, None, None, None, None  # the BATCH x2, always


class PowerNorm(_Norm):
    r"""Power normalization (Shen et al., ICML 2020), following the authors' code
    (``sIncerass/powernorm``, ``fairseq/modules/norms/mask_powernorm.py``, MaskPowerNorm).

    .. math:: s = \frac{x}{\sqrt{\mathrm{E}_{g}[x^2] + \epsilon}},\quad
              z = \frac{s}{\sqrt{\psi + \epsilon}},\quad y = z \cdot \gamma + \beta

    First GroupScaling1D: per token, each of ``group_num`` groups of consecutive channels is divided
    by its RMS (reduces over the group's channels of one token). Then, per channel, a division with
    no centring by psi: the batch quadratic mean x2 = mean of s^2 over the REAL tokens (reduces over
    B and T; pads masked out) while the step counter ``iters`` <= ``warmup``, afterwards the running
    quadratic mean ``running_phi`` (as it was before this batch).

    Training (``iters`` += 1 first, then with it = iters): z as above; then ``running_phi`` is
    updated, in place, as the code does: while it < warmup, first a running average
    phi = phi * (it - 1) / it + x2 / it; and always phi = alpha_fwd * phi + (1 - alpha_fwd) * x2.
    Backward (approximated, with ``ema_gz``; g = grad_out * gamma, means over ALL B*T positions,
    pads included, as the code's mean over its (B, C, T, 1) layout):
    g~ = g - (1 - alpha_bkw) * ema_gz * z;  ema_gz += mean(g~ * z);  dL/ds = g~ / sqrt(x2 + eps),
    with the BATCH x2 even after the warm-up, when the forward divided by the running psi: we follow
    the code. The paper's Algorithm 1 (as we read it) divides the backward by the running psi_{t-1},
    the one the forward used, and writes the running gradient statistic nu = (1 - alpha_bkw) * ema_gz;
    its warm-up with batch statistics, the running average inside it and the group scaling are in
    the code, not in Algorithm 1. x2 is a constant in the backward (the code passes the masked input
    into its Function, which returns no gradient for it); the group scaling is differentiated by
    autograd. Gain and bias act on every position (pads too), so their gradients sum over all
    positions, as in the code; pads also enter ema_gz's mean and receive a gradient
    (-(1 - alpha_bkw) * ema_gz * z / sqrt(x2 + eps) even where grad_out is 0).
    Eval: z = s / sqrt(running_phi + eps). ``use_batch_stats=True`` in eval mode normalises exactly
    as the next training forward would (counter iters + 1: batch x2 during the warm-up, running_phi
    after) and changes no state (no counter increment, no running_phi update, no ema_gz update: it
    uses plain autograd of the written-out forward, x2 included, instead of the approximated
    backward). Once warm, the training forward is batch-independent; the backward is not (ema_gz,
    x2). No ``groups`` mode (raises if set); not a subclass of BatchNorm; no ``last_stats``.

    Warm-up: 50 training updates, where the authors' class default is 10,000 (and their fairseq
    scripts pass the learning-rate warm-up, 8,000 updates), a small fraction of their runs; ours are
    a few hundred steps (300 by default). Their scripts also set group_num to the number of attention
    heads; the class default, kept here, is 1. running_phi and ema_gz are stored as (C,) (the code:
    (1, C, 1, 1)), for our (B, T, C) layout (the code: (T, B, C), pad mask B x T True at pads).

    Args:
        num_features: C, divisible by ``group_num``. eps: 1e-5 (the code's GroupScaling1D always
            uses 1e-5; here both steps use ``eps``). alpha_fwd: 0.9. alpha_bkw: 0.9. warmup: 50.
            group_num: 1.
    Shape:
        x: (B, T, C), valid: (B, T) bool (None: every position is real); output (B, T, C).
    """

    groups = None  # stacked-batch scoring is not supported (see forward)

    def __init__(self, num_features: int, eps: float = 1e-5, alpha_fwd: float = 0.9, alpha_bkw: float = 0.9,
                 warmup: int = 50, group_num: int = 1):  # fmt: skip
        if num_features % group_num:
            raise ValueError(f"group_num ({group_num}) must divide num_features ({num_features})")
        super().__init__(num_features, eps)
        self.alpha_fwd, self.alpha_bkw, self.warmup, self.group_num = alpha_fwd, alpha_bkw, warmup, group_num
        self.use_batch_stats = False
        self.register_buffer("running_phi", torch.ones(num_features))
        self.register_buffer("ema_gz", torch.zeros(num_features))
        self.register_buffer("iters", torch.tensor(0, dtype=torch.long))
        self.last_x2: torch.Tensor | None = None  # the last batch-statistics probe's x2, for core.studies.deploy

    def group_scale(self, x: torch.Tensor) -> torch.Tensor:
        """GroupScaling1D: each token's channel groups divided by their RMS, (B, T, C) -> (B, T, C)."""
        B, T, C = x.shape
        xg = x.reshape(B, T, self.group_num, C // self.group_num)
        return (xg / torch.sqrt(xg.square().mean(dim=-1, keepdim=True) + self.eps)).reshape(B, T, C)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        B, T, C = x.shape
        if self.groups is not None:
            raise NotImplementedError("PowerNorm has no groups mode: score stacked batches one by one")
        s = self.group_scale(x)
        if not (self.training or self.use_batch_stats):
            return self._affine(x, s / torch.sqrt(self.running_phi + self.eps))
        flat = s.reshape(B * T, C)
        real = flat if valid is None else flat[valid.reshape(B * T)]  # (N, C): the real tokens only
        it = self.iters + 1  # the counter this training forward runs at (the code increments first)
        warm = it <= self.warmup
        if not self.training:  # batch-statistics probe: the training forward's values, no state change
            x2 = real.square().mean(dim=0)
            self.last_x2 = x2.detach()
            return self._affine(x, s / torch.sqrt(torch.where(warm, x2, self.running_phi) + self.eps))
        x2 = real.detach().square().mean(dim=0)  # (C,): a constant in the backward, as in the code
        z = _PowerNormFunction.apply(s, x2, torch.where(warm, x2, self.running_phi), self.ema_gz,
                                     self.alpha_bkw, self.eps)  # fmt: skip
        with torch.no_grad():
            self.iters.add_(1)
            itf = it.to(x2.dtype)
            phi = torch.where(it < self.warmup, self.running_phi * (itf - 1) / itf + x2 / itf, self.running_phi)
            self.running_phi.copy_(self.alpha_fwd * phi + (1 - self.alpha_fwd) * x2)
        return self._affine(x, z)


class Identity(nn.Module):
    """No normalization (the 'none' variant): returns x unchanged."""

    capture = False

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        return x


def make_norm(kind: str, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> nn.Module:
    """The norm layer named by ``kind``, as its record says (core/settings/norm_specs.py)."""
    if kind not in NORM_SPECS:
        raise ValueError(f"unknown norm {kind!r}")
    spec = NORM_SPECS[kind]
    layer = globals()[spec.layer]
    if layer is Identity:
        return Identity()
    extra = {"momentum": momentum} if spec.takes_momentum else {}
    return layer(num_features, eps=eps, **extra, **spec.options)
