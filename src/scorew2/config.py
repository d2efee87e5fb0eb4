"""Validation of the pipeline's configuration: the JSON schema plus the checks it cannot express.

Every problem is reported before any job runs, as a ``ValueError`` whose message names the key
(``experiments.loglog.datasets[0]``) and, for a choice, the allowed values. ``read_config``
reads a YAML file with the same kind of message for a file that is not UTF-8 text, not YAML
or not a mapping; ``python -m scorew2.config FILE...`` checks config files that way (Snakemake
itself answers an undecodable ``--configfile`` with a traceback, before this module runs).
"""

from __future__ import annotations

import copy
import math
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from scorew2.runs import KINDS
from scorew2.schedule import make_schedule

__all__ = [
    "SCHEMA_PATH",
    "key_name",
    "load_schema",
    "machine_memory",
    "read_config",
    "resolve",
    "validate_config",
]

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict[str, Any]:
    """Read the YAML JSON-schema of the configuration."""
    with open(path) as fh:
        return yaml.safe_load(fh)


def key_name(path: Any) -> str:
    """A key path as the messages name it: ``experiments.loglog.seeds[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _message(err: jsonschema.ValidationError) -> str:
    where = key_name(err.absolute_path)
    if err.validator == "enum":
        allowed = ", ".join(map(str, err.validator_value))
        return f"config key {where}: {err.instance!r} is not allowed; allowed values: {allowed}"
    if err.validator == "additionalProperties":
        allowed = ", ".join(sorted(err.schema.get("properties", {})))
        return f"config key {where}: {err.message}; allowed keys: {allowed}"
    return f"config key {where}: {err.message}"


def resolve(node: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    """A schema node with its ``$ref`` (``#/definitions/...`` of ``root``) merged in."""
    if "$ref" not in node:
        return dict(node)
    target: Any = root
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**resolve(target, root), **{k: v for k, v in node.items() if k != "$ref"}}


def _fill_defaults(node: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> None:
    """Insert the schema's defaults for missing keys of every object present in ``node``."""
    schema = resolve(schema, root)
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


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML config file as a mapping, or ``ValueError`` naming the file and what is wrong:
    unreadable, not UTF-8 text, not YAML (with the line), or not a mapping of keys."""
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise ValueError(f"config file {path}: cannot be read ({err.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"config file {path}: not UTF-8 text (byte {raw[err.start]:#04x} at offset "
            f"{err.start}); a config is a YAML file"
        ) from None
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"config file {path}: not valid YAML: {err}") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"config file {path}: expected a mapping of keys, got {_kind(cfg)}")
    return cfg


def _kind(value: Any) -> str:
    return "an empty file" if value is None else f"a {type(value).__name__}"


def _non_finite(node: Any, path: tuple = ()) -> Iterator[str]:
    """The keys of every NaN or infinite number in a nested config."""
    if isinstance(node, float) and not math.isfinite(node):
        yield f"config key {key_name(path)}: {node!r} is not a finite number"
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _non_finite(v, (*path, k))
    elif isinstance(node, list):
        for k, v in enumerate(node):
            yield from _non_finite(v, (*path, k))


def _schema_errors(cfg: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """The schema's complaints about ``cfg``, shallowest key first, each naming its key."""
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(cfg),
        key=lambda e: (len(e.absolute_path), key_name(e.absolute_path)),
    )
    return [_message(e) for e in errors]


# Keys of one experiment kind: (key, kind, what it does there).
_KIND_KEYS = (
    ("perturbations", "robustness", "perturbs its data"),
    ("dims", "dimsweep", "embeds its data in d dimensions"),
)


def _cross_errors(cfg: Mapping[str, Any], used: list[str]) -> list[str]:
    """What one key cannot say alone: beta_end >= beta_start, maximize_epochs < epochs (some
    epochs must minimise the loss), n_checkpoints >= dense_epochs + 2 when the checkpoints are
    log-spaced (``scorew2.train.checkpoint_epochs``), w2_points within every data set,
    perturbations only in a robustness experiment and dims only in a dimsweep one, and a
    schedule that builds at every T (every beta in (0, 1) after rounding: a quadratic one with
    beta_end within rounding of 1 does not)."""
    out = []
    for name, exp in cfg["experiments"].items():
        for key, kind, what in _KIND_KEYS:
            if key in exp and exp["kind"] != kind:
                out.append(
                    f"config key experiments.{name}.{key}: only a {kind} experiment {what} "
                    f"(this one is of kind {exp['kind']})"
                )
        sch = exp["schedule"]
        if sch["beta_end"] < sch["beta_start"]:
            out.append(
                f"config key experiments.{name}.schedule: beta_end ({sch['beta_end']}) is below "
                f"beta_start ({sch['beta_start']})"
            )
            continue
        for T in exp["T"]:
            try:
                make_schedule(T=T, **sch)
            except ValueError as err:
                out.append(f"config key experiments.{name}.schedule: at T = {T}: {err}")
                break
    tr = cfg["training"]
    if tr["maximize_epochs"] >= tr["epochs"]:
        out.append(
            f"config key training.maximize_epochs: {tr['maximize_epochs']} "
            f"{'exceeds' if tr['maximize_epochs'] > tr['epochs'] else 'equals'} training.epochs "
            f"({tr['epochs']}): no epoch would minimise the loss"
        )
    log_part = tr["epochs"] > tr["dense_epochs"] and tr["n_checkpoints"] <= tr["epochs"]
    if log_part and tr["n_checkpoints"] < tr["dense_epochs"] + 2:
        out.append(
            f"config key training.n_checkpoints: {tr['n_checkpoints']} is below "
            f"training.dense_epochs + 2 ({tr['dense_epochs'] + 2}): the dense checkpoints leave "
            "none for the log-spaced part"
        )
    n_w2 = cfg["evaluation"]["w2_points"]
    for name in used:
        if n_w2 > cfg["datasets"][name]["n"]:
            out.append(
                f"config key evaluation.w2_points: {n_w2} exceeds datasets.{name}.n "
                f"({cfg['datasets'][name]['n']})"
            )
    return out


