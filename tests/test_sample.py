"""Tests of scorew2.sample: forward noising, priors and the ancestral sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scorew2.model import ScoreNet
from scorew2.sample import Samples, ancestral_sample, make_prior
from scorew2.schedule import Schedule, make_schedule

torch.set_num_threads(1)


def _gauss_eps(s: torch.Tensor, sched: Schedule):
    """Exact eps of p_i for data N(0, s_m^2 I): score -x / v_i, eps = -sqrt(1 - abar_i) score."""
    ab = torch.as_tensor(sched.alpha_bars)

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = ab[t].unsqueeze(-1)
        v = a * s.view(-1, 1, 1) ** 2 + 1 - a
        return torch.sqrt(1 - a) * x / v

    return eps


def _variance_recursion(s: float, sched: Schedule, final_noise: bool = True) -> float:
    """Var of the sampler's output for that eps, from x_T ~ N(0, 1): the update is linear,
    x <- x (1 - b_i / v_i) / sqrt(a_i) + sqrt(b_i) z, so V <- V (1 - b_i/v_i)^2 / a_i + b_i."""
    var = 1.0
    for i in range(sched.T - 1, -1, -1):
        v = sched.alpha_bars[i] * s * s + 1 - sched.alpha_bars[i]
        var = var * (1 - sched.betas[i] / v) ** 2 / sched.alphas[i]
        if i > 0 or final_noise:
            var += sched.betas[i]
    return var


def test_exact_gaussian_score_reproduces_the_data():
    sched = make_schedule("linear", 200, 1e-4, 0.05)
    s = torch.tensor([0.5, 0.2], dtype=torch.float64)
    n = 40_000
    x_t = make_prior(
        "gaussian",
        sched,
        torch.Generator().manual_seed(0),
        n_models=2,
        n=n,
        dim=2,
        dtype=torch.float64,
    )
    out = ancestral_sample(_gauss_eps(s, sched), sched, x_t, torch.Generator().manual_seed(1))
    assert isinstance(out, Samples) and out.all_finite() and out.x.shape == (2, n, 2)
    for m in range(2):
        v0 = _variance_recursion(float(s[m]), sched)
        # the discrete sampler lands close to the data law N(0, s^2 I) ...
        assert abs(v0 - s[m].item() ** 2) < 0.06 * s[m].item() ** 2  # T = 200 discretisation
        # ... and the samples have exactly the closed-form law N(0, v0 I), up to sampling error
        x = out.x[m].numpy()
        cov = np.cov(x.T)
        tol = 5 * np.sqrt(2 / n) * v0
        assert abs(cov[0, 0] - v0) < tol and abs(cov[1, 1] - v0) < tol, (cov, v0)
        assert abs(cov[0, 1]) < 5 * v0 / np.sqrt(n)
        assert np.abs(x.mean(0)).max() < 5 * np.sqrt(v0 / n)


def test_one_step_update_and_final_noise():
    sched = Schedule(np.array([0.04]))
    x_t = torch.randn(1, 100, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def zero(x, t):
        return torch.zeros_like(x)

    quiet = ancestral_sample(zero, sched, x_t, torch.Generator().manual_seed(5), final_noise=False)
    torch.testing.assert_close(quiet.x, x_t / np.sqrt(0.96))
    noisy = ancestral_sample(zero, sched, x_t, torch.Generator().manual_seed(5))
    z = torch.randn(100, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    torch.testing.assert_close(noisy.x, x_t / np.sqrt(0.96) + 0.2 * z)

    def const(x, t):
        return torch.ones_like(x)

    out = ancestral_sample(const, sched, x_t, torch.Generator(), final_noise=False)
    torch.testing.assert_close(out.x, (x_t - 0.04 / np.sqrt(0.04)) / np.sqrt(0.96))


def test_data_prior_is_the_data_noised_to_the_last_step():
    sched = make_schedule("sigmoid", 10, 1e-5, 1e-2)
    data = np.random.default_rng(0).normal(size=(500, 2))
    ab = sched.alpha_bars[-1]
    z = torch.randn(500, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x = np.sqrt(ab) * torch.as_tensor(data) + np.sqrt(1 - ab) * z
    prior = make_prior("data", sched, torch.Generator().manual_seed(3), n_models=3, data=data)
    assert prior.shape == (3, 500, 2) and prior.dtype == torch.float32
    torch.testing.assert_close(prior[2], x.float())
    with pytest.raises(ValueError, match="prior"):
        make_prior("uniform", sched, torch.Generator(), data=data)
    with pytest.raises(ValueError, match="data"):
        make_prior("data", sched, torch.Generator())
    with pytest.raises(ValueError, match="prior"):
        make_prior("p_T", sched, torch.Generator(), data=data)  # the config's names only


@pytest.mark.parametrize("reg", ["none", "spectral_norm"])
def test_scorenet_batch_sampling_equals_alone_and_restores_mode(reg):
    sched = make_schedule("sigmoid", 10, 1e-5, 1e-2)
    batch = ScoreNet(10, [1, 2, 3], reg).train()
    alone = ScoreNet(10, [2], reg).eval()
    buffers = {k: v.clone() for k, v in batch.named_buffers()}
    x_t = make_prior("gaussian", sched, torch.Generator().manual_seed(0), n_models=3, n=64, dim=2)
    out = ancestral_sample(batch, sched, x_t, torch.Generator().manual_seed(9), chunk_size=20)
    one = ancestral_sample(alone, sched, x_t[1:2], torch.Generator().manual_seed(9))
    torch.testing.assert_close(out.x[1:2], one.x, rtol=1e-5, atol=1e-6)
    assert batch.training and not alone.training
    for k, v in batch.named_buffers():
        assert torch.equal(v, buffers[k])
    assert out.x.dtype == torch.float32 and out.n_nonfinite.tolist() == [0, 0, 0]


def test_nonfinite_samples_are_reported_not_raised():
    sched = make_schedule("linear", 5, 1e-3, 1e-2)
    x_t = torch.linspace(-1, 1, 20).view(1, 10, 2)

    def bad(x, t):
        return torch.where(x[..., :1] > 0.5, torch.inf, 0.0).expand_as(x)

    out = ancestral_sample(bad, sched, x_t, torch.Generator().manual_seed(0))
    assert not out.all_finite()
    assert 0 < out.n_nonfinite.item() < 10
    assert torch.isfinite(out.x[out.finite]).all()
    assert not torch.isfinite(out.x[~out.finite]).all(dim=-1).any()


def test_sampler_bad_input():
    sched = make_schedule("linear", 5, 1e-3, 1e-2)
    net = ScoreNet(10, [1])
    with pytest.raises(ValueError, match="x_T"):
        ancestral_sample(net, sched, torch.zeros(4, 2), torch.Generator())
    with pytest.raises(ValueError, match="n_steps"):
        ancestral_sample(net, sched, torch.zeros(1, 4, 2), torch.Generator())
    with pytest.raises(ValueError, match="x: expected"):
        ancestral_sample(ScoreNet(5, [1]), sched, torch.zeros(2, 4, 2), torch.Generator())
    with pytest.raises(ValueError, match="chunk_size"):
        ancestral_sample(net, sched, torch.zeros(1, 4, 2), torch.Generator(), chunk_size=0)


def test_keep_path_records_the_state_at_each_step():
    sched = make_schedule("linear", 4, 1e-3, 0.2)
    x_T = torch.randn(2, 5, 2, generator=torch.Generator().manual_seed(0))

    def eps(x, t):
        return 0.5 * x

    out = ancestral_sample(eps, sched, x_T, torch.Generator().manual_seed(1), keep_path=True)
    plain = ancestral_sample(eps, sched, x_T, torch.Generator().manual_seed(1))
    assert torch.equal(out.x, plain.x) and plain.path is None
    assert out.path.shape == (4, 2, 5, 2)
    assert torch.equal(out.path[3], x_T)  # the model first sees x_T at step T - 1
    # one update from path[1] with the noise of step 1 would need z; check the deterministic part
    assert not torch.equal(out.path[0], out.path[1])
