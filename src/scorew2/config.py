"""Validation of the pipeline's configuration: the JSON schema plus the checks it cannot express.

Every problem is reported before any job runs, as a ``ValueError`` whose message names the key
(``experiments.loglog.datasets[0]``) and, for a choice, the allowed values.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from scorew2.runs import KINDS

__all__ = ["SCHEMA_PATH", "load_schema", "validate_config"]

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Read the YAML JSON-schema of the configuration."""
    with open(path) as fh:
        return yaml.safe_load(fh)


def _key(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _message(err: jsonschema.ValidationError) -> str:
    where = _key(err.absolute_path)
    if err.validator == "enum":
        allowed = ", ".join(map(str, err.validator_value))
        return f"config key {where}: {err.instance!r} is not allowed; allowed values: {allowed}"
    if err.validator == "additionalProperties":
        allowed = ", ".join(sorted(err.schema.get("properties", {})))
        return f"config key {where}: {err.message}; allowed keys: {allowed}"
    return f"config key {where}: {err.message}"


def _fill_defaults(node: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> None:
    """Insert the schema's defaults for missing keys of every object present in ``node``."""
    if "$ref" in schema:
        ref = schema["$ref"].removeprefix("#/")
        target: Any = root
        for part in ref.split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    if not isinstance(node, dict):
        return
    props = schema.get("properties", {})
    for key, sub in props.items():
        if key not in node and "default" in sub:
            node[key] = copy.deepcopy(sub["default"])
        if key in node:
            _fill_defaults(node[key], sub, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in node.keys() - props.keys():
            _fill_defaults(node[key], extra, root)


def _with_kinds(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` in which an experiment block named after a kind (``loglog``,
    ``tsweep``) and without ``kind`` gets that kind: the configs written before kinds existed
    keep their meaning."""
    cfg = copy.deepcopy(dict(config))
    exps = cfg.get("experiments")
    if isinstance(exps, dict):
        for name, exp in exps.items():
            if name in KINDS and isinstance(exp, dict) and "kind" not in exp:
                # a copy of its own: YAML anchors (or a caller) may share one block by two names
                exps[name] = {**exp, "kind": name}
    return cfg


def validate_config(config: Mapping[str, Any], schema: Mapping[str, Any] | None = None) -> dict:
    """Return a copy of ``config`` with defaults filled in, or raise ``ValueError``.

    An experiment named ``loglog`` or ``tsweep`` without ``kind`` is of that kind. Checks, in
    order: the JSON schema (types, ranges, allowed names, unknown keys), then
    what the schema cannot say: beta_end >= beta_start, maximize_epochs <= epochs, and
    w2_points no larger than any data set it is drawn from.
    """
    schema = load_schema() if schema is None else schema
    cfg = _with_kinds(config)
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(cfg),
        key=lambda e: (len(e.absolute_path), _key(e.absolute_path)),
    )
    if errors:
        raise ValueError("invalid configuration:\n  " + "\n  ".join(map(_message, errors)))
    used = {d for exp in cfg["experiments"].values() for d in exp["datasets"]}
    cfg.setdefault("datasets", {})
    for name in sorted(used):
        cfg["datasets"].setdefault(name, {})
    _fill_defaults(cfg, schema, schema)

    for name, exp in cfg["experiments"].items():
        sch = exp["schedule"]
        if sch["beta_end"] < sch["beta_start"]:
            raise ValueError(
                f"config key experiments.{name}.schedule: beta_end ({sch['beta_end']}) is below "
                f"beta_start ({sch['beta_start']})"
            )
    tr = cfg["training"]
    if tr["maximize_epochs"] > tr["epochs"]:
        raise ValueError(
            f"config key training.maximize_epochs: {tr['maximize_epochs']} exceeds "
            f"training.epochs ({tr['epochs']})"
        )
    n_w2 = cfg["evaluation"]["w2_points"]
    for name in sorted(used):
        if n_w2 > cfg["datasets"][name]["n"]:
            raise ValueError(
                f"config key evaluation.w2_points: {n_w2} exceeds datasets.{name}.n "
                f"({cfg['datasets'][name]['n']})"
            )
    return cfg
