"""scorew2.optim.FusedAdamW: every step bit-identical to torch.optim.AdamW(fused=True), the
closed form of its first step, and its state round trip."""

from __future__ import annotations

import pytest
import torch

from scorew2.optim import FusedAdamW


def _pair(
    lr: float, wd: float
) -> tuple[torch.nn.Parameter, torch.nn.Parameter, FusedAdamW, torch.optim.Optimizer]:
    gen = torch.Generator().manual_seed(3)
    start = torch.randn(4, 37, generator=gen)
    ours, ref = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    return (
        ours,
        ref,
        FusedAdamW(ours, lr=lr, weight_decay=wd),
        torch.optim.AdamW([ref], lr=lr, weight_decay=wd, fused=True),
    )


@pytest.mark.parametrize(("lr", "wd"), [(1e-3, 0.01), (0.3, 0.0), (2e-2, 0.5)])
def test_every_step_is_bit_identical_to_torch_fused_adamw(lr: float, wd: float) -> None:
    """50 steps on gradients of mixed scales (tiny, huge, sign changes): the parameters and
    both moments equal torch's to the bit after every step."""
    ours, ref, opt, torch_opt = _pair(lr, wd)
    gen = torch.Generator().manual_seed(4)
    for k in range(50):
        g = torch.randn(4, 37, generator=gen) * 10.0 ** (k % 7 - 3)
        ours.grad, ref.grad = g.clone(), g.clone()
        opt.step()
        torch_opt.step()
        assert torch.equal(ours, ref), k
        st = torch_opt.state[ref]
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(opt.state[key], st[key]), (k, key)


def test_first_step_closed_form() -> None:
    """Step 1: m = (1 - b1) g, v = (1 - b2) g^2, bias-corrected to g and g^2, so
    theta_1 = theta_0 (1 - lr wd) - lr g / (|g| + eps)."""
    theta0 = torch.tensor([[0.5, -2.0, 1.0]], dtype=torch.float64)
    g = torch.tensor([[1e-3, 4.0, -0.25]], dtype=torch.float64)
    p = torch.nn.Parameter(theta0.clone())
    p.grad = g.clone()
    lr, wd, eps = 0.1, 0.2, 1e-8
    FusedAdamW(p, lr=lr, weight_decay=wd, eps=eps).step()
    expected = theta0 * (1 - lr * wd) - lr * g / (g.abs() + eps)
    torch.testing.assert_close(p.detach(), expected, rtol=1e-12, atol=1e-12)


def test_state_round_trip_continues_bit_identically() -> None:
    """Steps 1-3, the state saved and loaded into a fresh optimiser, steps 4-6: the same bits
    as six uninterrupted steps; a state of another shape or without a key is refused."""
    gen = torch.Generator().manual_seed(5)
    grads = [torch.randn(2, 5, generator=gen) for _ in range(6)]
    start = torch.randn(2, 5, generator=gen)
    a = torch.nn.Parameter(start.clone())
    opt_a = FusedAdamW(a, lr=1e-2)
    for g in grads:
        a.grad = g.clone()
        opt_a.step()
    b = torch.nn.Parameter(start.clone())
    opt_b = FusedAdamW(b, lr=1e-2)
    for g in grads[:3]:
        b.grad = g.clone()
        opt_b.step()
    saved = {k: v.clone() for k, v in opt_b.state_dict().items()}
    opt_c = FusedAdamW(b, lr=1e-2)
    opt_c.load_state_dict(saved)
    for g in grads[3:]:
        b.grad = g.clone()
        opt_c.step()
    assert torch.equal(a, b)
    assert float(opt_c.state["step"]) == 6.0
    with pytest.raises(ValueError, match=r"exp_avg.*shape"):
        opt_c.load_state_dict({**saved, "exp_avg": torch.zeros(3, 5)})
    with pytest.raises(ValueError, match="step"):
        opt_c.load_state_dict({k: v for k, v in saved.items() if k != "step"})
