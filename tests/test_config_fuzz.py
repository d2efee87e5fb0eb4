"""Fuzzed configurations (hypothesis): configs built from the schema are accepted, by the
validator and by a Snakemake dry run; mutated ones are refused with a ValueError naming the key.

The generator reads the schema itself (types, ranges, enums, sizes, unique items, patterns,
$ref), so a key added to the schema is fuzzed without a change here. Numbers and sizes are
drawn small (every job must fit in memory) and the three rules no single key can state are
repaired explicitly (``_repair``): that is the definition of a valid config the test uses.
"""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scorew2.config import key_name, load_schema, read_config, resolve, validate_config
from scorew2.highdim import DIM_SETS
from scorew2.perturb import CLUSTER_SETS
from scorew2.schedule import make_schedule
from scorew2.train import checkpoint_epochs

REPO = Path(__file__).resolve().parents[1]
SCHEMA = load_schema()
SPAN = 40  # integers are drawn from [minimum, minimum + SPAN]: every size stays small
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    return resolve(node, SCHEMA)


def _number(node: dict[str, Any]) -> st.SearchStrategy:
    lo = node.get("minimum", node.get("exclusiveMinimum", 0.0))
    hi = node.get("maximum", node.get("exclusiveMaximum", lo + 10.0))
    return st.floats(
        lo,
        hi,
        exclude_min="exclusiveMinimum" in node,
        exclude_max="exclusiveMaximum" in node,
        allow_nan=False,
    )


def _object(node: dict[str, Any]) -> st.SearchStrategy:
    props, required = node.get("properties", {}), set(node.get("required", ()))
    fixed = {k: from_schema(v) for k, v in props.items() if k in required}
    optional = {k: from_schema(v) for k, v in props.items() if k not in required}
    extra = node.get("additionalProperties")
    if not isinstance(extra, dict):
        least = node.get("minProperties", 0)
        return st.fixed_dictionaries(fixed, optional=optional).filter(lambda d: len(d) >= least)
    names = st.from_regex(node["propertyNames"]["pattern"], fullmatch=True).filter(
        lambda s: len(s) <= 12
    )
    free = st.dictionaries(names, from_schema(extra), min_size=node.get("minProperties", 0))
    return st.builds(lambda a, b: {**b, **a}, st.fixed_dictionaries(fixed), free.filter(bool))


def from_schema(node: dict[str, Any]) -> st.SearchStrategy:
    """A strategy for the instances of a schema node (the subset of JSON schema ours uses)."""
    node = _resolve(node)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "integer":
        lo = node.get("minimum", 0)
        return st.integers(lo, node.get("maximum", lo + SPAN))
    if kind == "number":
        return _number(node)
    if kind == "array":
        lo = node.get("minItems", 0)
        items = from_schema(node["items"])
        return st.lists(items, min_size=lo, max_size=lo + 3, unique=node.get("uniqueItems", False))
    if kind == "object":
        return _object(node)
    if kind == "string":
        return st.just("results_fuzz")
    raise AssertionError(f"schema node the generator does not know: {node}")


