"""Active boundary sampling: rows inside the schema, every row queried once and kept, the
holdout out of reach, the same seed giving the same set, and rows that crowd near the
network's decision boundary while their importance weights keep the data's distribution."""

import json

import numpy as np
import pandas as pd
import pytest

from pellucid.errors import ParameterError
from pellucid.extraction import ACTIVE_SAMPLERS, SAMPLERS, distill
from pellucid.oracle import Oracle
from pellucid.schema import Schema

from .conftest import mixed_frame
from .test_distill import check_inside_schema


def _score(d: pd.DataFrame) -> np.ndarray:
    """A function of every feature kind of ``mixed_frame``, missing values included."""
    x = d["x"].to_numpy(dtype=float)
    x = np.where(np.isnan(x), 10.0, x)
    color = d["color"].to_numpy(dtype=object)
    age, flag = d["age"].to_numpy(dtype=float), d["flag"].to_numpy(dtype=float)
    return (x - 10.0) / 2 + 0.8 * (color == "red") - 0.05 * (age - 50) + flag


class Recorder:
    """A callable model that remembers the size of every batch it is asked about."""

    def __init__(self, task: str = "classification", k: int = 2) -> None:
        self.task, self.k, self.calls = task, k, []

    def __call__(self, d: pd.DataFrame) -> np.ndarray:
        self.calls.append(len(d))
        s = _score(d)
        if self.task == "regression":
            return s
        logits = np.column_stack([s * (j - (self.k - 1) / 2) for j in range(self.k)])
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def make_oracle(task: str = "classification", k: int = 2) -> tuple[Oracle, Recorder]:
    model = Recorder(task, k)
    # One batch per query, whatever its size, so that model calls count queries.
    kw = {"classes": list(range(k))} if task == "classification" else {}
    return Oracle(model, task=task, batch_size=10**6, verbose=0, **kw), model


def test_boundary_is_an_active_strategy():
    assert "boundary" in ACTIVE_SAMPLERS and "boundary" not in SAMPLERS
    with pytest.raises(ParameterError, match="unknown distillation strategy.*available.*boundary"):
        distill(make_oracle()[0], mixed_frame(50), strategy="bondary")


@pytest.mark.parametrize("strategy", [{"boundary": 900}, ["observed", "perturb", "boundary"]])
def test_boundary_rows_stay_inside_the_schema(strategy):
    df = mixed_frame(400)
    schema = Schema.from_frame(df)
    d = distill(make_oracle()[0], df, strategy=strategy, n=None if isinstance(strategy, dict) else 1800, random_state=0)
    rows = d.rows[d.source == "boundary"].reset_index(drop=True)
    assert len(rows) == 900
    check_inside_schema(schema, rows)
    schema.validate(rows)
    # Missing values of the rows they were drawn near stay missing (at a rate that follows
    # where the anchors are, not the data's 10%).
    assert 0.01 < rows["x"].isna().mean() < 0.25
    assert rows["color"].isna().any()
    # Jittered, not copied: numeric values are new.
    assert np.isin(rows["x"].dropna(), df["x"].dropna()).mean() < 0.05


@pytest.mark.parametrize("task, k", [("classification", 2), ("classification", 3), ("regression", 1)])
def test_counts_sources_queries_and_rounds(task, k):
    oracle, model = make_oracle(task, k)
    d = distill(
        oracle, mixed_frame(400), strategy=["observed", "perturb", "marginal", "boundary"], n=750,
        sampler_params={"boundary": {"rounds": 5}}, random_state=3,
    )
    train = pd.Series(d.source[~d.is_holdout]).value_counts().to_dict()
    assert train == {"observed": 300, "perturb": 250, "marginal": 250, "boundary": 250}
    assert d.is_holdout.sum() == 100 and set(d.source[d.is_holdout]) == {"observed"}
    # Every row sent to the network is in the set: passive rows and holdout in one batch,
    # then one batch per round.
    assert d.n_queries == oracle.n_queries == len(d) == sum(model.calls) == 1150
    assert model.calls == [900, 50, 50, 50, 50, 50]
    # The outputs are the network's answers on the rows.
    np.testing.assert_allclose(d.outputs, oracle.query(d.rows))
    assert d.outputs.shape == ((1150, k) if task == "classification" else (1150,))
    # The rounds are recorded, JSON-ready, for the report.
    info = d.summary()["active"]["boundary"]
    json.dumps(info)
    assert [r["n_rows"] for r in info["rounds"]] == [50] * 5
    # Its tree fits on every training row queried before the round but the 60 validation rows
    # (20% of the 300 observed training rows), which no sampler sees.
    assert d.is_validation.sum() == 60
    assert [r["n_fit"] for r in info["rounds"]] == [740, 790, 840, 890, 940]
    key = "disagreement" if task == "classification" else "mean_abs_error"
    errors = [r[key] for r in info["rounds"]] + [r[f"new_{key}"] for r in info["rounds"]]
    assert all(e is not None and e >= 0 for e in errors)
    if task == "classification":
        assert all(e <= 1 for e in errors)
    assert info["settings"]["rounds"] == 5
    # Importance weights: positive, bounded; other rows weigh 1.
    w = d.weights[d.source == "boundary"]
    assert np.all(w > 0) and np.all(np.isfinite(w)) and w.std() > 0
    assert np.all(d.weights[d.source != "boundary"] == 1)


def test_boundary_alone_starts_from_jittered_observed_rows():
    oracle, model = make_oracle()
    d = distill(oracle, mixed_frame(200), strategy={"boundary": 3}, sampler_params={"boundary": {"rounds": 8}})
    # Fewer rows than rounds: one row a round.
    assert model.calls == [50, 1, 1, 1]
    rounds = d.params["active"]["boundary"]["rounds"]
    assert rounds[0]["n_fit"] == 0 and rounds[0]["disagreement"] is None
    assert [r["n_fit"] for r in rounds] == [0, 1, 2]
    assert len(d) == d.n_queries == 53


