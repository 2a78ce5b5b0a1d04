"""Networks and tables the rule benchmarks share, and the peers fitted beside pellucid.

Each task trains a small torch network on one table and gives pellucid *another* table from
the same source to explain it with (an audit's situation: the rows the model meets), except the
breast-cancer task, whose 569 rows are all there is.

* ``credit``: pellucid's embedded example (11 mixed features, missing values, known rules);
* ``breast_cancer``: scikit-learn's bundled diagnostic set (30 numeric features);
* ``known_rules``: generated data whose label is a known set of threshold rules
  (:data:`KNOWN_RULES`), for checking that extracted thresholds land on the truth;
* ``wide``: 60 generated numeric features (10 informative, 10 mixtures of them);
* ``multiclass``: scikit-learn's bundled digits (64 pixel columns, 10 classes);
* ``regression``: a Friedman-1 style function of 5 of 10 features plus a categorical shift.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from pellucid import Oracle
from pellucid._device import torch_threads
from pellucid.demo import CLASSES, TARGET, make_credit, train_credit_network


@dataclass
class Task:
    name: str
    oracle: Oracle
    reference: pd.DataFrame
    task: str
    notes: str = ""
    truth: dict[str, Any] = field(default_factory=dict)


def _train_mlp(Z: np.ndarray, y: np.ndarray, task: str, seed: int, epochs: int = 60, hidden=(64, 32)):
    import torch

    torch.manual_seed(seed)
    with torch_threads(1):
        Zt = torch.tensor(Z, dtype=torch.float32)
        n_out = int(y.max()) + 1 if task == "classification" else 1
        yt = torch.tensor(y, dtype=torch.int64 if task == "classification" else torch.float32)
        layers: list[torch.nn.Module] = []
        width = Z.shape[1]
        for h in hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
            width = h
        layers.append(torch.nn.Linear(width, n_out))
        if task == "regression":
            layers.append(torch.nn.Flatten(0))
        net = torch.nn.Sequential(*layers)
        opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-5)
        g = torch.Generator().manual_seed(seed)
        loss_fn = torch.nn.functional.cross_entropy if task == "classification" else torch.nn.functional.mse_loss
        for _ in range(epochs):
            perm = torch.randperm(len(Zt), generator=g)
            for i in range(0, len(Zt), 128):
                idx = perm[i : i + 128]
                opt.zero_grad()
                loss_fn(net(Zt[idx]), yt[idx]).backward()
                opt.step()
        return net.eval()


def credit(seed: int = 0, rows: int = 3000) -> Task:
    train = make_credit(5000, random_state=5_000 + seed)
    net, pre = train_credit_network(train.drop(columns=TARGET), train[TARGET], random_state=seed)
    oracle = Oracle(net, preprocess=pre, task="classification", classes=list(CLASSES))
    X = make_credit(rows, random_state=seed).drop(columns=TARGET)
    return Task("credit", oracle, X, "classification", "the demo's network and table")


def breast_cancer(seed: int = 0) -> Task:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target.to_numpy()
    Xtr, _, ytr, _ = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    pre = StandardScaler().fit(Xtr)
    net = _train_mlp(pre.transform(Xtr), ytr, "classification", seed, epochs=80)
    oracle = Oracle(net, preprocess=pre, task="classification", classes=list(data.target_names))
    return Task("breast_cancer", oracle, X, "classification", "scikit-learn's breast-cancer set, all 569 rows")


#: The label of ``known_rules``: positive when either rule holds (thresholds in raw units).
KNOWN_RULES = {
    "rules": "(pressure > 180 and temperature <= 42.5) or (flow >= 7.5 and grade in {A, B})",
    "thresholds": {"pressure": 180.0, "temperature": 42.5, "flow": 7.5},
    "ranges": {"pressure": (100.0, 250.0), "temperature": (20.0, 80.0), "flow": (0.0, 12.0)},
}


def make_known_rules(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lo, hi = zip(*KNOWN_RULES["ranges"].values())
    df = pd.DataFrame(
        {
            "pressure": np.round(rng.uniform(lo[0], hi[0], n), 1),
            "temperature": np.round(rng.uniform(lo[1], hi[1], n), 2),
            "flow": np.round(rng.uniform(lo[2], hi[2], n), 3),
            "grade": rng.choice(["A", "B", "C", "D"], n).astype(object),
            "humidity": np.round(rng.uniform(0, 100, n), 1),
            "speed": rng.normal(50, 10, n),
            "batch": rng.integers(1, 20, n),
            "line": rng.choice(["north", "south", "east"], n).astype(object),
        }
    )
    y = ((df.pressure > 180) & (df.temperature <= 42.5)) | ((df.flow >= 7.5) & df.grade.isin(["A", "B"]))
    df["label"] = np.where(y, "positive", "negative").astype(object)
    return df


def _onehot_scaler(X: pd.DataFrame):
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cats = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c].dtype)]
    nums = [c for c in X.columns if c not in cats]
    return ColumnTransformer(
        [("num", StandardScaler(), nums), ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cats)]
    ).fit(X)


def known_rules(seed: int = 0, rows: int = 3000, make: Callable[[int, int], pd.DataFrame] = make_known_rules) -> Task:
    """The network trained on ``make(10_000, 7_000 + seed)``'s label; ``rows`` of ``make``'s
    table (seeded by ``seed``) as the reference rows."""
    train = make(10_000, 7_000 + seed)
    X = train.drop(columns="label")
    pre = _onehot_scaler(X)
    y = (train["label"] == "positive").to_numpy().astype(int)
    net = _train_mlp(pre.transform(X), y, "classification", seed, epochs=40)
    oracle = Oracle(net, preprocess=pre, task="classification", classes=["negative", "positive"])
    ref = make(rows, seed).drop(columns="label")
    return Task("known_rules", oracle, ref, "classification", KNOWN_RULES["rules"], truth=KNOWN_RULES)


def make_friedman(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    U = rng.uniform(0, 1, (n, 10))
    df = pd.DataFrame(U, columns=[f"x{i}" for i in range(10)])
    df["site"] = rng.choice(["a", "b", "c"], n).astype(object)
    y = 10 * np.sin(np.pi * U[:, 0] * U[:, 1]) + 20 * (U[:, 2] - 0.5) ** 2 + 10 * U[:, 3] + 5 * U[:, 4]
    y = y + np.where(df["site"] == "c", 3.0, 0.0) + rng.normal(0, 0.5, n)
    df["y"] = y
    return df


def regression(seed: int = 0, rows: int = 3000) -> Task:
    train = make_friedman(10_000, 9_000 + seed)
    X = train.drop(columns="y")
    pre = _onehot_scaler(X)
    net = _train_mlp(pre.transform(X), train["y"].to_numpy(), "regression", seed, epochs=40)
    oracle = Oracle(net, preprocess=pre, task="regression")
    ref = make_friedman(rows, seed).drop(columns="y")
    return Task("regression", oracle, ref, "regression", "Friedman-1 of x0..x4 plus a shift for site c")


def make_wide(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """60 numeric columns, 10 of them informative and 10 their mixtures, two classes."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n, n_features=60, n_informative=10, n_redundant=10, n_clusters_per_class=3,
                               flip_y=0.02, class_sep=1.0, random_state=seed)
    return pd.DataFrame(np.round(X, 3), columns=[f"f{i:02d}" for i in range(60)]), y


