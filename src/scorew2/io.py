"""Atomic writes and validated reads of the pipeline's files.

Every writer goes to a temporary file in the destination folder, flushes it to disk and
renames it over the destination (``os.replace`` is atomic on POSIX), so a killed job never
leaves a half-written file under the final name. Every reader checks what it loads and
raises ``CorruptFileError`` naming the file and what is wrong. A write that fails for a full
disk raises ``DiskFullError`` naming the file, however the writer reported it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

__all__ = [
    "CorruptFileError",
    "DiskFullError",
    "atomic_open",
    "atomic_path",
    "load_csv",
    "load_npz",
    "load_torch",
    "save_csv",
    "save_json",
    "save_npz",
    "save_text",
    "save_torch",
]


class CorruptFileError(ValueError):
    """A file exists but cannot be read, or does not hold what it should."""


class DiskFullError(OSError):
    """No space left on the device that holds the file being written (errno ENOSPC)."""


def _disk_full(err: BaseException | None) -> bool:
    """Whether ``err`` or an exception it came from is ENOSPC: torch reports a full disk as a
    RuntimeError raised while handling the OSError."""
    while err is not None:
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return True
        err = err.__cause__ or err.__context__
    return False


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only on success.

    On a full disk (at any stage: the temporary file, the writer, the flush) raises
    ``DiskFullError`` naming ``path``; the temporary file is removed and ``path`` untouched.
    """
    dest = Path(path)
    tmp_path = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        tmp_path.chmod(0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp_path, dest)
    except Exception as err:
        if _disk_full(err):
            raise DiskFullError(errno.ENOSPC, "No space left on device", str(dest)) from err
        raise
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it replaces ``path`` when the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode) as fh:
        yield fh


def save_torch(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` atomically; the same object gives the same bytes.

    Saved through a file object, so the archive's record names do not carry the name of the
    temporary file (with a path, torch names the records after it).
    """
    import torch  # here, not at the top: numpy-only pipeline steps start faster without it

    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)


def load_torch(path: str | os.PathLike[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load a dict saved by :func:`save_torch` and check that it has the ``required`` keys."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise CorruptFileError(
            f"{path}: not a readable torch file ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(obj, dict):
        raise CorruptFileError(f"{path}: expected a dict, found {type(obj).__name__}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise CorruptFileError(f"{path}: missing entries {missing}")
    return obj


def save_npz(path: str | os.PathLike[str], **arrays: np.ndarray) -> None:
    """``np.savez`` atomically (uncompressed: the arrays are float32 point clouds)."""
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **arrays)


def load_npz(
    path: str | os.PathLike[str], required: tuple[str, ...] = (), finite: bool = True
) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file, checking the ``required`` names are present and,
    with ``finite``, that floating-point arrays hold no NaN or infinity."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise CorruptFileError(f"{path}: not a readable .npz file ({err})") from err
    missing = [k for k in required if k not in arrays]
    if missing:
        raise CorruptFileError(f"{path}: missing arrays {missing}")
    if finite:
        for k, a in arrays.items():
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise CorruptFileError(f"{path}: array {k!r} holds NaN or infinite values")
    return arrays


def save_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a table atomically, with a fixed float format so that equal runs give equal bytes."""
    with atomic_open(path, "w") as fh:
        df.to_csv(fh, index=False, float_format="%.10g", lineterminator="\n")


def load_csv(path: str | os.PathLike[str], required: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a table, checking that it parses, is not empty and has the ``required`` columns."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise CorruptFileError(f"{path}: not a readable CSV table ({err})") from err
    if df.empty:
        raise CorruptFileError(f"{path}: the table has no rows")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise CorruptFileError(f"{path}: missing columns {missing}")
    return df


def save_json(obj: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write JSON atomically with sorted keys (stable bytes)."""
    with atomic_open(path, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")


def save_text(text: str, path: str | os.PathLike[str]) -> None:
    """Write a text file atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
