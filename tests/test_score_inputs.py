"""Refusals of scorew2.score name the argument exactly, results keep the dtype asked for, and
what should not carry gradients does not (tests written against surviving mutants)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from scorew2.schedule import make_schedule
from scorew2.score import (
    dsm_floor,
    dsm_terms,
    empirical_score,
    empirical_score_jacobian_eigs,
    exact_scores,
    noised_points,
    scores_and_floor,
    sm_terms,
)

torch.set_num_threads(1)

SCHED = make_schedule("linear", 3, 1e-3, 0.2)
DATA = np.array([[0.0, 0.1], [0.5, -0.2], [-0.4, 0.3], [0.2, 0.2]])
XT = np.random.default_rng(0).standard_normal((3, 5, 2))
X = XT[0]
BAD = "not numbers"
NAN3 = np.full((3, 5, 2), np.nan)


def _refused(name: str, call, *args, **kwargs) -> None:
    """``call`` raises a ValueError whose message starts with ``name:``."""
    with pytest.raises(ValueError, match=rf"^{re.escape(name)}: "):
        call(*args, **kwargs)


@pytest.mark.parametrize(
    ("name", "call", "args"),
    [
        ("eps_pred", dsm_terms, (BAD, XT, SCHED)),
        ("eps", dsm_terms, (XT, BAD, SCHED)),
        ("eps_pred", dsm_terms, (XT[:2], XT, SCHED)),
        ("eps", dsm_terms, (XT, XT[:2], SCHED)),
        ("eps_pred", sm_terms, (BAD, XT, SCHED)),
        ("true_score", sm_terms, (XT, BAD, SCHED)),
        ("eps_pred", sm_terms, (XT[:2], XT, SCHED)),
        ("true_score", sm_terms, (XT, XT[:2], SCHED)),
        ("schedule", dsm_terms, (XT, XT, BAD)),
        ("xt", exact_scores, (BAD, DATA, SCHED)),
        ("xt", exact_scores, (XT[:2], DATA, SCHED)),
        ("xt", exact_scores, (NAN3, DATA, SCHED)),
        ("xt", exact_scores, (XT[..., :1], DATA, SCHED)),
        ("data", exact_scores, (XT, BAD, SCHED)),
        ("data", exact_scores, (XT, DATA[0], SCHED)),
        ("data", exact_scores, (XT, np.zeros((0, 2)), SCHED)),
        ("data", exact_scores, (XT, np.full((4, 2), np.inf), SCHED)),
        ("alpha_bars", exact_scores, (XT, DATA, BAD)),
        ("alpha_bars", exact_scores, (XT, DATA, np.ones((3, 1)) * 0.5)),
        ("alpha_bars", exact_scores, (XT, DATA, np.array([0.0, 0.5, 0.9]))),
        ("alpha_bars", exact_scores, (XT, DATA, np.array([np.nan, 0.5, 0.9]))),
        ("x", empirical_score, (BAD, DATA, 0.5)),
        ("x", empirical_score, (np.zeros((3, 3)), DATA, 0.5)),
        ("x", empirical_score, (np.full((3, 2), np.nan), DATA, 0.5)),
        ("x", empirical_score_jacobian_eigs, (np.zeros((3, 3)), DATA, 0.5)),
        ("alpha_bar", empirical_score, (X, DATA, BAD)),
        ("alpha_bar", empirical_score, (X, DATA, 1.5)),
        ("alpha_bar", empirical_score, (X, DATA, [0.5, 0.6])),
        ("alpha_bar", empirical_score_jacobian_eigs, (X, DATA, 0.0)),
        ("data", empirical_score_jacobian_eigs, (X, BAD, 0.5)),
        ("xt", dsm_floor, (XT[:2], DATA, SCHED)),
        ("xt", scores_and_floor, (NAN3, DATA, SCHED)),
        ("data", noised_points, (BAD, SCHED, 2, torch.Generator())),
        ("n_draws", noised_points, (DATA, SCHED, 0, torch.Generator())),
        ("n_draws", noised_points, (DATA, SCHED, True, torch.Generator())),
        ("n_draws", noised_points, (DATA, SCHED, 1.5, torch.Generator())),
    ],
)
def test_each_refusal_names_its_argument(name, call, args) -> None:
    _refused(name, call, *args)


def test_schedule_as_an_array_of_alpha_bars_is_read() -> None:
    """A schedule given as its betas (an array) works like the Schedule itself."""
    ep = torch.as_tensor(XT) * 0.3
    assert torch.equal(dsm_terms(ep, XT, SCHED.betas), dsm_terms(ep, XT, SCHED))
    assert torch.equal(sm_terms(ep, XT, list(SCHED.betas)), sm_terms(ep, XT, SCHED))


def test_float32_inputs_are_computed_in_float64() -> None:
    """Losses and floors are float64 whatever the input precision: float32 inputs give the
    same bytes as the same values given in float64."""
    ep32, e32 = (
        torch.as_tensor(XT * 0.3, dtype=torch.float32),
        torch.as_tensor(XT, dtype=torch.float32),
    )
    ep64, e64 = ep32.double(), e32.double()
    for f in (dsm_terms, sm_terms):
        out = f(ep32, e32, SCHED)
        assert out.dtype == torch.float64 and torch.equal(out, f(ep64, e64, SCHED))
    xt32, d32 = torch.as_tensor(XT, dtype=torch.float32), torch.as_tensor(DATA, dtype=torch.float32)
    for f in (dsm_floor, lambda *a: scores_and_floor(*a)[1]):
        out = f(xt32, d32, SCHED)
        assert out.dtype == torch.float64 and torch.equal(
            out, f(xt32.double(), d32.double(), SCHED)
        )
    eig = empirical_score_jacobian_eigs(X.astype(np.float32), torch.as_tensor(DATA).float(), 0.5)
    ref = empirical_score_jacobian_eigs(
        X.astype(np.float32).astype(np.float64), DATA.astype(np.float32).astype(np.float64), 0.5
    )
    assert eig.dtype == torch.float64 and torch.equal(eig, ref)
    pts = noised_points(torch.as_tensor(DATA).float(), SCHED, 2, torch.Generator().manual_seed(1))
    assert pts.xt.dtype == torch.float64


def test_the_dtype_option_is_kept() -> None:
    """exact_scores and empirical_score return the dtype asked for, also from numpy input."""
    for dtype in (torch.float32, torch.float64):
        assert exact_scores(XT, DATA, SCHED, dtype=dtype).dtype == dtype
        assert empirical_score(X, DATA, 0.5, dtype=dtype).dtype == dtype
    ref = exact_scores(XT, DATA, SCHED)
    assert torch.allclose(
        exact_scores(XT, DATA, SCHED, dtype=torch.float32).double(), ref, rtol=1e-5, atol=1e-6
    )


def test_gradients_flow_only_where_documented() -> None:
    """exact_scores and empirical_score are differentiable in the points; the losses and the
    floor detach their inputs."""
    xt = torch.as_tensor(XT).requires_grad_(True)
    assert exact_scores(xt, DATA, SCHED).requires_grad
    assert empirical_score(xt[0], DATA, 0.5).requires_grad
    assert not dsm_floor(xt, DATA, SCHED).requires_grad
    assert not scores_and_floor(xt, DATA, SCHED)[0].requires_grad
    assert not dsm_terms(xt, XT, SCHED).requires_grad
    assert not sm_terms(xt, XT, SCHED).requires_grad
    assert not empirical_score_jacobian_eigs(xt[0], DATA, 0.5).requires_grad


def test_jacobian_eigs_of_float32_points() -> None:
    """Points given as a float32 tensor are read in float64 (the posterior is float64)."""
    x32 = torch.as_tensor(X, dtype=torch.float32)
    eig = empirical_score_jacobian_eigs(x32, DATA, 0.5)
    assert torch.equal(eig, empirical_score_jacobian_eigs(x32.double(), DATA, 0.5))


def test_jacobian_eigs_in_three_dimensions_and_far_from_the_origin() -> None:
    """The top eigenvalue (not another one) in d = 3, and data far from the origin give the
    same values as centred data (the covariance is shift-invariant; centring keeps it exact)."""
    rng = np.random.default_rng(2)
    data = rng.standard_normal((30, 3)) * np.array([1.0, 0.3, 0.1])
    x = rng.standard_normal((6, 3))
    abar = 0.7
    eig = empirical_score_jacobian_eigs(x, data, abar)
    J = torch.autograd.functional.jacobian(
        lambda y: empirical_score(y[None], data, abar)[0], torch.as_tensor(x[0])
    )
    assert torch.allclose(eig[0], torch.linalg.eigvalsh(0.5 * (J + J.T))[-1], rtol=1e-9, atol=1e-9)
    shift = np.array([3e4, -5e4, 1e4])
    moved = empirical_score_jacobian_eigs(x + np.sqrt(abar) * shift, data + shift, abar)
    assert torch.allclose(moved, eig, rtol=1e-6, atol=1e-6)
