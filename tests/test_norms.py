"""Our norm layers against PyTorch's own: same outputs, gradients and running statistics."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.norms import BatchNorm, LayerNorm, RMSNorm, make_norm

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
