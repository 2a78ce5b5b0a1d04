"""One contract over every registered local explainer (``pellucid.surrogates.LOCAL_EXPLAINERS``):
the rows to explain and the reference are checked by the one shared
:func:`~pellucid.surrogates.check_local_rows` before any query, and each mistake is a
``SchemaError`` naming the column, the category or the rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pellucid.errors import SchemaError
from pellucid.oracle import Oracle
from pellucid.surrogates import LOCAL_EXPLAINERS, check_local_rows


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=200), "k": rng.integers(0, 5, 200),
                         "c": rng.choice(["a", "b", "c"], 200)})


def _oracle() -> Oracle:
    def f(df: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-df["x"].astype(float).to_numpy()))
        return np.column_stack([1 - p, p])
    return Oracle(f, classes=["no", "yes"], verbose=0)


explainers = pytest.mark.parametrize("name", sorted(LOCAL_EXPLAINERS))


@explainers
def test_mistakes_are_named_before_any_query(name, table):
    explain, oracle = LOCAL_EXPLAINERS[name], _oracle()
    rows = table.iloc[:3]
    with pytest.raises(SchemaError, match=r"\['extra'\]"):
        explain(oracle, rows.assign(extra=1.0), table)
    with pytest.raises(SchemaError, match=r"missing column.*\['k'\]"):
        explain(oracle, rows.drop(columns="k"), table)
    bad = rows.copy()
    bad.loc[bad.index[1], "c"] = "zz"
    with pytest.raises(SchemaError, match=r"'c'.*\['zz'\].*index \[1\]"):
        explain(oracle, bad, table)
    with pytest.raises(SchemaError, match="empty"):
        explain(oracle, rows.iloc[:0], table)
    with pytest.raises(SchemaError, match="reference is empty"):
        explain(oracle, rows, table.iloc[:0])
    assert oracle.n_queries == 0


def test_check_local_rows_gives_canonical_tables_with_their_index(table):
    rows = table.iloc[[5, 7]][["c", "x", "k"]]  # any column order
    schema, ref, canon = check_local_rows(rows, table)
    assert list(canon.columns) == schema.names == ["x", "k", "c"]
    assert list(canon.index) == [5, 7] and len(ref) == len(table)
    for rows_, ref_ in ((rows["x"], table), (rows.to_numpy(), table), (rows, table.to_numpy())):
        with pytest.raises(SchemaError, match="DataFrame"):
            check_local_rows(rows_, ref_)
