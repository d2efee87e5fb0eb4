"""Schedule: the betas, and the three formulas every module takes from it (forward noising,
eps -> score, the DSM weight) against their closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scorew2.schedule import Schedule, _per_step, make_schedule

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


def test_sigmoid_schedule_closed_form() -> None:
    # b_i = start + (end - start) / (1 + exp(-x_i)), x = linspace(-6, 6, T): at T = 5 the
    # points -6, -3, 0, 3, 6 (the middle beta halfway between start and end)
    start, end = 1e-4, 0.3
    x = [-6.0, -3.0, 0.0, 3.0, 6.0]
    want = [start + (end - start) / (1.0 + math.exp(-v)) for v in x]
    got = make_schedule("sigmoid", 5, start, end).betas
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
    assert got[2] == pytest.approx((start + end) / 2, rel=1e-14)


def test_schedule_betas_are_a_float64_array() -> None:
    s = Schedule([0.25, 0.5])  # a list in, a float64 array out
    assert isinstance(s.betas, np.ndarray) and s.betas.dtype == np.float64
    assert Schedule(np.array([0.25, 0.5], dtype=np.float32)).betas.dtype == np.float64
    assert make_schedule("linear", 3, 0.1, 0.1).betas.tolist() == [0.1, 0.1, 0.1]  # end = start


def test_per_step_follows_the_device_and_dtype_of_its_like() -> None:
    like = torch.empty(3, 2, device="meta", dtype=torch.float32)
    out = _per_step(np.array([0.5, 0.25]), 1, like)
    assert out.device.type == "meta" and out.dtype == torch.float32
    idx = _per_step(np.array([0.5, 0.25]), torch.tensor([1, 0, 1]), torch.empty(3, 2))
    assert idx.shape == (3, 1) and idx[:, 0].tolist() == [0.25, 0.5, 0.25]


@pytest.mark.parametrize(
    ("betas", "match"),
    [
        (np.full((2, 2), 0.1), r"^betas: expected a non-empty 1-D array, got shape \(2, 2\)$"),
        (np.array([]), r"^betas: expected a non-empty 1-D array, got shape \(0,\)$"),
        (np.array([0.0, 0.5]), r"^betas: every beta must lie in the open interval \(0, 1\)$"),
        (np.array([np.nan, 0.5]), r"^betas: every beta must lie in the open interval"),
        (np.array([0.5, 1.0]), r"^betas: every beta must lie in the open interval"),
    ],
)
def test_bad_betas_are_refused_with_their_message(betas: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Schedule(betas)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("cosine", 5, 0.1, 0.2), r"^unknown schedule 'cosine'; allowed: linear, quadratic"),
        (("linear", 0, 0.1, 0.2), r"^T: expected an integer >= 1, got 0$"),
        (("linear", True, 0.1, 0.2), r"^T: expected an integer >= 1, got True$"),
        (("linear", 2.5, 0.1, 0.2), r"^T: expected an integer >= 1, got 2.5$"),
        (("linear", 5, 0.0, 0.2), r"^beta_start and beta_end must lie in \(0, 1\), got 0.0, 0.2$"),
        (("linear", 5, 1.0, 0.2), r"^beta_start and beta_end must lie in \(0, 1\)"),
        (("linear", 5, 1.5, 0.5), r"^beta_start and beta_end must lie in \(0, 1\)"),
        (("linear", 5, 0.1, 0.0), r"^beta_start and beta_end must lie in \(0, 1\)"),
        (("linear", 5, 0.1, 1.0), r"^beta_start and beta_end must lie in \(0, 1\)"),
        (("linear", 5, 0.1, 1.5), r"^beta_start and beta_end must lie in \(0, 1\)"),
        (("linear", 5, 0.2, 0.1), r"^beta_end \(0.1\) is below beta_start \(0.2\)$"),
    ],
)
def test_bad_schedule_arguments_are_refused_with_their_message(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_schedule(*args)
