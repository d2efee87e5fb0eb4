"""code_version: a hash of a script and of the package files it runs, followed through imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from scorew2.codeversion import code_files, code_version

REPO = Path(__file__).resolve().parents[1]
SRC, SCRIPTS = REPO / "src", REPO / "workflow" / "scripts"


def _names(script: str) -> set[str]:
    return {str(p.relative_to(SRC)) for p in code_files(SCRIPTS / script, SRC) if SRC in p.parents}


def test_training_code_reaches_no_evaluation_module() -> None:
    train = _names("train.py")
    assert {"scorew2/train.py", "scorew2/model.py", "scorew2/schedule.py"} <= train
    evaluation = {"lipschitz", "score", "wasserstein", "metrics", "bound", "sample", "plots"}
    assert not {n for n in train if any(f"scorew2/{e}" in n for e in evaluation)}, train
    assert not any("evaluate" in n for n in train)


def test_each_evaluation_job_reaches_only_its_own_submodule() -> None:
    lips, sample = _names("lipschitz.py"), _names("sample.py")
    assert "scorew2/lipschitz.py" in lips and "scorew2/evaluate/lipschitz.py" in lips
    assert "scorew2/lipschitz.py" not in sample and "scorew2/evaluate/samples.py" in sample
    assert "scorew2/__init__.py" in sample and "scorew2/evaluate/__init__.py" in sample


def test_hash_follows_imports_transitively(tmp_path: Path) -> None:
    pkg = tmp_path / "src" / "scorew2"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from scorew2 import b\n")
    (pkg / "b.py").write_text("import scorew2.sub.c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("X = 1\n")
    (pkg / "d.py").write_text("Y = 2\n")
    script = tmp_path / "job.py"
    script.write_text("def f():\n    from scorew2.a import thing\n")
    files = {p.name for p in code_files(script, tmp_path / "src")}
    assert files == {"job.py", "__init__.py", "a.py", "b.py", "c.py"}
    before = code_version(script, tmp_path / "src")
    (pkg / "d.py").write_text("Y = 3\n")  # not reached: same hash
    assert code_version(script, tmp_path / "src") == before
    (pkg / "sub" / "c.py").write_text("X = 2\n")  # reached through a -> b -> sub.c
    assert code_version(script, tmp_path / "src") != before


def test_the_w2_job_does_not_reach_the_bound() -> None:
    # an edit to the bound's assembly reruns the cheap bound jobs, never the exact W2
    w2, bound = _names("w2.py"), _names("bound.py")
    assert "scorew2/metrics.py" in w2 and "scorew2/wasserstein.py" in w2
    assert not {"scorew2/bound.py", "scorew2/bound_table.py"} & w2
    assert "scorew2/bound_table.py" in bound and "scorew2/wasserstein.py" not in bound


def test_a_wrong_source_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no scorew2 package"):
        code_version(SCRIPTS / "train.py", tmp_path)
    with pytest.raises(FileNotFoundError, match="no such script"):
        code_version(tmp_path / "nope.py", SRC)
