"""Run identity: the names, orders and key columns that say which run a number belongs to.

A *run* is one model: (experiment, data set, regulariser, T, seed). A *run group* is the seeds
of one (experiment, data set, regulariser, T); its tables have one row per (seed, epoch) or
(seed, epoch, step), headed by the identity columns ``ID_COLUMNS``. A *training batch* holds
every regulariser's seeds of one (experiment, data set, T), regulariser-major
(``batch_layout``); a *training job* trains one batch, and a job whose models another job
trains already reads them from there (``shared_training``). Neither torch nor POT is imported
here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CHECKPOINT_KEYS",
    "DATASETS",
    "ID_COLUMNS",
    "KINDS",
    "PRIORS",
    "REGULARIZERS",
    "RUN_KEYS",
    "GroupId",
    "TrainingJob",
    "batch_layout",
    "experiment_kinds",
    "final_rows",
    "frame",
    "ordered",
    "shared_training",
]

#: Experiment kinds: what an experiment computes and which figures and claims it feeds.
KINDS = ("loglog", "tsweep")
#: Data sets, in the order figures show them.
DATASETS = ("four_clusters", "moons", "gaussian", "imbalanced_clusters", "swiss_roll")
#: Weight regularisers of the score network, in the order figures and batches use.
REGULARIZERS = ("none", "spectral_norm", "weight_clip")
#: Start of the sampler: q_T = p_T (the data noised to step T) or q_T = N(0, I).
PRIORS = ("data", "gaussian")

ID_COLUMNS = ("experiment", "dataset", "regularizer", "T")
RUN_KEYS = (*ID_COLUMNS, "seed")
CHECKPOINT_KEYS = (*RUN_KEYS, "epoch")


@dataclass(frozen=True)
class GroupId:
    """The identity of a run group: (experiment, data set, regulariser, T)."""

    experiment: str
    dataset: str
    regularizer: str
    T: int

    @classmethod
    def from_wildcards(cls, wildcards: Any) -> GroupId:
        """From a Snakemake job's wildcards ``exp``, ``dataset``, ``reg``, ``T``."""
        return cls(wildcards.exp, wildcards.dataset, wildcards.reg, int(wildcards.T))

    def columns(self) -> dict[str, Any]:
        """The identity columns, ``ID_COLUMNS`` -> value."""
        values = (self.experiment, self.dataset, self.regularizer, self.T)
        return dict(zip(ID_COLUMNS, values, strict=True))


def frame(group: GroupId, seeds: np.ndarray, epochs: np.ndarray, **columns: Any) -> pd.DataFrame:
    """A run group's table: its identity columns, then seed, epoch and ``columns``."""
    df = pd.DataFrame({"seed": seeds, "epoch": epochs, **columns})
    for i, (key, value) in enumerate(group.columns().items()):
        df.insert(i, key, value)
    return df


def final_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of each run's last evaluated checkpoint (the final model)."""
    last = df.groupby(list(RUN_KEYS))["epoch"].transform("max")
    return df[df["epoch"] == last]


def ordered(values: Any, order: Sequence[str]) -> list[str]:
    """The distinct ``values``: those in ``order`` first, in that order, then the rest sorted."""
    uniq = sorted(set(values))
    return [v for v in order if v in uniq] + [v for v in uniq if v not in order]


def batch_layout(regularizers: Sequence[str], seeds: Sequence[int]) -> tuple[list[str], list[int]]:
    """The models of one training batch: every regulariser's seeds, regulariser-major.

    Model k * S + s has regulariser ``regularizers[k]`` and seed ``seeds[s]``, so each
    regulariser's models are contiguous (as ``ScoreNet`` needs). Returns the per-model
    regulariser names and seeds.
    """
    regs = [r for r in regularizers for _ in seeds]
    return regs, [int(s) for s in seeds] * len(regularizers)


def experiment_kinds(experiments: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Experiment name -> kind, from a validated config's ``experiments``."""
    return {name: str(exp["kind"]) for name, exp in experiments.items()}


@dataclass(frozen=True)
class TrainingJob:
    """One training job, (experiment, data set, T), and what decides the models it trains.

    Attributes
    ----------
    experiment, dataset : str
    T : int
    trains_on : str
        The training set's identity: jobs with equal ``trains_on`` train on equal arrays.
    schedule : tuple
        The noise schedule (kind, beta_start, beta_end) at this T.
    regularizers : tuple of str
    seeds : tuple of int
        The batch's regularisers and the seeds each trains (``batch_layout``).
    """

    experiment: str
    dataset: str
    T: int
    trains_on: str
    schedule: tuple[str, float, float]
    regularizers: tuple[str, ...]
    seeds: tuple[int, ...]

    @property
    def key(self) -> tuple[str, str, int]:
        """(experiment, data set, T): the job's wildcards."""
        return (self.experiment, self.dataset, self.T)

    def covers(self, other: TrainingJob) -> bool:
        """Whether this job's batch holds every model of ``other``: the same seeds on the same
        training set under the same schedule and T, and each of its regularisers."""
        same = (self.trains_on, self.T, self.schedule, self.seeds)
        return same == (other.trains_on, other.T, other.schedule, other.seeds) and set(
            other.regularizers
        ) <= set(self.regularizers)


def shared_training(jobs: Sequence[TrainingJob]) -> dict[tuple[str, str, int], TrainingJob]:
    """For every training job, the job whose checkpoints file holds its models.

    Each model of a batch is trained as it would be alone (its own seeded streams; the
    training settings are the config's, the same for every job, and the clipping bound acts
    on weight_clip models only), so a job that another covers (``TrainingJob.covers``) need
    not run: its run groups read their regulariser's models from the covering job's file. Of
    the jobs that cover a job, the one with the most regularisers holds them, the first
    listed on a tie; it covers itself, so no job points at one that points elsewhere.

    Parameters
    ----------
    jobs : sequence of TrainingJob
        Every training job of the workflow, each once, in config order.

    Returns
    -------
    dict
        ``job.key`` -> the job that trains its models (``job`` itself when none covers it).
    """
    return {
        job.key: max((c for c in jobs if c.covers(job)), key=lambda c: len(set(c.regularizers)))
        for job in jobs
    }
