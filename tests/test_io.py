"""Atomic writes and validated reads: a corrupt or truncated file is named, never used."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from scorew2.io import (
    CorruptFileError,
    DiskFullError,
    atomic_open,
    atomic_path,
    load_csv,
    load_npz,
    load_torch,
    save_csv,
    save_npz,
    save_torch,
)


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("partial")
        raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary left behind either


def test_failed_write_keeps_previous_version(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    save_csv(pd.DataFrame({"a": [1]}), target)
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("b\n2\n")
        raise RuntimeError("killed")
    assert load_csv(target)["a"].tolist() == [1]


def test_round_trips(tmp_path: Path) -> None:
    save_npz(tmp_path / "a.npz", x=np.arange(6.0).reshape(3, 2))
    assert load_npz(tmp_path / "a.npz", required=("x",))["x"].shape == (3, 2)
    save_torch({"w": torch.ones(2)}, tmp_path / "a.pt")
    assert load_torch(tmp_path / "a.pt", required=("w",))["w"].sum() == 2


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_npz_is_named(tmp_path: Path) -> None:
    f = tmp_path / "samples.npz"
    save_npz(f, x=np.zeros((100, 2)))
    truncate(f)
    with pytest.raises(CorruptFileError, match=r"samples\.npz"):
        load_npz(f)


def test_truncated_checkpoint_is_named(tmp_path: Path) -> None:
    f = tmp_path / "checkpoints.pt"
    save_torch({"w": torch.zeros(1000)}, f)
    truncate(f)
    with pytest.raises(CorruptFileError, match=r"checkpoints\.pt: not a readable torch file"):
        load_torch(f)


def test_missing_entries_are_named(tmp_path: Path) -> None:
    save_torch({"w": torch.zeros(3)}, tmp_path / "c.pt")
    with pytest.raises(CorruptFileError, match=r"missing entries \['states'\]"):
        load_torch(tmp_path / "c.pt", required=("w", "states"))
    save_npz(tmp_path / "s.npz", x=np.zeros(3))
    with pytest.raises(CorruptFileError, match=r"missing arrays \['ref'\]"):
        load_npz(tmp_path / "s.npz", required=("x", "ref"))


def test_non_finite_arrays_are_refused(tmp_path: Path) -> None:
    save_npz(tmp_path / "s.npz", samples=np.array([[0.0, np.nan]]))
    with pytest.raises(CorruptFileError, match="'samples' holds NaN"):
        load_npz(tmp_path / "s.npz")


def test_bad_tables_are_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CorruptFileError, match=r"empty\.csv"):
        load_csv(empty)
    header_only = tmp_path / "w2.csv"
    header_only.write_text("seed,epoch,w2\n")
    with pytest.raises(CorruptFileError, match=r"w2\.csv: the table has no rows"):
        load_csv(header_only)
    save_csv(pd.DataFrame({"seed": [0]}), tmp_path / "bound.csv")
    with pytest.raises(CorruptFileError, match=r"bound\.csv: missing columns \['w2'\]"):
        load_csv(tmp_path / "bound.csv", required=("seed", "w2"))
    with pytest.raises(FileNotFoundError, match=r"nothing\.csv"):
        load_csv(tmp_path / "nothing.csv")


def _torch_like_full_disk(path: Path) -> None:
    """What torch.save does on a full disk: a RuntimeError raised while handling ENOSPC."""
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError:
        raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from None


@pytest.mark.parametrize("fail", ["oserror", "torch"])
def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path: Path, fail: str) -> None:
    dest = tmp_path / "table.csv"
    dest.write_text("old\n")
    with pytest.raises(DiskFullError, match=r"No space left on device: '.*table\.csv'") as err:
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            if fail == "oserror":
                raise OSError(errno.ENOSPC, "No space left on device")
            _torch_like_full_disk(tmp)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(dest)
    assert dest.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_other_write_errors_pass_through(tmp_path: Path) -> None:
    with pytest.raises(PermissionError):
        with atomic_path(tmp_path / "x.csv"):
            raise PermissionError(errno.EACCES, "denied")
    assert not list(tmp_path.iterdir())