def machine_memory() -> int:
    """Bytes of physical memory of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _memory_needs(cfg: Mapping[str, Any], used: list[str]) -> Iterator[tuple[str, float, str]]:
    """(key, bytes, what) for arrays some job certainly allocates: lower bounds, so a config
    refused for them cannot run. M counts the models of one job (seeds x regularisers in
    training, seeds in an evaluation group), d = 2, float64 = 8 bytes, float32 = 4."""
    ev, tr, exps = cfg["evaluation"], cfg["training"], cfg["experiments"].values()
    seeds = max(len(e["seeds"]) for e in exps)
    trained = max(len(e["seeds"]) * len(e["regularizers"]) for e in exps)
    T = max(max(e["T"]) for e in exps)
    g, h = ev["lipschitz_grid"], tr["hidden"]
    yield "evaluation.lipschitz_grid", 16.0 * g * g, f"the {g} x {g} grid of float64 points"
    yield (
        "evaluation.lipschitz_paths",
        8.0 * T * seeds * ev["lipschitz_paths"],
        f"the sampler states of {seeds} models over {T} steps",
    )
    yield (
        "training.hidden",
        32.0 * trained * h * h,
        f"weights, gradients and AdamW moments of {trained} models",
    )
    yield (
        "training.batch_size",
        12.0 * trained * tr["batch_size"] * h,
        f"one batch's activations in {trained} models",
    )
    for name in used:
        n = cfg["datasets"][name]["n"]
        yield f"datasets.{name}.n", 16.0 * n, f"{n} float64 points"


def _memory_errors(cfg: Mapping[str, Any], used: list[str], limit: float) -> list[str]:
    return [
        f"config key {key}: needs at least {need / 2**30:.3g} GiB ({what}), more than the "
        f"{limit / 2**30:.3g} GiB of memory of this machine"
        for key, need, what in _memory_needs(cfg, used)
        if need > limit
    ]


def validate_config(
    config: Mapping[str, Any],
    schema: Mapping[str, Any] | None = None,
    memory: float | None = None,
) -> dict:
    """Return a copy of ``config`` with defaults filled in, or raise ``ValueError`` listing
    every problem, each naming its key.

    An experiment named ``loglog`` or ``tsweep`` without ``kind`` is of that kind. Checks, in
    order: a mapping of finite numbers (no NaN or infinity anywhere); the JSON schema (types,
    ranges, allowed names, duplicates, unknown keys at every level); what one key cannot say
    (``_cross_errors``); and sizes that cannot fit in ``memory`` bytes (default: this
    machine's, ``machine_memory``), from lower bounds of what some job allocates.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"invalid configuration: expected a mapping of keys, got {_kind(config)}")
    schema = load_schema() if schema is None else schema
    cfg = _with_kinds(config)
    _refuse(list(_non_finite(cfg)) + _schema_errors(cfg, schema))
    used = sorted({d for exp in cfg["experiments"].values() for d in exp["datasets"]})
    cfg.setdefault("datasets", {})
    for name in used:
        cfg["datasets"].setdefault(name, {})
    _fill_defaults(cfg, schema, schema)
    limit = machine_memory() if memory is None else memory
    _refuse(_cross_errors(cfg, used) + _memory_errors(cfg, used, limit))
    return cfg


def _refuse(errors: list[str]) -> None:
    if errors:
        raise ValueError("invalid configuration:\n  " + "\n  ".join(errors))


def main(argv: list[str] | None = None) -> int:
    """``python -m scorew2.config FILE...``: check config files; exit status 1 if any is bad."""
    bad = 0
    for path in sys.argv[1:] if argv is None else argv:
        try:
            cfg = validate_config(read_config(path))
        except ValueError as err:
            text = str(err)
            print(text if text.startswith("config file") else f"{path}: {text}", file=sys.stderr)
            bad += 1
        else:
            print(f"{path}: valid ({len(cfg['experiments'])} experiments)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
