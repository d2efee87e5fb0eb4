"""Samples q0 of every model of a run group (the ``sample`` rule)."""

from __future__ import annotations

import numpy as np
import torch

from scorew2.evaluate import EVAL_CHUNK, RunGroup, subset
from scorew2.sample import ancestral_sample, make_prior
from scorew2.streams import numpy_rng, torch_generator

__all__ = ["sample_group"]


def sample_group(group: RunGroup, n_points: int) -> dict[str, np.ndarray]:
    """Samples q0 of every model, from q_T = p_T or from N(0, I).

    ``ref`` is a seeded subset of ``n_points`` training points (the p0 that W2 compares with),
    ``pT`` is ``ref`` noised to step T (one draw) and the sampler starts from p_T itself
    (prior "data") or from one N(0, I) draw ``xT`` (prior "gaussian"). Every model gets the
    same starting points and the same sampler noise (common random numbers), so differences
    between checkpoints are not evaluation noise.

    Raises
    ------
    FloatingPointError
        A model produced non-finite samples (its seed and epoch are named).
    """
    ck = group.checkpoints
    ref = subset(group.train, n_points, numpy_rng(group.seed, "reference"))
    M, seed = ck.model.n_models, group.seed
    pT = make_prior("data", group.schedule, torch_generator(seed, "p_T"), n_models=M, data=ref)
    if group.prior == "data":  # q_T = p_T: the sampler starts from those very points
        xT = pT
    else:
        gen = torch_generator(seed, "prior")
        xT = make_prior("gaussian", group.schedule, gen, n_models=M, data=ref)
    gen = torch_generator(seed, "sampler")
    out = ancestral_sample(ck.model, group.schedule, xT, gen, chunk_size=EVAL_CHUNK)
    bad = out.n_nonfinite > 0
    if bad.any():
        m = int(torch.nonzero(bad)[0])
        raise FloatingPointError(
            f"{int(bad.sum())} model(s) produced non-finite samples, first: seed "
            f"{ck.seeds[m]} at epoch {ck.epochs[m]}; W2 would be meaningless"
        )
    res = {"samples": out.x.numpy(), "seeds": ck.seeds, "epochs": ck.epochs, "ref": ref}
    if group.prior == "gaussian":
        res["pT"], res["xT"] = pT[0].numpy(), xT[0].numpy()
    return res