def test_the_holdout_is_untouched_and_cannot_steer_the_rows():
    df = mixed_frame(400)
    schema = Schema.from_frame(df)
    oracle = make_oracle()[0]
    b = distill(oracle, df, strategy=["observed", "boundary"], n=600, schema=schema, random_state=5)
    o = distill(oracle, df, strategy="observed", schema=schema, random_state=5)
    pm = distill(oracle, df, strategy=["observed", "perturb", "marginal"], n=600, schema=schema, random_state=5)
    for other in (o, pm):
        pd.testing.assert_frame_equal(b.holdout.rows, other.holdout.rows)
        np.testing.assert_array_equal(b.holdout.origin, other.holdout.origin)
        np.testing.assert_allclose(b.holdout.outputs, other.holdout.outputs)
    # Replace the held-out rows by other rows: the rows boundary draws do not change.
    changed = df.copy()
    hold = b.holdout.origin
    donors = np.setdiff1d(np.arange(len(df)), hold)[: len(hold)][::-1]
    changed.iloc[hold] = df.iloc[donors].to_numpy()
    b2 = distill(oracle, changed, strategy=["observed", "boundary"], n=600, schema=schema, random_state=5)
    assert not b2.holdout.rows.equals(b.holdout.rows)
    pd.testing.assert_frame_equal(b2.train.rows, b.train.rows)
    np.testing.assert_array_equal(b2.train.weights, b.train.weights)


def test_same_seed_same_set_other_seed_other_set():
    df = mixed_frame(300)
    runs = [
        distill(make_oracle()[0], df, strategy=["observed", "marginal", "boundary"], n=600, random_state=s)
        for s in (7, 7, 8)
    ]
    a, b, c = runs
    pd.testing.assert_frame_equal(a.rows, b.rows)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.params["active"] == b.params["active"]
    assert not a.rows[a.source == "boundary"].reset_index(drop=True).equals(
        c.rows[c.source == "boundary"].reset_index(drop=True)
    )


def diagonal_problem(n: int = 600):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x0": rng.normal(size=n), "x1": rng.normal(size=n), "c": rng.choice(["a", "b", "c"], n)})

    def net(d: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-8 * (d["x0"] + d["x1"]).to_numpy()))
        return np.column_stack([1 - p, p])

    return df, Oracle(net, task="classification", classes=[0, 1], verbose=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_boundary_rows_crowd_near_the_decision_boundary(seed):
    # The network's label is x0 + x1 > 0, which an axis-aligned tree can only approximate.
    df, oracle = diagonal_problem()
    b = distill(oracle, df, strategy=["observed", "boundary"], n=1000, random_state=seed)
    m = distill(oracle, df, strategy={"marginal": 1000}, random_state=seed)
    rows, w = b.rows[b.source == "boundary"], b.weights[b.source == "boundary"]
    dist_b = (rows["x0"] + rows["x1"]).abs().to_numpy()
    dist_m = (m.rows["x0"] + m.rows["x1"]).abs()[m.source == "marginal"].to_numpy()
    dist_obs = (df["x0"] + df["x1"]).abs().to_numpy()
    assert dist_b.mean() < 0.8 * dist_m.mean()
    # New rows land where the internal tree errs far more often than on the rows it knows.
    rounds = b.params["active"]["boundary"]["rounds"]
    assert np.mean([r["new_disagreement"] for r in rounds]) > 2 * np.mean([r["disagreement"] for r in rounds])
    # Importance weights give the boundary rows the data's distribution back.
    assert abs(np.average(dist_b, weights=w) / dist_obs.mean() - 1) < 0.15
    # Without weights (TREPAN's way), more crowding still, and every row weighs 1.
    plain = distill(
        oracle, df, strategy=["observed", "boundary"], n=1000, random_state=seed,
        sampler_params={"boundary": {"weighting": "none", "explore_share": 0.1}},
    )
    rows_p = plain.rows[plain.source == "boundary"]
    assert (rows_p["x0"] + rows_p["x1"]).abs().mean() < dist_b.mean()
    assert np.all(plain.weights == 1)


@pytest.mark.parametrize(
    "options, pattern",
    [
        ({"rounds": 0}, "boundary sampling: rounds must be a whole number of 1 or more, got 0"),
        ({"rounds": 2.5}, "rounds must be a whole number"),
        ({"scale": -0.1}, "scale must be a number above 0, got -0.1"),
        ({"explore_share": 0}, "explore_share must be a number above 0 and at most 1, got 0"),
        ({"pool_share": 1.5}, "pool_share must be a number from 0 to 1, got 1.5"),
        ({"p_categorical": -1}, "p_categorical"),
        ({"max_leaf_nodes": 1}, "max_leaf_nodes must be a whole number of 2 or more, got 1"),
        ({"weighting": "inverse"}, "weighting must be 'importance' or 'none', got 'inverse'"),
        ({"round": 3}, r"unknown option \['round'\] for sampler 'boundary'"),
        ({"oracle": None}, r"unknown option \['oracle'\]"),
    ],
)
def test_bad_options_are_named(options, pattern):
    with pytest.raises(ParameterError, match=pattern):
        distill(make_oracle()[0], mixed_frame(60), strategy=["observed", "boundary"], n=50,
                sampler_params={"boundary": options})


def test_sampler_params_for_an_unknown_sampler():
    with pytest.raises(ParameterError, match="unknown sampler 'boundry'"):
        distill(make_oracle()[0], mixed_frame(60), n=50, sampler_params={"boundry": {"rounds": 3}})
