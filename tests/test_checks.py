"""The checks pellucid makes on models and data (docs/errors.md), end to end: at the command
line each mistake ends the run with exit status 2 and one line naming what the user typed (the
flag, the column, the row); in Python it raises the error of its kind, naming the parameter."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pellucid.demo import TARGET, make_credit

#: Flags that keep a run short when a check does not stop it.
FAST = ["--quiet", "--n", "500", "--sizes", "4", "--n-boot", "0", "--no-local", "--attributions", "none",
        "--no-scorecard"]

MODELS = textwrap.dedent(
    """
    import numpy as np

    def rule(df):
        # A classifier on the credit table: probabilities of (good, bad) from the debt ratio.
        p = 1 / (1 + np.exp(-8 * (df["debt_ratio"].astype(float).to_numpy() - 0.5)))
        return np.column_stack([1 - p, p])
    """
)


def explain(*args, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m pellucid explain ARGS`` in a process of its own."""
    return subprocess.run([sys.executable, "-m", "pellucid", "explain", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def error_line(done: subprocess.CompletedProcess) -> str:
    """The one line a refused run prints, once the run is known to have exited with 2."""
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pellucid: error: "), done.stderr[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("checks")
    (d / "models.py").write_text(MODELS)
    make_credit(400, random_state=4).to_csv(d / "credit.csv", index=False)
    return d


def test_target_values_that_are_not_classes(files, tmp_path):
    df = make_credit(400, random_state=4)
    df[TARGET] = df[TARGET].where(np.arange(len(df)) % 2 == 0, df[TARGET].replace({"bad": "Bad"}))
    df.to_csv(tmp_path / "labels.csv", index=False)
    first = int(np.flatnonzero(df[TARGET].to_numpy() == "Bad")[0])
    line = error_line(explain("--model", f"{files}/models.py:rule", "--data", tmp_path / "labels.csv",
                              "--target", TARGET, "--classes", "good,bad", "--out", tmp_path / "r", *FAST))
    assert f"target column '{TARGET}' (--target) holds value ['Bad']" in line
    assert f"first at row {first})" in line and "the network's classes are ['good', 'bad']" in line
    assert "(--classes)" in line
    assert not (tmp_path / "r").exists()


def test_nested_parquet_column(files, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = make_credit(100, random_state=4)
    table = pa.Table.from_pandas(df, preserve_index=False).append_column(
        "address", pa.array([{"city": "Oslo", "zip": i} for i in range(len(df))]))
    pq.write_table(table, tmp_path / "nested.parquet")
    line = error_line(explain("--model", f"{files}/models.py:rule", "--data", tmp_path / "nested.parquet",
                              "--target", TARGET, "--classes", "good,bad", "--out", tmp_path / "r", *FAST))
    assert "column 'address' is nested (struct<city: string, zip: int64>)" in line and "nested.parquet" in line


def test_a_word_in_a_numeric_column(files, tmp_path):
    df = make_credit(400, random_state=4)
    df["income"] = df["income"].astype(object)
    df.loc[17, "income"] = "abc"
    df.to_csv(tmp_path / "typo.csv", index=False)
    line = error_line(explain("--model", f"{files}/models.py:rule", "--data", tmp_path / "typo.csv",
                              "--target", TARGET, "--classes", "good,bad", "--out", tmp_path / "r", *FAST))
    assert "column 'income' row 17: 'abc' is not a number" in line and "--schema" in line


def _rule(df):
    p = 1 / (1 + np.exp(-8 * (df["debt_ratio"].astype(float).to_numpy() - 0.5)))
    return np.column_stack([1 - p, p])


def test_repeated_column_names_in_python():
    import pellucid
    from pellucid import Oracle, Schema, distill
    from pellucid.errors import SchemaError

    df = make_credit(100, random_state=4).rename(columns={"age": "income"})
    oracle = Oracle(_rule, classes=["good", "bad"])
    calls = {
        "explain": lambda: pellucid.explain(oracle, df, target=TARGET, out_dir=None, verbose=0),
        "distill": lambda: distill(oracle, df.drop(columns=TARGET), n=100),
        "from_frame": lambda: Schema.from_frame(df),
    }
    for name, call in calls.items():
        with pytest.raises(SchemaError, match=r"several columns with the same name: 'income' \(columns 0, 2,"):
            call()
    assert oracle.n_queries == 0