def wide(seed: int = 0, rows: int = 3000) -> Task:
    from sklearn.preprocessing import StandardScaler

    # One generator call for the network's rows and the audit's: the same distribution.
    X, y = make_wide(10_000 + rows, 11_000 + seed)
    Xtr, ytr = X.iloc[:10_000], y[:10_000]
    pre = StandardScaler().fit(Xtr)
    net = _train_mlp(pre.transform(Xtr), ytr, "classification", seed, epochs=30)
    oracle = Oracle(net, preprocess=pre, task="classification", classes=["no", "yes"])
    ref = X.iloc[10_000:].reset_index(drop=True)
    return Task("wide", oracle, ref, "classification", "60 generated numeric features, 20 of them informative")


def multiclass(seed: int = 0) -> Task:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    data = load_digits(as_frame=True)
    X, y = data.data.astype(float), data.target.to_numpy()
    Xtr, _, ytr, _ = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    pre = StandardScaler().fit(Xtr)
    net = _train_mlp(pre.transform(Xtr), ytr, "classification", seed, epochs=60)
    oracle = Oracle(net, preprocess=pre, task="classification", classes=[str(c) for c in range(10)])
    return Task("multiclass", oracle, X, "classification", "scikit-learn's digits: 64 pixel columns, 10 classes")


