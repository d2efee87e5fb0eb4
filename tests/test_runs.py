"""Training jobs that share their models: which job's checkpoints file holds a job's models."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from scorew2.runs import TrainingJob, shared_training

AUTHORS = ("sigmoid", 1e-5, 1e-2)


def job(exp: str, regs: tuple[str, ...], **changes: object) -> TrainingJob:
    base = TrainingJob(exp, "four_clusters", 10, "four_clusters", AUTHORS, regs, (0, 1, 2))
    return dataclasses.replace(base, **changes)


LOGLOG = job("loglog", ("none", "spectral_norm", "weight_clip"))


def test_a_batch_that_holds_a_jobs_models_trains_them() -> None:
    robust, dims = job("robustness", ("none",)), job("dimsweep", ("none",), dataset="x-d2")
    got = shared_training([LOGLOG, robust, dims])
    assert got == {LOGLOG.key: LOGLOG, robust.key: LOGLOG, ("dimsweep", "x-d2", 10): LOGLOG}


@pytest.mark.parametrize(
    "change",
    [
        dict(seeds=(0, 1)),  # other seeds
        dict(seeds=(1, 0, 2)),  # the same seeds in another order: other rows of its tables
        dict(schedule=("sigmoid", 1e-5, 0.1)),
        dict(schedule=("linear", 1e-5, 1e-2)),
        dict(T=50),
        dict(trains_on="four_clusters-shift0.1"),
    ],
)
def test_a_job_whose_models_differ_trains_them_itself(change: dict) -> None:
    other = job("robustness", ("none",), **change)
    assert shared_training([LOGLOG, other])[other.key] == other


def test_the_largest_batch_then_the_first_listed_holds_the_models() -> None:
    a, b = job("a", ("none",)), job("b", ("none", "spectral_norm"))
    c = job("c", ("spectral_norm", "none"))
    got = shared_training([a, b, c])
    assert got[a.key] == b and got[b.key] == b and got[c.key] == b
    assert shared_training([a, job("d", ("none",))])[("d", "four_clusters", 10)] == a
    clip = job("e", ("none", "weight_clip"))  # b's batch has no weight_clip models
    assert shared_training([b, clip])[clip.key] == clip


def test_no_job_points_at_a_job_that_points_elsewhere() -> None:
    """Over every batch of three regularisers' subsets: each holder holds its own models."""
    regs = ("none", "spectral_norm", "weight_clip")
    subsets = [s for k in (1, 2, 3) for s in itertools.combinations(regs, k)]
    jobs = [job(f"e{i}", s) for i, s in enumerate(subsets)]
    got = shared_training(jobs)
    for j in jobs:
        holder = got[j.key]
        assert got[holder.key] == holder and set(j.regularizers) <= set(holder.regularizers)
    assert {h.key for h in got.values()} == {("e6", "four_clusters", 10)}
