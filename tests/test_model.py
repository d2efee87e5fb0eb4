"""Tests of scorew2.model: the batched gated MLP, its spectral norm, its hand-written backward."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from scorew2.model import REGULARIZERS, ScoreNet, select_state, split_state, stack_states
from scorew2.schedule import Schedule

torch.set_num_threads(1)
T = 10


def _inputs(m: int, b: int, seed: int = 0, d: int = 2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, b, d, generator=g)
    t = torch.randint(0, T, (m, b), generator=g)
    eps = torch.randn(m, b, d, generator=g)
    w = torch.rand(m, b, generator=g) + 0.1
    return x, t, eps, w


@pytest.mark.parametrize("reg", REGULARIZERS)
def test_forward_shape_and_dtype(reg):
    net = ScoreNet(T, [3, 4], reg)
    x, t, _, _ = _inputs(2, 17)
    out = net(x, t)
    assert out.shape == (2, 17, 2) and out.dtype == torch.float32
    assert all(v.shape[0] == 2 for v in net.state_dict().values())
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("reg", REGULARIZERS)
def test_model_in_batch_equals_model_alone(reg):
    batch = ScoreNet(T, [7, 11, 13], reg).eval()
    alone = ScoreNet(T, [11], reg).eval()
    # same parameters and buffers, exactly
    for key, val in alone.state_dict().items():
        assert torch.equal(batch.state_dict()[key][1:2], val), key
    x, t, _, _ = _inputs(3, 50)
    out_b = batch(x, t)
    out_a = alone(x[1:2], t[1:2])
    torch.testing.assert_close(out_b[1:2], out_a, rtol=1e-6, atol=1e-6)
    # the models differ from each other
    assert not torch.allclose(batch.flat[0], batch.flat[1])


def test_initialisation_distribution():
    net = ScoreNet(T, list(range(20)))
    p = net.params()
    for i, (fi, _fo) in enumerate(net.dims, start=1):
        bound = 1 / math.sqrt(fi)
        for name in (f"W{i}", f"c{i}"):
            v = p[name].detach()
            assert v.abs().max() <= bound
            # uniform on [-bound, bound]: variance bound^2 / 3
            assert abs(v.var().item() - bound**2 / 3) < 0.25 * bound**2 / 3
    gam = p["gamma"].detach()
    assert gam.min() >= 0 and gam.max() < 1 and abs(gam.mean().item() - 0.5) < 0.01
    if "pad" in p:
        assert torch.count_nonzero(p["pad"]) == 0
    xav = ScoreNet(T, list(range(20)), init="xavier").params()["W2"].detach()
    assert abs(xav.std().item() - math.sqrt(2 / 128)) < 0.02 * math.sqrt(2 / 128)


# ---------------------------------------------------------------- spectral norm vs torch
class _RefGated(nn.Module):
    """A one-model reference built from torch modules (nn.Linear, nn.Embedding)."""

    def __init__(self, sn: bool) -> None:
        super().__init__()
        lins = [nn.Linear(2, 64), nn.Linear(64, 64), nn.Linear(64, 64), nn.Linear(64, 2)]
        if sn:
            lins = [parametrizations.spectral_norm(lin) for lin in lins]
        self.lins = nn.ModuleList(lins)
        self.embs = nn.ModuleList([nn.Embedding(T, 64) for _ in range(3)])
        self.act = F.relu if sn else F.softplus

    def load_from(self, net: ScoreNet) -> None:
        p = net.params()
        with torch.no_grad():
            for i, lin in enumerate(self.lins, start=1):
                if hasattr(lin, "parametrizations"):
                    lin.parametrizations.weight.original.copy_(p[f"W{i}"][0])
                    lin.parametrizations.weight[0]._u.copy_(getattr(net, f"sn_u{i}")[0])
                    lin.parametrizations.weight[0]._v.copy_(getattr(net, f"sn_v{i}")[0])
                else:
                    lin.weight.copy_(p[f"W{i}"][0])
                lin.bias.copy_(p[f"c{i}"][0])
            for i, emb in enumerate(self.embs):
                emb.weight.copy_(p["gamma"][0, :, i])

    def forward(self, x, t):
        h = x
        for lin, emb in zip(self.lins[:3], self.embs, strict=True):
            h = self.act(lin(h) * emb(t))
        return self.lins[3](h)


@pytest.mark.parametrize("sn", [False, True])
def test_matches_torch_modules_train_and_eval(sn):
    net = ScoreNet(T, [5], "spectral_norm" if sn else "none")
    ref = _RefGated(sn)
    ref.load_from(net)
    x, t, _, _ = _inputs(1, 40)
    for mode in ("train", "train", "train", "eval", "eval"):
        net.train(mode == "train")
        ref.train(mode == "train")
        out = net(x, t)
        out_ref = ref(x[0], t[0])
        torch.testing.assert_close(out[0], out_ref, rtol=1e-5, atol=1e-6)
    if sn:
        for i, lin in enumerate(ref.lins, start=1):
            torch.testing.assert_close(
                getattr(net, f"sn_u{i}")[0], lin.parametrizations.weight[0]._u, rtol=1e-5, atol=1e-6
            )
            # the effective weight has spectral norm ~1 after the power iterations
            w = net.effective_weights(update=False)[i - 1][0].detach()
            assert abs(torch.linalg.matrix_norm(w, ord=2).item() - 1) < 0.05


def test_sn_init_matches_torch_power_method():
    """u, v after construction = 15 power iterations from normalised Gaussians (torch's init)."""
    net = ScoreNet(T, [9], "spectral_norm")
    w = net.params()["W2"][0].detach()
    u, v = net.sn_u2[0], net.sn_v2[0]
    # a fixed point of one more iteration, nearly: u ~ N(W v)
    torch.testing.assert_close(F.normalize(w @ v, dim=0), u, rtol=0, atol=5e-2)
    sigma = (u @ (w @ v)).item()
    assert sigma <= torch.linalg.matrix_norm(w, ord=2).item() + 1e-5


def test_eval_mode_does_not_update_sn_buffers():
    net = ScoreNet(T, [1, 2], "spectral_norm").eval()
    before = {k: v.clone() for k, v in net.named_buffers()}
    x, t, _, _ = _inputs(2, 8)
    net(x, t)
    for k, v in net.named_buffers():
        assert torch.equal(v, before[k])
    net.train()
    net(x, t)
    assert any(not torch.equal(v, before[k]) for k, v in net.named_buffers())


# ---------------------------------------------------------------- hand-written backward
@pytest.mark.parametrize("reg", REGULARIZERS)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_handwritten_gradient_equals_autograd(reg, sign):
    net = ScoreNet(T, [1, 2, 3], reg).train()
    ref = copy.deepcopy(net)
    x, t, eps, w = _inputs(3, 37, seed=4)  # 37: odd batch, like the last partial batch
    losses = net.dsm_loss_and_grad(x, t, eps, w, sign)
    out = ref(x, t)
    ref_losses = ((out - eps).square().sum(-1) * w).mean(1)
    (sign * ref_losses.sum()).backward()
    torch.testing.assert_close(losses, ref_losses.detach(), rtol=1e-6, atol=0)
    torch.testing.assert_close(net.flat.grad, ref.flat.grad, rtol=1e-5, atol=1e-7)
    assert ref.flat.grad.abs().max() > 1e-3
    for (k, v), (_, v_ref) in zip(net.named_buffers(), ref.named_buffers(), strict=True):
        torch.testing.assert_close(v, v_ref, rtol=1e-6, atol=1e-7, msg=k)


MIXED = ["none", "none", "spectral_norm", "spectral_norm", "weight_clip", "weight_clip"]
MIXED_SEEDS = [1, 2, 1, 2, 1, 2]


def _alone(reg: str, seeds: list[int]) -> ScoreNet:
    return ScoreNet(T, seeds, reg).train()


def test_mixed_regularizers_equal_each_model_alone():
    mixed = ScoreNet(T, MIXED_SEEDS, MIXED).train()
    assert mixed.segments == {
        "none": slice(0, 2),
        "spectral_norm": slice(2, 4),
        "weight_clip": slice(4, 6),
    }
    assert mixed.config()["regularizer"] == MIXED
    x, t, eps, w = _inputs(6, 41, seed=8)
    losses = mixed.dsm_loss_and_grad(x, t, eps, w, -1.0)
    for reg, s in mixed.segments.items():
        alone = _alone(reg, MIXED_SEEDS[s])
        assert torch.equal(alone.flat, mixed.flat[s])  # same initialisation
        ref = alone.dsm_loss_and_grad(x[s], t[s], eps[s], w[s], -1.0)
        torch.testing.assert_close(losses[s], ref, rtol=1e-6, atol=0)
        torch.testing.assert_close(mixed.flat.grad[s], alone.flat.grad, rtol=1e-5, atol=1e-7)
        if reg == "spectral_norm":  # the power iteration ran on these models' buffers
            for key, val in alone.named_buffers():
                torch.testing.assert_close(getattr(mixed, key), val, rtol=1e-6, atol=1e-7)
        with torch.no_grad():
            out = ScoreNet.from_state(alone.state_dict(), T, reg).eval()(x[s], t[s])
        mixed.eval()
        with torch.no_grad():
            torch.testing.assert_close(mixed(x, t)[s], out, rtol=1e-6, atol=1e-6)
        mixed.train()


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_mixed_handwritten_gradient_equals_autograd(sign):
    net = ScoreNet(T, MIXED_SEEDS, MIXED).train()
    ref = copy.deepcopy(net)
    x, t, eps, w = _inputs(6, 37, seed=5)
    losses = net.dsm_loss_and_grad(x, t, eps, w, sign)
    ref_losses = ((ref(x, t) - eps).square().sum(-1) * w).mean(1)
    (sign * ref_losses.sum()).backward()
    torch.testing.assert_close(losses, ref_losses.detach(), rtol=1e-6, atol=0)
    torch.testing.assert_close(net.flat.grad, ref.flat.grad, rtol=1e-5, atol=1e-7)


def test_mixed_weight_clipping_touches_only_its_models():
    net = ScoreNet(T, MIXED_SEEDS, MIXED)
    with torch.no_grad():
        net.flat.mul_(10)
    before = net.flat.detach().clone()
    net.clip_weights_(0.1)
    assert net.flat[4:].abs().max() <= 0.1
    assert torch.equal(net.flat[:4], before[:4]) and before[:4].abs().max() > 0.1


def test_mixed_regularizers_bad_input():
    with pytest.raises(ValueError, match="contiguous"):
        ScoreNet(T, [1, 2, 3], ["none", "weight_clip", "none"])
    with pytest.raises(ValueError, match="3 names for 2 models"):
        ScoreNet(T, [1, 2], ["none", "none", "none"])
    with pytest.raises(ValueError, match="regularizer"):
        ScoreNet(T, [1, 2], ["none", "dropout"])


def test_handwritten_gradient_after_updates_and_a_new_grad_tensor():
    """The kernel's cached views follow in-place updates of the weights and a new grad."""
    net = ScoreNet(T, [1, 2], "spectral_norm").train()
    ref = copy.deepcopy(net)
    x, t, eps, w = _inputs(2, 16, seed=2)
    for step in range(3):
        if step == 2:
            net.flat.grad = None  # a fresh gradient tensor
        net.dsm_loss_and_grad(x, t, eps, w)
        ref.flat.grad = None
        ((ref(x, t) - eps).square().sum(-1) * w).mean(1).sum().backward()
        torch.testing.assert_close(net.flat.grad, ref.flat.grad, rtol=1e-5, atol=1e-7)
        with torch.no_grad():  # the same in-place update of both
            net.flat.sub_(0.1 * net.flat.grad)
            ref.flat.sub_(0.1 * ref.flat.grad)


def test_weight_clipping_bounds_every_parameter():
    net = ScoreNet(T, [1, 2], "weight_clip")
    with torch.no_grad():
        net.flat.mul_(10)
    assert net.flat.abs().max() > 0.1
    net.clip_weights_(0.1)
    assert net.flat.abs().max() <= 0.1
    assert (net.flat.abs() == 0.1).any()
    with pytest.raises(ValueError, match="c"):
        net.clip_weights_(0.0)


# ---------------------------------------------------------------- states and score
def test_stack_select_split_round_trip():
    a = ScoreNet(T, [1, 2], "spectral_norm").state_dict()
    b = ScoreNet(T, [3, 4], "spectral_norm").state_dict()
    st = stack_states([a, b])
    assert st["flat"].shape[0] == 4 and st["sn_u1"].shape[0] == 4
    net = ScoreNet.from_state(st, T, "spectral_norm").eval()
    x, t, _, _ = _inputs(4, 9)
    out = net(x, t)
    single = ScoreNet.from_state(select_state(st, 2), T, "spectral_norm").eval()
    torch.testing.assert_close(out[2:3], single(x[2:3], t[2:3]), rtol=1e-6, atol=1e-6)
    parts = split_state(st)
    assert len(parts) == 4 and torch.equal(parts[3]["flat"], b["flat"][1:2])
    with pytest.raises(ValueError, match="index"):
        select_state(st, 4)
    with pytest.raises(ValueError, match="keys"):
        stack_states([a, ScoreNet(T, [1]).state_dict()])
    with pytest.raises(ValueError, match="state"):
        ScoreNet.from_state(st, T + 1, "spectral_norm")


def test_score_is_minus_eps_over_sigma():
    net = ScoreNet(T, [1]).eval()
    sched = Schedule(np.linspace(1e-4, 0.02, T))
    abar = np.cumprod(1 - np.linspace(1e-4, 0.02, T))
    x, t, _, _ = _inputs(1, 12)
    s = net.score(x, t, sched)
    expected = -net(x, t) / torch.tensor(np.sqrt(1 - abar), dtype=torch.float32)[t].unsqueeze(-1)
    torch.testing.assert_close(s, expected)
    with pytest.raises(ValueError, match="schedule"):
        net.score(x, t, Schedule(np.linspace(1e-4, 0.02, T + 1)))


# ---------------------------------------------------------------- bad input
def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="regularizer"):
        ScoreNet(T, [1], "dropout")
    with pytest.raises(ValueError, match="init"):
        ScoreNet(T, [1], init="he")
    with pytest.raises(ValueError, match="n_steps"):
        ScoreNet(0, [1])
    with pytest.raises(ValueError, match="seeds"):
        ScoreNet(T, [])
    net = ScoreNet(T, [1, 2])
    x, t, _, _ = _inputs(2, 5)
    with pytest.raises(ValueError, match="x: expected"):
        net(x[0], t)
    with pytest.raises(ValueError, match="x: expected"):
        net(x[:1], t[:1])
    with pytest.raises(ValueError, match="x: expected"):
        net(torch.zeros(2, 5, 3), t)
    with pytest.raises(ValueError, match="t: step out of range"):
        net(x, t + T)
    with pytest.raises(ValueError, match="t: step out of range"):
        net(x, t - T)
    with pytest.raises(ValueError, match="t: expected an integer"):
        net(x, t.float())
    with pytest.raises(ValueError, match="t: expected shape"):
        net(x, t[:, :3])