TASKS: dict[str, Callable[..., Task]] = {
    "credit": credit,
    "breast_cancer": breast_cancer,
    "wide": wide,
    "multiclass": multiclass,
    "known_rules": known_rules,
    "regression": regression,
}


# ---------------------------------------------------------------------- peers
def peer_encoder(X: pd.DataFrame):
    """What a user of a single library does by hand: median-impute numerics, one-hot encode
    categoricals with missing as a level."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    cats = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c].dtype)]
    nums = [c for c in X.columns if c not in cats]
    parts = [("num", SimpleImputer(strategy="median"), nums)]
    if cats:
        parts.append(
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                cats,
            )
        )
    return ColumnTransformer(parts).fit(X)


def peers(task: str, k: int, seed: int, every: bool = True) -> dict[str, Callable[[], Any]]:
    """Peer model factories at a budget of ``k`` rules (each library's own size knob): every one,
    or (``every=False``) scikit-learn's tree, FIGS, RuleFit, GreedyRuleList and HSTree."""
    import imodels
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    main = ("sklearn_tree", "imodels_FIGS", "imodels_RuleFit", "imodels_GreedyRuleList", "imodels_HSTree")
    if not every:
        return {n: f for n, f in peers(task, k, seed).items() if n in main}
    if task == "classification":
        return {
            "sklearn_tree": lambda: DecisionTreeClassifier(max_leaf_nodes=k, random_state=seed),
            "imodels_FIGS": lambda: imodels.FIGSClassifier(max_rules=k, random_state=seed),
            "imodels_RuleFit": lambda: imodels.RuleFitClassifier(max_rules=k, random_state=seed),
            "imodels_BoostedRules": lambda: imodels.BoostedRulesClassifier(n_estimators=k, random_state=seed),
            "imodels_GreedyRuleList": lambda: imodels.GreedyRuleListClassifier(max_depth=k),
            "imodels_HSTree": lambda: imodels.HSTreeClassifier(
                DecisionTreeClassifier(max_leaf_nodes=k, random_state=seed)
            ),
            "imodels_C45": lambda: imodels.C45TreeClassifier(max_rules=k),
            "imodels_Slipper": lambda: imodels.SlipperClassifier(n_estimators=k),
        }
    return {
        "sklearn_tree": lambda: DecisionTreeRegressor(max_leaf_nodes=k, random_state=seed),
        "imodels_FIGS": lambda: imodels.FIGSRegressor(max_rules=k, random_state=seed),
        "imodels_RuleFit": lambda: imodels.RuleFitRegressor(max_rules=k, random_state=seed),
        "imodels_BoostedRules": lambda: imodels.BoostedRulesRegressor(n_estimators=k, random_state=seed),
        "imodels_HSTree": lambda: imodels.HSTreeRegressor(DecisionTreeRegressor(max_leaf_nodes=k, random_state=seed)),
    }


def fit_peer(factory: Callable[[], Any], X: np.ndarray, y: np.ndarray, max_seconds: float = 120.0):
    """Fit one peer; its fit time, or the error it raised."""
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = factory().fit(X, y)
        except Exception as e:  # a peer that fails is reported, not fatal
            return None, time.perf_counter() - t, f"{type(e).__name__}: {e}"[:200]
    return model, time.perf_counter() - t, None


def peer_mlp():
    """Exactly the network of shared/anchors/peer_baselines.py: (net, Xtr, Xte, yte), standardised float32."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    torch.manual_seed(0)
    np.random.seed(0)
    X, y = make_classification(n_samples=20000, n_features=20, n_informative=8, random_state=0)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    net = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 2))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    Xt, yt = torch.tensor(Xtr), torch.tensor(ytr)
    for _ in range(15):
        perm = torch.randperm(len(Xt))
        for i in range(0, len(Xt), 256):
            idx = perm[i:i + 256]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(Xt[idx]), yt[idx]).backward()
            opt.step()
    return net.eval(), Xtr, Xte, yte


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """The shortest wall time of ``repeats`` calls of ``fn`` (seconds), and its last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def write_results(out_dir: str | Path, stem: str, data: Any, markdown: str) -> None:
    """Write a benchmark's ``STEM.json`` (the numbers) and ``STEM.md`` (its table) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (out / f"{stem}.md").write_text(markdown.rstrip("\n") + "\n")
