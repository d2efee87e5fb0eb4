"""Claims with variants: the headline is the paper's variant; the criteria and medians."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scorew2.metrics import OFFSET_ESTIMATORS
from scorew2.tables import (
    OFFSET_FORMS,
    PAPER_OFFSET,
    _claim_offset,
    _headline,
    _median_interval,
    _offset_verdict,
)


def test_median_interval_brackets_the_median_within_the_seeds() -> None:
    rng = np.random.default_rng(0)
    v = np.array([1.0, 2.0, 100.0])
    med, lo, hi = _median_interval(v, rng)
    assert med == 2.0 and 1.0 <= lo <= med <= hi <= 100.0 and lo < hi
    assert _median_interval(np.full(3, 5.0), rng) == (5.0, 5.0, 5.0)


@pytest.mark.parametrize(
    ("values", "strict", "trend"),
    [
        ([5.0, 4.0, 3.0, 2.0], True, True),
        ([5.0, 9.0, 3.0, 1.0], False, True),  # the T = 50 bump of the committed run
        ([5.0, 4.0, 3.0, 6.0], False, False),  # ends above its start
        ([5.0, 5.0, 4.0, 3.0], False, True),  # a tie is not a strict decrease
    ],
)
def test_offset_criteria(values: list[float], strict: bool, trend: bool) -> None:
    Ts = np.array([10, 50, 100, 200])
    assert _offset_verdict(np.array(values), Ts, "strict") is strict
    assert _offset_verdict(np.array(values), Ts, "trend") is trend
    assert _offset_verdict(np.array([1.0]), Ts[:1], "trend") is False  # one T decides nothing


def test_headline_takes_the_paper_variant_and_lists_the_shorter_side() -> None:
    variants = [
        dict(variant=v, paper_variant=v == "b", criterion="c", evidence="e", verdict=verdict)
        for v, verdict in [("a", "holds"), ("b", "does not hold"), ("c", "does not hold")]
    ]
    head, *rows = _headline("x", "statement", variants)
    assert head["verdict"] == "does not hold" and head["variant"] == ""
    assert "b" in head["criterion"] and head["evidence"] == "1 of 3 variants hold; holds for: a"
    assert [r["paper_variant"] for r in rows] == ["", "yes", ""]


def _sweep(values: dict[int, list[float]]) -> pd.DataFrame:
    """A T sweep's final bound rows with every offset column set to ``values[T][seed]``."""
    rows = []
    for T, per_seed in values.items():
        for seed, v in enumerate(per_seed):
            row = dict(experiment="s", dataset="d", regularizer="none", T=T, seed=seed)
            row |= dict(epoch=10, w2_T=0.14, w2_floor=0.13)
            for col, _ in OFFSET_FORMS:
                row |= {col + sfx: v for sfx in OFFSET_ESTIMATORS}
            rows.append(row)
    return pd.DataFrame(rows)


def test_offset_claim_judges_medians_not_means() -> None:
    # one heavy seed at T = 100 lifts the mean above T = 50; the median still falls
    ts = _sweep({10: [9.0, 10.0, 11.0], 50: [5.0, 6.0, 7.0], 100: [1.0, 2.0, 1000.0]})
    head, *rows = _claim_offset(ts, np.random.default_rng(0))
    assert len(rows) == len(OFFSET_FORMS) * len(OFFSET_ESTIMATORS) * 2
    assert {r["verdict"] for r in rows} == {"holds"} and head["verdict"] == "holds"
    paper = [r for r in rows if r["paper_variant"] == "yes"]
    assert len(paper) == 1 and PAPER_OFFSET[2] in paper[0]["variant"]
    assert "median 2 (" in rows[0]["evidence"] and "mean 334.3" in rows[0]["evidence"]
