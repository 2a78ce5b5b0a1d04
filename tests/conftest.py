"""Shared fixtures: small generated tables and networks, built once per session."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pellucid.demo import CLASSES, TARGET, make_credit, train_credit_network


@pytest.fixture(scope="session")
def credit():
    """(features, target) of the embedded credit example, small."""
    df = make_credit(2000, random_state=1)
    return df.drop(columns=TARGET), df[TARGET]


@pytest.fixture(scope="session")
def credit_net(credit):
    """A torch network and its ColumnTransformer, trained briefly on the credit example."""
    X, y = credit
    return train_credit_network(X, y, epochs=8, random_state=0)


@pytest.fixture(scope="session")
def credit_oracle_parts(credit_net):
    net, pre = credit_net
    return net, pre, list(CLASSES)


@pytest.fixture(scope="session")
def audit():
    """The demo's audit situation: a network trained on its own table, a separate table of
    1000 observed rows from the same source, and 20,000 fresh rows with the network's labels."""
    from pellucid import Oracle

    train = make_credit(5000, random_state=5000)
    net, pre = train_credit_network(train.drop(columns=TARGET), train[TARGET], random_state=0)
    oracle = Oracle(net, preprocess=pre, task="classification", classes=list(CLASSES))
    X = make_credit(1000, random_state=0).drop(columns=TARGET)
    fresh = make_credit(20000, random_state=10_000).drop(columns=TARGET)
    return oracle, X, fresh, oracle.predict(fresh)


@pytest.fixture(scope="session")
def demo_report(tmp_path_factory):
    """One real report pair (``report.html`` and ``report.json``) for the modules that read,
    edit or write over a report: the demo run, small (about half a minute), made once. Read it
    in place; copy it before changing anything."""
    from pellucid.cli import main

    out = tmp_path_factory.mktemp("demo-report")
    code = main(["demo", "--rows", "1200", "--sizes", "4,8", "--n-boot", "3", "--quiet", "--out", str(out)])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny networks: one intra-op thread is faster than several, and far faster than several
    contending on a busy machine. Modules opt in with ``pytestmark``; the setting comes back."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


N_ORACLE_ROWS = 50


@pytest.fixture
def frame() -> pd.DataFrame:
    """50 raw rows: two categorical columns (one with missing values), two numeric."""
    rng = np.random.default_rng(0)
    n = N_ORACLE_ROWS
    return pd.DataFrame(
        {
            "color": rng.choice(np.array(["red", "green", "blue", None], dtype=object), n),
            "size": rng.choice(["S", "M", "L"], n),
            "x": rng.normal(size=n),
            "y": rng.normal(2.0, 3.0, size=n),
        }
    )


@pytest.fixture
def ct(frame):
    """A fitted ColumnTransformer for ``frame``: imputed one-hot categories, scaled numerics."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cat = make_pipeline(
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    return ColumnTransformer([("cat", cat, ["color", "size"]), ("num", StandardScaler(), ["x", "y"])]).fit(frame)


def mixed_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A small table with every feature kind and missing values."""
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 3, n)
    x[rng.random(n) < 0.1] = np.nan
    count = rng.poisson(2, n).astype(float)
    count[rng.random(n) < 0.05] = np.nan
    color = rng.choice(["red", "green", "blue"], n).astype(object)
    color[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "count": count,
            "flag": rng.random(n) < 0.3,
            "color": color,
            "size": pd.Categorical(rng.choice(["S", "M", "L"], n), categories=["S", "M", "L"], ordered=True),
            "age": rng.integers(18, 90, n),
        }
    )


def correlated_frame(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Two strongly correlated numbers, an integer, a category and missing values (rows a
    sampler should keep inside the data)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    df = pd.DataFrame({
        "a": a.round(4),
        "b": (a + 0.15 * rng.normal(size=n)).round(4),
        "k": rng.integers(0, 10, n),
        "c": rng.choice(["x", "y", "z"], n, p=[0.6, 0.3, 0.1]).astype(object),
    })
    df.loc[rng.random(n) < 0.05, "b"] = np.nan
    return df


def threshold_oracle(threshold: float = 1.0):
    """A network sure almost everywhere, its answers mixed only near a = threshold."""
    from pellucid import Oracle

    def net(d):
        p = 1 / (1 + np.exp(-8 * (d["a"].to_numpy() - threshold)))
        return np.c_[1 - p, p]

    return Oracle(net, task="classification", classes=["no", "yes"])