def _repair(cfg: dict[str, Any]) -> dict[str, Any]:
    """The cross-key rules of ``validate_config``: beta_end >= beta_start, maximize_epochs <
    epochs, n_checkpoints >= dense_epochs + 2 for log-spaced checkpoints, w2_points no larger
    than a data set, perturbations (of cluster sets) in robustness experiments only, dims (of
    the dimension sweep's sets) in dimsweep experiments only."""
    for exp in cfg["experiments"].values():
        if exp["kind"] == "robustness":
            exp["datasets"] = [d for d in exp["datasets"] if d in CLUSTER_SETS] or [CLUSTER_SETS[0]]
            exp.setdefault("perturbations", {"shift": [0.1]})
        else:
            exp.pop("perturbations", None)
        if exp["kind"] == "dimsweep":
            exp["datasets"] = [d for d in exp["datasets"] if d in DIM_SETS] or [DIM_SETS[0]]
            exp.setdefault("dims", [3])
        else:
            exp.pop("dims", None)
        sch = exp["schedule"]
        sch["beta_start"], sch["beta_end"] = sorted((sch["beta_start"], sch["beta_end"]))
        if sch["beta_end"] > 0.99:  # a quadratic schedule may round a beta up to 1: refused
            sch["beta_end"] = max(sch["beta_start"], 0.5) if sch["beta_start"] <= 0.99 else 0.5
            sch["beta_start"] = min(sch["beta_start"], sch["beta_end"])
    tr = cfg.setdefault("training", {})
    if tr.get("maximize_epochs", 10) >= tr.get("epochs", 1000):
        tr["maximize_epochs"] = tr.get("epochs", 1000) - 1
    epochs, dense = tr.get("epochs", 1000), tr.get("dense_epochs", 20)
    if epochs > dense and tr.get("n_checkpoints", 100) <= epochs:
        tr["n_checkpoints"] = max(tr.get("n_checkpoints", 100), dense + 2)
    ev = cfg.setdefault("evaluation", {})
    ev["w2_points"] = min(ev.get("w2_points", 2000), *_sizes(cfg))
    return cfg


def _sizes(cfg: dict[str, Any]) -> list[int]:
    """The sizes n of every data set an experiment uses (its default where not given)."""
    props = SCHEMA["properties"]["datasets"]["properties"]
    used = {d for exp in cfg["experiments"].values() for d in exp["datasets"]}
    given_ = cfg.get("datasets", {})
    return [given_.get(d, {}).get("n", props[d]["properties"]["n"]["default"]) for d in used]


VALID = from_schema(SCHEMA).map(_repair).filter(lambda c: min(_sizes(c)) >= 2)


@FUZZ
@given(VALID)
def test_every_valid_config_is_accepted(cfg: dict[str, Any]) -> None:
    out = validate_config(cfg)
    assert set(out["experiments"]) == set(cfg["experiments"])
    tr = out["training"]
    assert tr["epochs"] == cfg["training"].get("epochs", 1000)
    # what the jobs build from it can be built
    assert (
        checkpoint_epochs(tr["epochs"], tr["dense_epochs"], tr["n_checkpoints"])[-1] == tr["epochs"]
    )
    for exp in out["experiments"].values():
        for T in exp["T"]:
            assert len(make_schedule(T=T, **exp["schedule"]).alpha_bars) == T


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALID)
def test_a_valid_config_passes_a_dry_run(tmp_path_factory: Any, cfg: dict[str, Any]) -> None:
    tmp = tmp_path_factory.mktemp("dry")
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump({**cfg, "results_dir": str(tmp / "results")}))
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


