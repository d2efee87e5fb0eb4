"""The README's result tables are generated from the committed tables, never typed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from scorew2.generated import main
from scorew2.readme import render

REPO = Path(__file__).resolve().parents[1]


def test_readme_tables_match_the_committed_results() -> None:
    args = ["readme", "--target", str(REPO / "README.md"), "--source", str(REPO / "results/tables")]
    assert main([*args, "--check"]) == 0, "README is stale: run python -m scorew2.generated readme"


def test_a_changed_number_is_caught(tmp_path: Path) -> None:
    tables = tmp_path / "tables"
    tables.mkdir()
    src = REPO / "results" / "tables"
    claims = pd.read_csv(src / "claims.csv", keep_default_na=False)
    claims.to_csv(tables / "claims.csv", index=False)
    (tables / "runs.csv").write_bytes((src / "runs.csv").read_bytes())
    readme = render("a\n<!-- generated:claims -->\n\n<!-- /generated:claims -->\nb\n", tables)
    assert claims["evidence"].iloc[0] in readme and readme.startswith("a\n")
    assert render(readme, tables) == readme
    claims.loc[0, "verdict"] = "does not hold"
    claims.to_csv(tables / "claims.csv", index=False)
    assert render(readme, tables) != readme
    with pytest.raises(ValueError, match="unknown generated block 'fig9'"):
        render("<!-- generated:fig9 -->\n\n<!-- /generated:fig9 -->", tables)
