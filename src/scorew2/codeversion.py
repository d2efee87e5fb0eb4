"""Which package files a rule's code runs, and one hash of them: code changes rerun jobs.

Snakemake reruns a job when its rule script changes, not when a module the script imports
does. Each rule gets ``code_version(script)`` as a param: a hash of the script and of every
``scorew2`` module it imports, followed transitively through their own imports (read from the
source with ``ast``, nothing is imported). Editing ``lipschitz.py`` then changes the param of
the rules whose scripts reach it, and the params rerun trigger reruns those jobs and what
depends on them, and nothing upstream.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

__all__ = ["code_files", "code_version", "imported_modules"]

PACKAGE = "scorew2"


def _module_file(name: str, src: Path) -> Path | None:
    """The source file of module ``name`` (``scorew2.a.b``) under ``src``, if it exists."""
    base = src.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=512)
def _import_statements(source: str, filename: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(module, names imported from it) of every absolute import in ``source``: ``import a``
    gives ("a", ()), ``from a import b, c`` gives ("a", ("b", "c")). Cached by the source text:
    each rule's code version parses the same modules, and Snakemake computes one per rule."""
    out = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            out.extend((a.name, ()) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, tuple(a.name for a in node.names)))
    return tuple(out)


def imported_modules(path: Path, src: Path) -> set[str]:
    """The ``scorew2`` modules the file ``path`` imports (anywhere in it), with the packages
    that contain them (importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__``)."""
    names: set[str] = set()
    for module, imported in _import_statements(path.read_text(), str(path)):
        names.add(module)
        # `from scorew2.evaluate import samples` imports a submodule
        names.update(
            f"{module}.{a}" for a in imported if _module_file(f"{module}.{a}", src) is not None
        )
    out: set[str] = set()
    for name in names:
        parts = name.split(".")
        if parts[0] == PACKAGE:
            out.update(".".join(parts[: k + 1]) for k in range(len(parts)))
    return {n for n in out if _module_file(n, src) is not None}


def code_files(script: Path, src: Path) -> list[Path]:
    """The script and every package file it runs, transitively, sorted."""
    seen: set[Path] = {script}
    todo = [script]
    while todo:
        for name in imported_modules(todo.pop(), src):
            path = _module_file(name, src)
            if path is not None and path not in seen:
                seen.add(path)
                todo.append(path)
    return sorted(seen)


def code_version(script: str | Path, src: str | Path) -> str:
    """SHA-256 (first 16 hex digits) of ``code_files(script, src)``: names and contents."""
    script, src = Path(script), Path(src)
    if not (src / PACKAGE / "__init__.py").is_file():
        raise FileNotFoundError(f"{src}: no {PACKAGE} package here; the code version needs it")
    if not script.is_file():
        raise FileNotFoundError(f"{script}: no such script")
    digest = hashlib.sha256()
    for path in code_files(script, src):
        name = path.relative_to(src) if path.is_relative_to(src) else Path(path.name)
        digest.update(str(name).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
