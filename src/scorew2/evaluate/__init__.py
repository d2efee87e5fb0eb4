"""Evaluation of a run group's checkpoints with the network.

A run group (``RunGroup``) is the S seeds of one (experiment, data set, regulariser, T) at the
checkpoints it evaluates, as one batched ScoreNet of K x S models (model k * S + s), with its
training set, schedule, prior and evaluation seed. One submodule per quantity, each evaluating
all the group's models at once: ``samples`` (q0), ``losses`` (J_DSM, J_SM, the DSM floor),
``lipschitz`` (L_s(t)); each job imports only its own, so a change to one reruns only the jobs
that use it. Exact W2 and the bound need no network: they are in ``scorew2.metrics``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from scorew2.checkpoints import Checkpoints, load_checkpoints
from scorew2.io import load_npz
from scorew2.model import ScoreNet
from scorew2.runs import GroupId, frame
from scorew2.schedule import Schedule, make_schedule

__all__ = ["EVAL_CHUNK", "RunGroup", "eps_of", "job_group", "load_group", "subset"]

#: Points per model per forward pass when evaluating many models at once: the (models,
#: points, hidden) activations stay in cache (benchmarks/README.md).
EVAL_CHUNK = 128


@dataclass(frozen=True)
class RunGroup:
    """What every evaluation step of a run group works on.

    Attributes
    ----------
    id : GroupId
        (experiment, data set, regulariser, T): the identity columns of its tables.
    checkpoints : Checkpoints
        Its models at the evaluated checkpoints.
    train : np.ndarray of shape (N, d)
        The training set p0.
    schedule : Schedule
    prior : {"data", "gaussian"}
        The sampler's start q_T: p_T itself, or N(0, I).
    seed : int
        The evaluation seed; every random draw has its own stream of it (``scorew2.streams``).
    """

    id: GroupId
    checkpoints: Checkpoints
    train: np.ndarray
    schedule: Schedule
    prior: str
    seed: int

    @property
    def model(self) -> ScoreNet:
        return self.checkpoints.model

    def frame(self, **columns: Any) -> pd.DataFrame:
        """A table with one row per model: identity columns, seed, epoch, ``columns``."""
        return frame(self.id, self.checkpoints.seeds, self.checkpoints.epochs, **columns)

    def step_frame(self, **columns: np.ndarray) -> pd.DataFrame:
        """A table with one row per (model, step), model-major: identity columns, seed, epoch,
        step, and ``columns``, each (M, T) (or (T,): the same for every model)."""
        M, T = self.model.n_models, self.schedule.T
        flat = {k: np.broadcast_to(v, (M, T)).reshape(-1) for k, v in columns.items()}
        ck = self.checkpoints
        return frame(
            self.id,
            np.repeat(ck.seeds, T),
            np.repeat(ck.epochs, T),
            step=np.tile(np.arange(T), M),
            **flat,
        )


def load_group(
    group: GroupId,
    checkpoints: str | os.PathLike[str],
    data: str | os.PathLike[str],
    run: Mapping[str, Any],
    seed: int,
) -> RunGroup:
    """Read a run group: its regulariser's models at the epochs ``run["checkpoints"]`` names
    ("all" or "final"), the training set, the schedule ``run["schedule"]`` and the prior."""
    ck = load_checkpoints(checkpoints, run["checkpoints"], group.regularizer)
    train = load_npz(data, required=("train",))["train"]
    schedule = make_schedule(**run["schedule"])
    return RunGroup(group, ck, train, schedule, run["prior"], int(seed))


def job_group(smk: Any) -> RunGroup:
    """The run group of a Snakemake evaluation job: its wildcards name the group, its inputs
    ``checkpoints`` and ``data`` and its params ``run`` and ``seed`` say what to read."""
    gid = GroupId.from_wildcards(smk.wildcards)
    return load_group(gid, smk.input.checkpoints, smk.input.data, smk.params.run, smk.params.seed)


def eps_of(
    model: ScoreNet, x: torch.Tensor, step: torch.Tensor, chunk: int = EVAL_CHUNK
) -> torch.Tensor:
    """eps_theta of every model at the shared points x (B, d) and steps (B,): (M, B, d)."""
    M = model.n_models
    out = []
    with torch.no_grad():
        for a in range(0, x.shape[0], chunk):
            xb = x[a : a + chunk].float().expand(M, -1, -1)
            tb = step[a : a + chunk].expand(M, -1)
            out.append(model(xb, tb))
    return torch.cat(out, dim=1)


def subset(train: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct training points drawn by ``rng``, in data order."""
    return train[np.sort(rng.choice(len(train), size=min(n, len(train)), replace=False))]
