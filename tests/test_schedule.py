"""Schedule: the betas, and the three formulas every module takes from it (forward noising,
eps -> score, the DSM weight) against their closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scorew2.schedule import Schedule, make_schedule

SCHED = make_schedule("sigmoid", 7, 1e-4, 0.3)


def test_noise_is_the_forward_process_at_each_points_step() -> None:
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 5, 2, generator=gen, dtype=torch.float64)
    eps = torch.randn(3, 5, 2, generator=gen, dtype=torch.float64)
    t = torch.randint(0, SCHED.T, (3, 5), generator=gen)
    ab = torch.as_tensor(SCHED.alpha_bars)[t].unsqueeze(-1)
    expected = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    assert torch.equal(SCHED.noise(x0, eps, t), expected)  # the trainer's formula, bit for bit
    one = SCHED.noise(x0, eps, 4)  # one step for every point
    a = SCHED.alpha_bars[4]
    torch.testing.assert_close(one, np.sqrt(a) * x0 + np.sqrt(1 - a) * eps, rtol=0, atol=1e-15)
    assert SCHED.noise(x0.float(), eps.float(), t).dtype == torch.float32


def test_noised_gaussian_has_the_marginal_variance() -> None:
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(200_000, 1, generator=gen, dtype=torch.float64) * 0.5
    eps = torch.randn(200_000, 1, generator=gen, dtype=torch.float64)
    a = SCHED.alpha_bars[-1]
    var = SCHED.noise(x0, eps, SCHED.T - 1).var().item()
    assert var == pytest.approx(a * 0.25 + (1 - a), rel=0.01)


def test_eps_to_score_and_dsm_weight() -> None:
    eps = torch.randn(2, 4, 2, dtype=torch.float64)
    t = torch.tensor([[0, 1, 5, 6], [6, 6, 0, 3]])
    sd = torch.as_tensor(np.sqrt(1 - SCHED.alpha_bars))[t].unsqueeze(-1)
    torch.testing.assert_close(SCHED.eps_to_score(eps, t), -eps / sd, rtol=1e-15, atol=0)
    # the exact score of N(0, I) noised: eps_theta(x) = sqrt(1 - abar) x gives s = -x
    x = torch.randn(10, 2, dtype=torch.float64)
    s = SCHED.eps_to_score(float(np.sqrt(1 - SCHED.alpha_bars[2])) * x, 2)
    torch.testing.assert_close(s, -x, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(SCHED.dsm_weight, SCHED.betas / (1 - np.cumprod(1 - SCHED.betas)))
    np.testing.assert_allclose(SCHED.inv_noise_std**-2, 1 - SCHED.alpha_bars)


def test_schedule_kinds_and_bad_input() -> None:
    lin = make_schedule("linear", 5, 0.1, 0.5)
    np.testing.assert_allclose(lin.betas, [0.1, 0.2, 0.3, 0.4, 0.5])
    quad = make_schedule("quadratic", 3, 0.04, 0.16)
    np.testing.assert_allclose(quad.betas, [0.04, 0.09, 0.16])
    assert make_schedule("sigmoid", 1, 1e-5, 0.02).betas.tolist() == [0.02]
    with pytest.raises(ValueError, match="schedule"):
        make_schedule("cosine", 5, 0.1, 0.2)
    with pytest.raises(ValueError, match="below beta_start"):
        make_schedule("linear", 5, 0.2, 0.1)
    with pytest.raises(ValueError, match="open interval"):
        Schedule(np.array([0.5, 1.0]))
