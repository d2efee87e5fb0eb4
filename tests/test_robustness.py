"""Theorem 3's table (scorew2.robustness) on translates, where every W2 has a closed form,
and its claim row (scorew2.tables)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scorew2.robustness import Run, seed_pairs, theorem3_table
from scorew2.runs import GroupId
from scorew2.tables import ClaimSettings, claims_table, theorem3_summary

GROUP = GroupId("rob", "four_clusters", "none", 10)
X = np.random.default_rng(0).normal(size=(40, 2))
SEEDS = (0, 1, 2)


def _run(shift: np.ndarray, offsets: dict[int, np.ndarray], log_bound: float, cert: float) -> Run:
    """A run group whose reference set is X + shift and whose seed s samples X + shift +
    offsets[s]: the W2 between two translates of one set is the distance of the translations.
    """
    samples = {
        "samples": np.stack([X + shift + offsets[s] for s in SEEDS]),
        "seeds": np.array(SEEDS),
        "epochs": np.full(3, 100),
        "ref": X + shift,
    }
    bound = pd.DataFrame(
        dict(
            seed=SEEDS,
            epoch=100,
            w2=[float(np.linalg.norm(offsets[s])) for s in SEEDS],
            log_bound=log_bound,
            log_bound_cert=cert,
        )
    )
    return Run.final(samples, bound)


OFF = {s: np.array([0.1 * (s + 1), 0.0]) for s in SEEDS}
OFF_B = {s: np.array([0.0, 0.05 * (s + 1)]) for s in SEEDS}
U = np.array([0.3, 0.4])  # the perturbation moves every point by (0.3, 0.4): W2(p0, p0~) = 0.5


def _table(log_bound_b: float = np.log(2.0), cert_b: float = np.nan) -> pd.DataFrame:
    base = _run(np.zeros(2), OFF, np.log(1.0), np.log(3.0))
    other = _run(U, OFF_B, log_bound_b, cert_b)
    return theorem3_table(GROUP, base, [("mass", 0.2, other), ("shift", 0.5, other)])


def test_seed_pairs_take_the_next_seed() -> None:
    assert seed_pairs([2, 0, 1]) == [(0, 1), (1, 2), (2, 0)]
    assert seed_pairs([5]) == [(5, 5)]


def test_both_sides_match_the_translates_closed_forms() -> None:
    df = _table()
    assert list(df["family"].unique()) == ["none", "shift", "mass"]  # PERTURBATIONS order
    assert list(df.columns[:6]) == ["experiment", "dataset", "regularizer", "T", "seed", "epoch"]
    base = df[df["family"] == "none"]
    assert (base["delta"] == 0).all() and (base["w2_p"] == 0).all()
    for r in base.itertuples():
        assert r.w2_q == pytest.approx(np.linalg.norm(OFF[r.seed] - OFF[r.seed_b]), rel=1e-9)
    pert = df[df["family"] == "shift"]
    assert pert["w2_p"].to_numpy() == pytest.approx(0.5, rel=1e-9)
    for r in pert.itertuples():
        expected = np.linalg.norm(OFF[r.seed] - U - OFF_B[r.seed_b])
        assert r.w2_q == pytest.approx(expected, rel=1e-9)
        assert r.rhs == pytest.approx(0.5 + 1.0 + 2.0)
        assert r.w2_b == pytest.approx(np.linalg.norm(OFF_B[r.seed_b]))
    assert df["holds"].all()
    # the measured triangle always holds: W2 is a metric on empirical laws of equal size
    assert (df["w2_q"] <= df["rhs_measured"] * (1 + 1e-12)).all()


def test_an_uncertified_run_leaves_the_certified_side_open() -> None:
    df = _table()
    pert = df[df["family"] != "none"]
    assert pert["rhs_cert"].isna().all() and pert["holds_cert"].all()
    base = df[df["family"] == "none"]
    assert base["rhs_cert"].to_numpy() == pytest.approx(6.0)  # 0 + 3 + 3


def test_a_bound_below_the_models_distance_is_a_violation() -> None:
    """Bounds of 1e-3 (not true bounds: bookkeeping only) against data 1.5 apart."""
    small = np.log(1e-3)
    base = _run(np.zeros(2), OFF, small, small)
    df = theorem3_table(GROUP, base, [("shift", 2.0, _run(3 * U, OFF_B, small, small))])
    pert = df[df["family"] == "shift"]
    pairs = zip(pert["seed"], pert["seed_b"], strict=True)
    dist = [np.linalg.norm(OFF[a] - 3 * U - OFF_B[b]) for a, b in pairs]
    expected = np.array(dist) <= 1.5 + 2e-3
    assert list(pert["holds"]) == list(expected) == [False, False, True]
    assert list(pert["holds_cert"]) == list(expected)


def _claims(robust: pd.DataFrame) -> pd.DataFrame:
    bounds = pd.DataFrame(
        dict(experiment="rob", dataset="four_clusters", regularizer="none", T=10, seed=SEEDS,
             epoch=100, w2=0.1, jdsm=2.0, jsm=1.0, gap_se=0.1, dsm_floor=1.0, log_bound=1.0,
             violation=False, certified=False, violation_cert=False)
    )  # fmt: skip
    lips = pd.DataFrame(columns=["experiment", "seed", "epoch", "step", "L_s"])
    settings = ClaimSettings(max_epochs=1, k_sigma=4.0, w2_points=40, seed=0)
    table = claims_table(bounds, lips, {"rob": "robustness"}, settings, robust=robust)
    return table[table["claim"].str.startswith("theorem3_holds")]


def test_the_claim_counts_pairs_and_names_the_seed_that_decides() -> None:
    ok = _table()
    rows = _claims(ok)
    assert list(rows["claim"]) == ["theorem3_holds[rob]"] * 3
    head, est, cert = rows.iloc[0], rows.iloc[1], rows.iloc[2]
    assert head["variant"] == "" and head["evidence"] == est["evidence"]
    assert "certified" in cert["variant"]
    assert est["verdict"] == "holds" and "0 of 9 model pairs above it" in est["evidence"]
    assert cert["verdict"] == "holds" and "0 of 3 model pairs above it" in cert["evidence"]
    assert est["seed_check"] == "stable (each of 3 seeds left out)"
    # one pair above its bound: the verdict flips when a seed of that pair is left out
    bad = ok.copy()
    hit = bad.index[(bad["family"] == "shift") & (bad["seed"] == 0)]
    bad.loc[hit, ["rhs", "holds"]] = [1e-6, False]
    est = _claims(bad).iloc[1]
    assert est["verdict"] == "does not hold" and "1 of 9 model pairs above it" in est["evidence"]
    assert est["seed_check"] == "flips without seed 0, 1"


def test_without_robustness_runs_the_claim_is_not_evaluated() -> None:
    bounds = pd.DataFrame(
        dict(experiment="x", dataset="d", regularizer="none", T=10, seed=[0], epoch=1, w2=0.1,
             jdsm=2.0, jsm=1.0, gap_se=0.1, dsm_floor=1.0, log_bound=1.0, violation=False,
             certified=False, violation_cert=False)
    )  # fmt: skip
    lips = pd.DataFrame(columns=["experiment", "seed", "epoch", "step", "L_s"])
    table = claims_table(bounds, lips, {}, ClaimSettings(1, 4.0, 40, 0))
    row = table[table["claim"] == "theorem3_holds"].iloc[0]
    assert row["verdict"] == "not evaluated" and row["evidence"] == "no robustness runs"


def test_the_summary_has_one_row_per_size_with_medians_and_counts() -> None:
    small = np.log(1e-3)
    base = _run(np.zeros(2), OFF, small, small)
    df = theorem3_table(GROUP, base, [("shift", 2.0, _run(3 * U, OFF_B, small, np.nan))])
    summary = theorem3_summary(df)
    assert list(summary["family"]) == ["none", "shift"] and list(summary["pairs"]) == [3, 3]
    shift = summary.iloc[1]
    assert shift["n_above"] == 2 and shift["n_above_cert"] == 0  # uncertified: not above
    assert shift["w2_q"] == pytest.approx(df.loc[df["family"] == "shift", "w2_q"].median())
    assert shift["w2_p"] == pytest.approx(1.5, rel=1e-9)
    empty = theorem3_summary(None)
    assert empty.empty and "n_above" in empty.columns
