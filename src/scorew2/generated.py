"""Files generated from others: ``readme`` (the README's result tables, from results/tables)
and ``envfile`` (the rules' conda environment, from requirements.lock).

``python -m scorew2.generated NAME`` rewrites the file; ``--check`` exits 1 when it is stale
(what the tests run); ``--source`` and ``--target`` override the default paths.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from scorew2.envfile import conda_env
from scorew2.io import save_text
from scorew2.readme import render

__all__ = ["GENERATED", "main"]

#: name -> (default source, default target, target text from (source, target))
GENERATED: dict[str, tuple[str, str, Callable[[Path, Path], str]]] = {
    "readme": ("results/tables", "README.md", lambda src, dst: render(dst.read_text(), src)),
    "envfile": (
        "requirements.lock",
        "workflow/envs/scorew2.yaml",
        lambda src, dst: conda_env(src.read_text()),
    ),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name", choices=sorted(GENERATED))
    ap.add_argument("--source", type=Path, help="the file or folder it is generated from")
    ap.add_argument("--target", type=Path, help="the generated file")
    ap.add_argument("--check", action="store_true", help="exit 1 if the target is stale")
    args = ap.parse_args(argv)
    default_source, default_target, make = GENERATED[args.name]
    source, target = args.source or Path(default_source), args.target or Path(default_target)
    text = make(source, target)
    current = target.read_text() if target.is_file() else None
    if args.check:
        if current != text:
            print(f"{target}: stale; run python -m scorew2.generated {args.name}", file=sys.stderr)
            return 1
        return 0
    if current != text:
        save_text(text, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