# ------------------------------------------------------------------------ mutated configs
def _nodes(value: Any, node: dict[str, Any], path: tuple = ()) -> list[tuple]:
    """Every (path, value, schema node) of a config, the config itself first."""
    node = _resolve(node)
    out = [(path, value, node)]
    if isinstance(value, dict):
        props, extra = node.get("properties", {}), node.get("additionalProperties")
        for k, v in value.items():
            sub = props.get(k, extra if isinstance(extra, dict) else None)
            if sub is not None:
                out += _nodes(v, sub, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _nodes(v, node["items"], (*path, i))
    return out


def _mutations(value: Any, node: dict[str, Any]) -> list[tuple[str, Any]]:
    """(what, replacement) that no schema-valid config has at this node."""
    kind = node.get("type")
    out: list[tuple[str, Any]] = []
    if "enum" in node:
        out += [("not allowed", "no_such_choice"), ("wrong type", 123)]
    if kind in ("integer", "number"):
        out += [("wrong type", "text"), ("NaN", math.nan), ("infinite", math.inf)]
        out += [("infinite", -math.inf)]
        if kind == "integer":
            out.append(("not an integer", 0.5))
        for bound, step in (("minimum", -1), ("exclusiveMinimum", 0), ("maximum", 1)):
            if bound in node:
                out.append((f"below {bound}" if step <= 0 else "above maximum", node[bound] + step))
        if "exclusiveMaximum" in node:
            out.append(("at exclusiveMaximum", node["exclusiveMaximum"]))
    if kind == "array":
        out += [("wrong type", "text"), ("wrong type", {"a": 1})]
        if node.get("uniqueItems") and value:
            out.append(("duplicate entry", [*value, value[0]]))
        if node.get("minItems"):
            out.append(("empty", []))
    if kind == "object":
        out += [("wrong type", [1]), ("wrong type", 7)]
        if node.get("minProperties"):
            out.append(("empty", {}))
    if kind == "string":
        out += [("wrong type", 5), ("empty", "")]
    return out


def _unknownkey_name(value: Any, node: dict[str, Any]) -> list[tuple[str, Any]]:
    if isinstance(value, dict) and node.get("additionalProperties") is False:
        return [("unknown key", {**value, "zz_unknown_key": 1})]
    if isinstance(value, dict) and "propertyNames" in node:
        return [("bad name", {**value, "9-bad name": {}})]
    return []


BASE = validate_config(yaml.safe_load((REPO / "config.yaml").read_text()))
# combinations that leave a stage with nothing to do, or that no run can use
CROSS = [
    (("training", "maximize_epochs"), "no epoch minimises", BASE["training"]["epochs"]),
    (("evaluation", "w2_points"), "more W2 points than data", 10**6),
    (("training", "n_checkpoints"), "no log-spaced checkpoints", BASE["training"]["dense_epochs"]),
    (("experiments", "tsweep", "schedule", "beta_end"), "beta_end < beta_start", 1e-6),
]
CASES = [
    (path, what, new)
    for path, value, node in _nodes(BASE, SCHEMA)
    for what, new in _mutations(value, node) + _unknownkey_name(value, node)
] + CROSS


def _set(cfg: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(cfg)
    if not path:
        return value
    target = out
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("path", "what", "new"), CASES, ids=[f"{key_name(p)}:{w}" for p, w, _ in CASES]
)
def test_a_mutated_config_is_refused_naming_thekey_name(path: tuple, what: str, new: Any) -> None:
    with pytest.raises(ValueError) as err:
        validate_config(_set(BASE, path, new))
    key = key_name(path[:-1] if what == "beta_end < beta_start" else path)
    assert f"config key {key}" in str(err.value) or (not path and "mapping" in str(err.value)), (
        what,
        str(err.value),
    )


def test_the_mutations_cover_every_kind_ofkey_name() -> None:
    kinds = {what for _, what, _ in CASES}
    assert {"NaN", "infinite", "duplicate entry", "unknown key", "bad name", "empty"} <= kinds
    assert {"not an integer", "not allowed", "wrong type", "below minimum"} <= kinds
    assert len(CASES) > 200


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("evaluation.lipschitz_grid", 10**5),
        ("evaluation.lipschitz_paths", 10**9),
        ("training.hidden", 10**5),
        ("training.batch_size", 10**9),
        ("datasets.moons.n", 3 * 10**9),
    ],
)
def test_sizes_that_cannot_fit_in_memory_are_refused(key: str, value: int) -> None:
    cfg = copy.deepcopy(BASE)
    path = tuple(key.split("."))
    cfg = _set(cfg, path, value)
    with pytest.raises(ValueError, match=rf"config key {key}: needs at least .* GiB"):
        validate_config(cfg, memory=16 * 2**30)
    if key != "datasets.moons.n":  # a thousandth is within the same limit
        validate_config(_set(cfg, path, max(2, value // 1000)), memory=2**50)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_as_a_config_file_get_a_message(tmp_path_factory: Any, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("bytes") / "config.yaml"
    path.write_bytes(raw)
    try:
        cfg = read_config(path)
    except ValueError as err:
        assert str(err).startswith(f"config file {path}: ")
        return
    with pytest.raises(ValueError, match=r"config key|invalid configuration"):
        validate_config(cfg)
