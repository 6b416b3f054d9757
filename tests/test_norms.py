"""Our norm layers against PyTorch's own: same outputs, gradients and running statistics."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.engine.norms import BatchNorm, BatchRenorm, GroupNorm, LayerNorm, PowerNorm, RMSNorm, make_norm
from core.settings import norm_specs
from core.settings.norm_specs import NORM_SPECS

B, T, C = 4, 7, 16


def _x(seed=0, scale=3.0, shift=1.5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, C, generator=g) * scale + shift


def _valid():
    lengths = torch.tensor([7, 3, 5, 2])
    return torch.arange(T)[None, :] < lengths[:, None]  # (B, T), right-padded


def _randomise_affine(norm, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(C, generator=g))
        if norm.bias is not None:
            norm.bias.copy_(torch.randn(C, generator=g))


# ``capture`` switches a layer from torch's fused kernel to our written-out formula (which the
# per-token statistics read x_hat from): both paths must be the standard algorithm.
@pytest.mark.parametrize("capture", [False, True])
def test_layernorm_matches_functional_layer_norm_and_its_gradient(capture):
    ln = LayerNorm(C, eps=1e-5)
    ln.capture = capture
    _randomise_affine(ln)
    x = _x().requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    y = ln(x, _valid())
    y_ref = F.layer_norm(x_ref, (C,), ln.weight.detach(), ln.bias.detach(), 1e-5)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(y)
    y.backward(g)
    y_ref.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("capture", [False, True])
def test_rmsnorm_matches_functional_rms_norm(capture):
    rms = RMSNorm(C, eps=1e-5)
    rms.capture = capture
    _randomise_affine(rms)
    x = _x()
    torch.testing.assert_close(rms(x, _valid()), F.rms_norm(x, (C,), rms.weight.detach(), 1e-5), rtol=1e-5, atol=1e-5)


def _reference_bn(ours: BatchNorm) -> nn.BatchNorm1d:
    ref = nn.BatchNorm1d(C, eps=ours.eps, momentum=ours.momentum)
    with torch.no_grad():
        ref.weight.copy_(ours.weight)
        ref.bias.copy_(ours.bias)
    return ref


@pytest.mark.parametrize("capture", [False, True])
def test_naive_bn_matches_batchnorm1d_in_train_and_eval_with_running_stats(capture):
    bn = BatchNorm(C, eps=1e-5, momentum=0.1, masked=False)
    bn.capture = capture
    _randomise_affine(bn)
    ref = _reference_bn(bn)
    valid = _valid()
    for step in range(5):  # several updates, so momentum and the unbiased running var matter
        x = _x(seed=step).requires_grad_()
        x_ref = x.detach().clone().requires_grad_()
        y = bn(x, valid)
        # nn.BatchNorm1d on (B, C, T): channels second, statistics over B and T, pads included.
        y_ref = ref(x_ref.transpose(1, 2)).transpose(1, 2)
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
        g = torch.randn_like(y)
        y.backward(g)
        y_ref.backward(g)
        torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_mean, ref.running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var, ref.running_var, rtol=1e-5, atol=1e-6)
    bn.eval(), ref.eval()
    x = _x(seed=99)
    torch.testing.assert_close(bn(x, valid), ref(x.transpose(1, 2)).transpose(1, 2), rtol=1e-5, atol=1e-5)


def test_masked_bn_equals_batchnorm1d_on_the_real_tokens_alone():
    bn = BatchNorm(C, masked=True)
    _randomise_affine(bn)
    ref = _reference_bn(bn)
    valid = _valid()
    for step in range(4):
        x = _x(seed=step)
        y = bn(x, valid)
        y_ref = ref(x[valid])  # (N_real, C): only real tokens
        torch.testing.assert_close(y[valid], y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_mean, ref.running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var, ref.running_var, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["masked_bn", "ln", "rms"])
def test_pad_values_do_not_change_real_outputs(kind):
    valid = _valid()
    x = _x()
    garbage = x.clone()
    garbage[~valid] = torch.randn(int((~valid).sum()), C) * 100 + 50  # wild pad contents
    a, b = make_norm(kind, C), make_norm(kind, C)
    torch.testing.assert_close(a(x, valid)[valid], b(garbage, valid)[valid], rtol=1e-5, atol=1e-5)


def test_naive_bn_real_outputs_do_change_with_pad_values():
    valid = _valid()
    x = _x()
    garbage = x.clone()
    garbage[~valid] += 10.0
    a, b = make_norm("bn", C), make_norm("bn", C)
    assert (a(x, valid)[valid] - b(garbage, valid)[valid]).abs().max() > 0.1


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("capture", [False, True])
def test_batch_stats_mode_leaves_running_stats_untouched(masked, capture):
    bn = BatchNorm(C, masked=masked)
    bn.capture = capture
    bn.eval()
    bn.use_batch_stats = True
    x = _x()
    valid = torch.ones(B, T, dtype=torch.bool)
    y = bn(x, valid)
    assert torch.equal(bn.running_mean, torch.zeros(C)) and torch.equal(bn.running_var, torch.ones(C))
    # ...and it did normalise with the batch's statistics, which it reports
    torch.testing.assert_close(y.mean((0, 1)), torch.zeros(C), rtol=0, atol=1e-5)
    mean, invstd, _, _ = bn.last_stats
    torch.testing.assert_close(mean, x.mean((0, 1)))
    torch.testing.assert_close(invstd, torch.rsqrt(x.var((0, 1), correction=0) + bn.eps))


# ---------------------------------------------------------------- GroupNorm, BatchRenorm, PowerNorm
def _x_channels(seed=0, B_=B, T_=T):
    """Channels of different scales and offsets (so per-channel statistics differ), per seed."""
    g = torch.Generator().manual_seed(seed)
    scale = 0.3 + 3 * torch.rand(C, generator=g)
    shift = 2 * torch.randn(C, generator=g)
    return torch.randn(B_, T_, C, generator=g) * scale + shift


def _companions_changed(x, seed=123):
    """The same batch with every sentence but sentence 0 replaced."""
    other = x.clone()
    other[1:] = _x_channels(seed)[1:] * 2 + 1
    return other


def _pads_garbage(x, valid, seed=7):
    """Pad contents of +-100 (random sign), real tokens untouched."""
    g = torch.Generator().manual_seed(seed)
    out = x.clone()
    n = int((~valid).sum())
    out[~valid] = torch.sign(torch.randn(n, C, generator=g)) * 100
    return out


@pytest.mark.parametrize("capture", [False, True])
def test_groupnorm_matches_functional_group_norm_on_real_tokens_and_its_gradients(capture):
    # F.group_norm on the real tokens viewed as (N, C) (hot path: fused kernel; capture: written out)
    gn = GroupNorm(C, num_groups=4, eps=1e-5)
    gn.capture = capture
    _randomise_affine(gn)
    valid = _valid()
    x = _x_channels().requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    w_ref = gn.weight.detach().clone().requires_grad_()
    b_ref = gn.bias.detach().clone().requires_grad_()
    y = gn(x, valid)[valid]
    y_ref = F.group_norm(x_ref[valid], 4, w_ref, b_ref, 1e-5)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(y)
    y.backward(g)
    y_ref.backward(g)
    torch.testing.assert_close(x.grad[valid], x_ref.grad[valid], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gn.weight.grad, w_ref.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gn.bias.grad, b_ref.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("capture", [False, True])
def test_groupnorm_ignores_pads_and_batch_companions_and_mode(capture):
    gn = GroupNorm(C, num_groups=4)
    gn.capture = capture
    _randomise_affine(gn)
    valid, x = _valid(), _x_channels()
    y = gn(x, valid)
    torch.testing.assert_close(gn(_pads_garbage(x, valid), valid)[valid], y[valid], rtol=0, atol=1e-6)
    torch.testing.assert_close(gn(_companions_changed(x), valid)[0], y[0], rtol=0, atol=1e-6)
    gn.eval()
    torch.testing.assert_close(gn(x, valid), y, rtol=0, atol=1e-6)


def test_groupnorm_rejects_a_group_count_that_does_not_divide_c():
    with pytest.raises(ValueError):
        GroupNorm(C, num_groups=3)


# BatchRenorm -------------------------------------------------------------------------------------
@pytest.mark.parametrize("capture", [False, True])
def test_batch_renorm_within_warmup_equals_batchnorm1d_on_the_real_tokens(capture):
    # r and d clipped to 1 and 0 while the counter is within the warm-up: plain (masked) BN.
    brn = BatchRenorm(C, eps=1e-5, momentum=0.1, warmup=10, ramp=5)
    brn.capture = capture
    _randomise_affine(brn)
    ref = nn.BatchNorm1d(C, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        ref.weight.copy_(brn.weight)
        ref.bias.copy_(brn.bias)
    valid = _valid()
    for step in range(5):
        x = _x_channels(seed=step).requires_grad_()
        x_ref = x.detach().clone().requires_grad_()
        y = brn(x, valid)[valid]
        y_ref = ref(x_ref[valid])  # (N_real, C): nn.BatchNorm1d on the real tokens alone
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
        g = torch.randn_like(y)
        y.backward(g)
        y_ref.backward(g)
        torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    assert int(brn.num_batches_tracked) == 5 and brn.num_batches_tracked.dtype == torch.int64
    torch.testing.assert_close(brn.running_mean, ref.running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(brn.running_var, ref.running_var, rtol=1e-5, atol=1e-6)  # unbiased
    brn.eval(), ref.eval()
    x = _x_channels(seed=99)
    torch.testing.assert_close(brn(x, valid), ref(x.reshape(-1, C)).view(B, T, C), rtol=1e-5, atol=1e-5)


def _renorm_bounds(k, warmup, ramp, rmax, dmax):
    """The schedule for training update k (1-based): plain BN for k <= warmup, then linear."""
    f = min(max((k - warmup) / ramp, 0.0), 1.0)
    return 1 + (rmax - 1) * f, dmax * f


def test_batch_renorm_after_warmup_follows_the_papers_algorithm_with_r_d_constant_in_backward():
    warmup, ramp, rmax, dmax, eps, mom = 2, 4, 3.0, 5.0, 1e-5, 0.1
    brn = BatchRenorm(C, eps=eps, momentum=mom, rmax=rmax, dmax=dmax, warmup=warmup, ramp=ramp)
    _randomise_affine(brn)
    w, b = brn.weight.detach().clone(), brn.bias.detach().clone()
    valid = _valid()
    mu_run, var_run = torch.zeros(C), torch.ones(C)  # the paper's running estimates, kept by hand
    seen = {"r_clipped": False, "r_free": False, "d_clipped": False, "d_free": False}
    for k in range(1, 10):  # updates 1-2 plain BN, 3-6 the ramp, 7-9 full bounds
        # shifting scales and offsets, so r and d leave their bounds on some channels
        x0 = _x_channels(seed=k) * (0.2 + 2.5 * (k % 3)) + 4.0 * (-1) ** k
        x = x0.clone().requires_grad_()
        y = brn(x, valid)
        # Ioffe 2017, Algorithm 1, over the real tokens
        r_max, d_max = _renorm_bounds(k, warmup, ramp, rmax, dmax)
        xr = x0.clone().requires_grad_()
        real = xr[valid]
        mu = real.mean(0)
        var = ((real - mu) ** 2).mean(0)
        sigma = torch.sqrt(var + eps)
        sigma_run = torch.sqrt(var_run + eps)
        r_raw = sigma.detach() / sigma_run
        d_raw = (mu.detach() - mu_run) / sigma_run
        r = torch.clamp(r_raw, 1 / r_max, r_max)
        d = torch.clamp(d_raw, -d_max, d_max)
        if k > warmup:
            seen["r_clipped"] |= bool((r != r_raw).any())
            seen["r_free"] |= bool(((r == r_raw) & (r != 1)).any())
            seen["d_clipped"] |= bool((d != d_raw).any())
            seen["d_free"] |= bool(((d == d_raw) & (d != 0)).any())
        y_ref = ((xr - mu) / sigma * r + d) * w + b
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
        mean_b, invstd_b, mu_before, var_before = brn.last_stats
        torch.testing.assert_close(mean_b, mu.detach(), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(invstd_b, 1 / sigma.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(mu_before, mu_run, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(var_before, var_run, rtol=1e-5, atol=1e-6)
        g = torch.randn(B, T, C) * valid[..., None]  # a loss on the real tokens
        y.backward(g)
        y_ref.backward(g)
        torch.testing.assert_close(x.grad, xr.grad, rtol=1e-4, atol=1e-5)
        if k > warmup + 1:  # the check can tell: r and d as functions of x give another gradient
            xs = x0.clone().requires_grad_()
            rs = xs[valid]
            mus = rs.mean(0)
            sig = torch.sqrt(((rs - mus) ** 2).mean(0) + eps)
            r_s = torch.clamp(sig / sigma_run, 1 / r_max, r_max)
            d_s = torch.clamp((mus - mu_run) / sigma_run, -d_max, d_max)
            (((xs - mus) / sig * r_s + d_s) * w * g).sum().backward()
            assert (xs.grad - x.grad).abs().max() > 1e-3
        n = int(valid.sum())
        mu_run = (1 - mom) * mu_run + mom * mu.detach()
        var_run = (1 - mom) * var_run + mom * var.detach() * n / (n - 1)
    assert all(seen.values()), seen
    torch.testing.assert_close(brn.running_mean, mu_run, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(brn.running_var, var_run, rtol=1e-5, atol=1e-5)
    assert int(brn.num_batches_tracked) == 9
    brn.eval()  # eval: the running estimates, no r and d
    x = _x_channels(seed=50)
    y_eval = (x - mu_run) / torch.sqrt(var_run + eps) * w + b
    torch.testing.assert_close(brn(x, valid), y_eval, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("steps", [0, 8])  # within the warm-up, and with r and d free
def test_batch_renorm_training_output_depends_on_batch_companions(steps):
    brn = BatchRenorm(C, warmup=2, ramp=4)
    valid = _valid()
    for s in range(steps):
        brn(_x_channels(seed=s) * (1 + s % 3), valid)
    x = _x_channels(seed=20)
    a, b = copy.deepcopy(brn), copy.deepcopy(brn)
    assert (a(x, valid)[0] - b(_companions_changed(x), valid)[0]).abs().max() > 1e-3


def test_batch_renorm_pads_do_not_change_real_outputs_or_statistics():
    valid, x = _valid(), _x_channels()
    a, b = BatchRenorm(C, warmup=1, ramp=2), BatchRenorm(C, warmup=1, ramp=2)
    for s in range(4):
        x = _x_channels(seed=s) * (1 + s)
        torch.testing.assert_close(a(x, valid)[valid], b(_pads_garbage(x, valid), valid)[valid], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a.running_mean, b.running_mean)
    torch.testing.assert_close(a.running_var, b.running_var)


@pytest.mark.parametrize("steps", [1, 4, 9])  # within the warm-up, in the ramp, after it
@pytest.mark.parametrize("capture", [False, True])
def test_batch_renorm_batch_stats_mode_is_the_training_forward_without_state_change(steps, capture):
    brn = BatchRenorm(C, warmup=2, ramp=4)
    _randomise_affine(brn)
    valid = _valid()
    for s in range(steps):
        brn(_x_channels(seed=s) * (1 + s % 3) + s, valid)
    twin = copy.deepcopy(brn)  # its training forward is what batch-stats mode must reproduce
    x = _x_channels(seed=30) * 2
    y_train = twin(x, valid)
    state = {k: v.clone() for k, v in brn.state_dict().items()}
    brn.eval()
    brn.use_batch_stats = True
    brn.capture = capture
    torch.testing.assert_close(brn(x, valid), y_train, rtol=1e-6, atol=1e-6)
    for k, v in brn.state_dict().items():
        assert torch.equal(v, state[k]), k
    for ours, theirs in zip(brn.last_stats, twin.last_stats, strict=True):
        torch.testing.assert_close(ours, theirs)


def test_batch_renorm_has_no_groups_mode_and_is_no_batchnorm():
    brn = BatchRenorm(C)
    assert not isinstance(brn, BatchNorm)
    brn.eval()
    brn.use_batch_stats = True
    brn.groups = (2, torch.ones(B, T, dtype=torch.bool))
    with pytest.raises(NotImplementedError):
        brn(_x(), _valid())


# PowerNorm: an independent transcription of the authors' code ---------------------------------------
# sIncerass/powernorm, fairseq/modules/norms/mask_powernorm.py (MaskPowerNorm, PowerFunction,
# GroupScaling1D), in their layout: input (T, B, C), pad_mask (B, T) True at pads, the Function on
# (B, C, T, 1) = (N, C, H, W), buffers (1, C, 1, 1). Modern torch: saved_tensors.
class _AuthorsPowerFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_phi, eps, afwd, abkw, ema_gz, warmup_iters, current_iter, mask_x):
        ctx.eps, ctx.abkw = eps, abkw
        current_iter = current_iter.item()
        N, C_, H, W = x.size()
        x2 = (mask_x * mask_x).mean(dim=0)
        var = x2.reshape(1, C_, 1, 1)
        if current_iter <= warmup_iters:
            z = x / (var + eps).sqrt()
        else:
            z = x / (running_phi + eps).sqrt()
        ctx.save_for_backward(z, var, weight, ema_gz)
        if current_iter < warmup_iters:
            running_phi.copy_(
                running_phi * (current_iter - 1) / current_iter + var.mean(dim=0, keepdim=True) / current_iter
            )
        running_phi.copy_(afwd * running_phi + (1 - afwd) * var.mean(dim=0, keepdim=True))
        return weight.reshape(1, C_, 1, 1) * z + bias.reshape(1, C_, 1, 1)

    @staticmethod
    def backward(ctx, grad_output):
        N, C_, H, W = grad_output.size()
        z, var, weight, ema_gz = ctx.saved_tensors
        g = grad_output * weight.reshape(1, C_, 1, 1)
        approx_grad_g = g - (1 - ctx.abkw) * ema_gz * z
        ema_gz.add_((approx_grad_g * z).mean(dim=3, keepdim=True).mean(dim=2, keepdim=True).mean(dim=0, keepdim=True))
        gx = 1.0 / torch.sqrt(var + ctx.eps) * approx_grad_g
        gw = (grad_output * z).sum(dim=3).sum(dim=2).sum(dim=0)
        gb = grad_output.sum(dim=3).sum(dim=2).sum(dim=0)
        return gx, gw, gb, None, None, None, None, None, None, None, None


class _AuthorsMaskPowerNorm(nn.Module):
    def __init__(self, num_features, eps=1e-5, alpha_fwd=0.9, alpha_bkw=0.9, warmup_iters=10000, group_num=1):
        super().__init__()
        self.num_features, self.eps, self.afwd, self.abkw = num_features, eps, alpha_fwd, alpha_bkw
        self.warmup_iters, self.group_num = warmup_iters, group_num
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_phi", torch.ones(1, num_features, 1, 1))
        self.register_buffer("ema_gz", torch.zeros(1, num_features, 1, 1))
        self.register_buffer("iters", torch.zeros(1).type(torch.LongTensor))

    def group_scaling(self, input):  # GroupScaling1D, its own eps = 1e-5
        T_, B_, C_ = input.shape
        Cg = C_ // self.group_num
        gn_input = input.contiguous().reshape(T_, B_, self.group_num, Cg)
        moment2 = torch.repeat_interleave(torch.mean(gn_input * gn_input, dim=3, keepdim=True), repeats=Cg, dim=-1)
        return input / torch.sqrt(moment2.contiguous().reshape(T_, B_, C_) + 1e-5)

    def forward(self, input, pad_mask):
        input = self.group_scaling(input)
        bn_mask = (~pad_mask).transpose(0, 1)  # T x B
        mask_input = input[bn_mask, :].reshape(-1, self.num_features)
        input = input.permute(1, 2, 0).contiguous()
        input_shape = input.size()
        input = input.reshape(input.size(0), self.num_features, -1).unsqueeze(-1)
        if self.training:
            self.iters.copy_(self.iters + 1)
            output = _AuthorsPowerFunction.apply(input, self.weight, self.bias, self.running_phi, self.eps, self.afwd,
                                                 self.abkw, self.ema_gz, self.warmup_iters, self.iters, mask_input)  # fmt: skip
        else:
            C_ = input.size(1)
            output = input / (self.running_phi + self.eps).sqrt()
            output = self.weight.reshape(1, C_, 1, 1) * output + self.bias.reshape(1, C_, 1, 1)
        return output.reshape(input_shape).permute(2, 0, 1).contiguous()


def _power_pair(warmup=3, group_num=4):
    pn = PowerNorm(C, eps=1e-5, alpha_fwd=0.9, alpha_bkw=0.9, warmup=warmup, group_num=group_num)
    _randomise_affine(pn)
    ref = _AuthorsMaskPowerNorm(C, eps=1e-5, alpha_fwd=0.9, alpha_bkw=0.9, warmup_iters=warmup, group_num=group_num)
    with torch.no_grad():
        ref.weight.copy_(pn.weight)
        ref.bias.copy_(pn.bias)
    return pn, ref


@pytest.mark.parametrize("capture", [False, True])
@pytest.mark.parametrize("group_num", [1, 4])
def test_powernorm_matches_the_authors_code_across_the_warmup(capture, group_num):
    pn, ref = _power_pair(warmup=3, group_num=group_num)
    pn.capture = capture
    valid = _valid()
    for step in range(7):  # counter 1-2: running average + EMA; 3: batch x2, EMA; 4-7: running phi
        x0 = _x_channels(seed=step) * (1 + step % 3)
        x = x0.clone().requires_grad_()
        x_ref = x0.clone().requires_grad_()
        y = pn(x, valid)
        y_ref = ref(x_ref.transpose(0, 1), ~valid).transpose(0, 1)  # (T, B, C), pads True
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)  # every position, pads too
        torch.testing.assert_close(pn.running_phi, ref.running_phi.view(C), rtol=1e-5, atol=1e-6)
        assert int(pn.iters) == int(ref.iters) == step + 1
        g = torch.randn(B, T, C, generator=torch.Generator().manual_seed(100 + step))  # pads get some too
        pn.weight.grad = pn.bias.grad = ref.weight.grad = ref.bias.grad = None
        y.backward(g)
        y_ref.backward(g)
        torch.testing.assert_close(pn.ema_gz, ref.ema_gz.view(C), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(pn.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(pn.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-4)
    assert pn.ema_gz.abs().max() > 1e-3  # the approximated backward's statistic did move
    pn.eval(), ref.eval()
    x = _x_channels(seed=40)
    torch.testing.assert_close(pn(x, valid), ref(x.transpose(0, 1), ~valid).transpose(0, 1), rtol=1e-5, atol=1e-5)


def test_powernorm_training_forward_is_batch_independent_once_warm_but_not_during_warmup():
    valid = _valid()
    pn = PowerNorm(C, warmup=3, group_num=4)
    _randomise_affine(pn)
    x = _x_channels(seed=20)
    during = [copy.deepcopy(pn) for _ in range(2)]
    assert (during[0](x, valid)[0] - during[1](_companions_changed(x), valid)[0]).abs().max() > 1e-3
    for s in range(3):
        pn(_x_channels(seed=s), valid).sum().backward()
    warm = [copy.deepcopy(pn) for _ in range(2)]
    assert (warm[0](x, valid)[0] - warm[1](_companions_changed(x), valid)[0]).abs().max() < 1e-6


@pytest.mark.parametrize("steps", [0, 5])
def test_powernorm_pads_do_not_change_real_outputs(steps):
    valid = _valid()
    a = PowerNorm(C, warmup=3, group_num=4)
    for s in range(steps):
        a(_x_channels(seed=s), valid)
    b = copy.deepcopy(a)
    for s in range(4):  # through the warm-up (x2 over real tokens only) and after it
        x = _x_channels(seed=10 + s)
        torch.testing.assert_close(a(x, valid)[valid], b(_pads_garbage(x, valid), valid)[valid], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(a.running_phi, b.running_phi)


def test_powernorm_eval_uses_running_phi_and_changes_no_state():
    valid = _valid()
    pn = PowerNorm(C, warmup=2, group_num=4)
    _randomise_affine(pn)
    for s in range(4):
        pn(_x_channels(seed=s), valid).sum().backward()
    assert (pn.running_phi - 1).abs().max() > 1e-2  # it has moved off its initial value
    state = {k: v.clone() for k, v in pn.state_dict().items()}
    pn.eval()
    x = _x_channels(seed=9)
    xg = x.view(B, T, 4, C // 4)
    s = (xg / torch.sqrt((xg**2).mean(-1, keepdim=True) + 1e-5)).view(B, T, C)
    expected = s / torch.sqrt(state["running_phi"] + 1e-5) * pn.weight.detach() + pn.bias.detach()
    torch.testing.assert_close(pn(x, valid), expected, rtol=1e-5, atol=1e-5)
    for k, v in pn.state_dict().items():
        assert torch.equal(v, state[k]), k


@pytest.mark.parametrize("steps", [0, 2, 3, 5])  # next forward at counter 1, 3 (= warmup), 4 (first warm), 6
@pytest.mark.parametrize("capture", [False, True])
def test_powernorm_batch_stats_mode_is_the_training_forward_without_state_change(steps, capture):
    valid = _valid()
    pn = PowerNorm(C, warmup=3, group_num=4)
    _randomise_affine(pn)
    for s in range(steps):
        pn(_x_channels(seed=s) * (1 + s), valid).sum().backward()
    x = _x_channels(seed=31) * 3
    y_train = copy.deepcopy(pn)(x, valid)
    state = {k: v.clone() for k, v in pn.state_dict().items()}
    pn.eval()
    pn.use_batch_stats = True
    pn.capture = capture
    xg = x.clone().requires_grad_()
    y = pn(xg, valid)
    torch.testing.assert_close(y, y_train, rtol=1e-6, atol=1e-6)
    y.sum().backward()  # a backward in this mode must not touch ema_gz either
    for k, v in pn.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_powernorm_has_no_groups_mode_and_is_no_batchnorm():
    pn = PowerNorm(C)
    assert not isinstance(pn, BatchNorm)
    pn.groups = (2, torch.ones(B, T, dtype=torch.bool))
    with pytest.raises(NotImplementedError):
        pn(_x(), _valid())


# capture: (x, x_hat) with x_hat the normalised value before gain/bias ------------------------------
def _gn_x_hat(x, valid):
    return F.group_norm(x.reshape(-1, C), 4, eps=1e-5).view(B, T, C)


def _brn_x_hat(x, valid):  # a fresh layer's first training forward: BN over the real tokens
    real = x[valid]
    return (x - real.mean(0)) / torch.sqrt(real.var(0, correction=0) + 1e-5)


def _pn_x_hat(x, valid):  # a fresh layer's first training forward: group scaling, then batch x2
    xg = x.view(B, T, 4, C // 4)
    s = (xg / torch.sqrt((xg**2).mean(-1, keepdim=True) + 1e-5)).view(B, T, C)
    return s / torch.sqrt((s[valid] ** 2).mean(0) + 1e-5)


@pytest.mark.parametrize(
    "make, x_hat",
    [
        (lambda: GroupNorm(C, num_groups=4), _gn_x_hat),
        (lambda: BatchRenorm(C), _brn_x_hat),
        (lambda: PowerNorm(C, group_num=4), _pn_x_hat),
    ],
    ids=["groupnorm", "batch_renorm", "powernorm"],
)
def test_capture_yields_input_and_normalised_value_before_gain_and_bias(make, x_hat):
    norm = make()
    _randomise_affine(norm)
    norm.capture = True
    valid, x = _valid(), _x_channels()
    y = norm(x, valid)
    cx, ch = norm.captured
    assert torch.equal(cx, x)
    torch.testing.assert_close(ch, x_hat(x, valid), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y, ch * norm.weight.detach() + norm.bias.detach(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("make", [lambda: BatchRenorm(C, warmup=2, ramp=3), lambda: PowerNorm(C, warmup=2, group_num=4)],
                         ids=["batch_renorm", "powernorm"])  # fmt: skip
def test_state_is_updated_in_place_so_a_batch_stats_twin_sharing_it_stays_exact(make):
    # core.engine.metrics.batch_stats_twin: a deepcopy sharing every parameter and buffer tensor, fixed in
    # batch-statistics mode; these layers' batch-statistics forward reads their state.
    norm = make()
    _randomise_affine(norm)
    twin = copy.deepcopy(norm, {id(t): t for t in (*norm.parameters(), *norm.buffers())})
    twin.eval()
    twin.use_batch_stats = True
    valid, x = _valid(), _x_channels(seed=60)
    for s in range(6):
        norm(_x_channels(seed=s) * (1 + s % 3), valid).sum().backward()
        torch.testing.assert_close(twin(x, valid), copy.deepcopy(norm)(x, valid), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("key", list(NORM_SPECS))
def test_every_layer_keeps_the_contract_its_record_declares(key):
    """What the measurements set and read on a layer (core/settings/norm_specs.py's protocols) is there exactly
    as the norm's record says: a layer that normalises captures; a batch-statistics norm can be told
    to use the batch's statistics; only stacking norms take groups, only mean/variance norms report
    their statistics, only clipping norms their clipped share."""
    spec = NORM_SPECS[key]
    layer = make_norm(key, 16)
    assert isinstance(layer, norm_specs.NormLayer) == (spec.layer != "Identity")
    if spec.batch_in_training:
        assert isinstance(layer, norm_specs.BatchStatsLayer)
    assert isinstance(layer, norm_specs.MeanVarLayer) == spec.mean_var
    assert isinstance(layer, norm_specs.ClippingLayer) == spec.clips
    if spec.stacks:
        assert isinstance(layer, norm_specs.StackedLayer)
