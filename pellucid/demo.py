"""The embedded example behind ``pellucid demo``: credit-scoring style data generated in code,
with a ground truth known by construction, and a small torch network trained on it.

The label is "bad" when any of three rules holds, then 5% of labels are flipped:

* ``debt_ratio > 0.6`` and ``income < 40`` (income in thousands a year), or
* ``delinquencies >= 3``, or
* ``employment == "unemployed"`` and ``home in {rent, other}``.

Income, delinquencies and employment have missing values (a missing value never makes a rule
hold); ``region``, ``tenure_months`` and ``dependents`` do not matter at all. A good
surrogate of a good network should find these rules and ignore those features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGET = "default"
CLASSES = ("good", "bad")
GROUND_TRUTH = (
    "(debt_ratio > 0.6 and income < 40) or delinquencies >= 3 or "
    "(employment = unemployed and home in {rent, other})"
)


def make_credit(n: int = 8000, noise: float = 0.05, random_state: int | None = 0) -> pd.DataFrame:
    """Generate the credit table: 11 features in raw units plus the ``default`` column.

    Parameters
    ----------
    n : int
        Rows.
    noise : float
        Share of labels flipped after the rules are applied.
    random_state : int, optional
        Seed.
    """
    rng = np.random.default_rng(random_state)
    age = np.clip(np.round(rng.normal(43, 13, n)), 18, 85).astype(int)
    employment = np.where(
        age >= 63,
        rng.choice(["retired", "salaried", "self-employed"], n, p=[0.75, 0.15, 0.10]),
        np.where(
            age < 24,
            rng.choice(["student", "salaried", "unemployed"], n, p=[0.55, 0.3, 0.15]),
            rng.choice(["salaried", "self-employed", "unemployed"], n, p=[0.74, 0.16, 0.10]),
        ),
    ).astype(object)
    home = np.where(
        age < 30,
        rng.choice(["rent", "own", "mortgage", "other"], n, p=[0.65, 0.05, 0.15, 0.15]),
        rng.choice(["rent", "own", "mortgage", "other"], n, p=[0.3, 0.25, 0.4, 0.05]),
    ).astype(object)
    base = np.where(employment == "unemployed", 14.0, np.where(employment == "student", 11.0, 48.0))
    income = np.round(base * np.exp(rng.normal(0.0, 0.45, n)) * (1 + 0.01 * (age - 40).clip(-15, 20)), 1)
    debt_ratio = np.round(rng.beta(2.0, 4.0, n) * 1.5, 3)
    delinquencies = rng.poisson(0.55, n).astype(float)
    credit_lines = rng.poisson(4.0, n) + 1
    loan_amount = np.round(np.exp(rng.normal(np.log(12.0), 0.7, n)), 1)
    tenure_months = rng.integers(0, 240, n)
    dependents = rng.poisson(1.0, n)
    region = rng.choice(["north", "south", "east", "west"], n).astype(object)

    bad = (
        ((debt_ratio > 0.6) & (income < 40))
        | (delinquencies >= 3)
        | ((employment == "unemployed") & np.isin(home, ["rent", "other"]))
    )
    flip = rng.random(n) < noise
    bad = bad ^ flip

    # Missing values, after the label: a missing value is what the lender did not record.
    income = np.where(rng.random(n) < 0.05, np.nan, income)
    delinquencies = np.where(rng.random(n) < 0.04, np.nan, delinquencies)
    employment = employment.copy()
    employment[rng.random(n) < 0.03] = np.nan

    return pd.DataFrame(
        {
            "income": income,
            "debt_ratio": debt_ratio,
            "age": age,
            "delinquencies": delinquencies,
            "credit_lines": credit_lines,
            "loan_amount": loan_amount,
            "home": home,
            "employment": employment,
            "region": region,
            "tenure_months": tenure_months,
            "dependents": dependents,
            TARGET: np.where(bad, CLASSES[1], CLASSES[0]).astype(object),
        }
    )


def credit_preprocess(X: pd.DataFrame):
    """The preprocessing a modeller would write: median-impute (with missing indicators) and
    scale numerics, one-hot encode categoricals with missing as its own level."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cats = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c].dtype)]
    nums = [c for c in X.columns if c not in cats]
    ct = ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True)), ("scale", StandardScaler())]), nums),
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                cats,
            ),
        ]
    )
    return ct.fit(X)


def train_credit_network(
    X: pd.DataFrame,
    y: pd.Series,
    epochs: int = 40,
    hidden: tuple[int, ...] = (64, 32),
    random_state: int = 0,
):
    """Fit ``credit_preprocess`` and a ReLU MLP on it; return ``(network, preprocess)``.

    The network outputs two logits in the order of :data:`CLASSES`.
    """
    import torch

    from ._device import torch_threads

    torch.manual_seed(random_state)
    # Batches of 256 rows through a small MLP: thread start-up costs more than it saves, and
    # on a busy machine spinning intra-op threads make training several times slower.
    with torch_threads(1):
        return _train(X, y, epochs, hidden, random_state)


def _train(X, y, epochs, hidden, random_state):
    import torch

    pre = credit_preprocess(X)
    Z = torch.tensor(np.asarray(pre.transform(X), dtype=np.float32))
    t = torch.tensor((np.asarray(y) == CLASSES[1]).astype(np.int64))
    layers: list[torch.nn.Module] = []
    width = Z.shape[1]
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    layers.append(torch.nn.Linear(width, len(CLASSES)))
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-5)
    g = torch.Generator().manual_seed(random_state)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(Z), generator=g)
        for i in range(0, len(Z), 256):
            idx = perm[i : i + 256]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(Z[idx]), t[idx])
            loss.backward()
            opt.step()
    net.eval()
    return net, pre
