"""The Dask backend: every result computed on a LocalCluster of two worker processes equals the
single-process result computed here on an oracle in the same state."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("distributed")

from pellucid import DecisionTree, Oracle, cluster, distill  # noqa: E402
from pellucid.errors import ModelError, ParameterError  # noqa: E402

COLS = ["a", "b", "c", "d", "e", "f"]


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    lc = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    c = Client(lc)
    yield c
    c.close()
    lc.close()


def _net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(len(COLS), 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, len(COLS))) * [1, 2, 0.5, 1, 3, 1] + [0, 1, 0, 0, 5, 2], columns=COLS)


def _pair(seed: int = 0) -> tuple[Oracle, Oracle]:
    """Two oracles of one network, both fresh: one for each backend."""
    net = _net(seed)
    return (Oracle(net, task="classification", classes=["x", "y", "z"], verbose=0),
            Oracle(net, task="classification", classes=["x", "y", "z"], verbose=0))


def _primed(seed: int = 0) -> tuple[Oracle, Oracle]:
    one, two = _pair(seed)
    head = _table(8, seed=99)
    one.query(head), two.query(head)
    return one, two


def test_connect_errors_and_pass_through(client):
    assert cluster.connect(client) is client
    with pytest.raises(ParameterError, match="cannot read 'nonsense' as a Dask cluster"):
        cluster.connect("nonsense")
    with pytest.raises(ParameterError, match="needs N >= 1"):
        cluster.connect("local:0")
    with pytest.raises(ParameterError, match="got int"):
        cluster.connect(8786)


def test_query_equals_one_process_and_counts(client):
    rows = _table(30_000)
    one, two = _pair()
    want = one.query(rows)
    got = cluster.query(two, rows, client, partitions=5)
    np.testing.assert_array_equal(got, want)  # bit for bit: every row in the same batch
    assert (two.n_queries, two.n_calls) == (one.n_queries, one.n_calls)
    # A dask DataFrame with partitions that cut the oracle's blocks anywhere.
    import dask.dataframe as dd

    ddf = dd.from_pandas(rows, npartitions=7)
    np.testing.assert_array_equal(cluster.query(two, ddf, client), one.query(rows))
    assert two.n_queries == one.n_queries


def test_unpicklable_model_is_named(client):
    class Locked:
        def __init__(self):
            self.lock = threading.Lock()

        def __call__(self, X):
            return np.zeros(len(X))

    oracle = Oracle(Locked(), task="regression", verbose=0)
    with pytest.raises(ModelError, match="cannot be sent to the Dask workers"):
        cluster.query(oracle, _table(3000), client)


def test_lime_pieces_equal_one_call(client):
    rows, ref = _table(24, seed=1), _table(2000, seed=2)
    one, two = _primed()
    from pellucid.surrogates.lime_local import lime

    want = lime(one, rows, ref, num_samples=300, random_state=3, chunk_rows=4)
    got = cluster.explain_rows(two, rows, client, reference=ref, method="lime", rows_per_task=8, num_samples=300,
                               random_state=3, chunk_rows=4)
    for key in ("coef", "coef_raw", "contributions", "representation", "rows"):
        pd.testing.assert_frame_equal(getattr(got, key), getattr(want, key))
    for key in ("intercept", "local_r2", "score", "prediction_local", "prediction_network", "target"):
        pd.testing.assert_series_equal(getattr(got, key), getattr(want, key))
    assert got.params == want.params and got.reasons(3).equals(want.reasons(3))
    assert two.n_queries == one.n_queries


def test_anchors_and_local_summary_equal_one_process(client):
    from pellucid.surrogates.anchors import anchors
    from pellucid.surrogates.local_summary import summarise_local

    rows, ref = _table(6, seed=4), _table(1500, seed=5)
    one, two = _primed()
    want = anchors(one, rows, ref, precision=0.9, max_length=3, random_state=2)
    got = cluster.explain_rows(two, rows, client, reference=ref, method="anchors", rows_per_task=2, precision=0.9,
                               max_length=3, random_state=2)
    assert [a.to_dict() for a in got] == [a.to_dict() for a in want]
    why = [f"row {i}" for i in range(len(rows))]
    want = summarise_local(one, rows, why, ref, num_samples=400, random_state=1)
    got = cluster.summarise_local(two, rows, why, ref, client, num_samples=400, random_state=1)
    assert got == want


def test_attributions_equal_one_process(client):
    from pellucid.attribution import METHODS

    rows = _table(40, seed=6)
    # Rows go through the network stacked by the piece: passes of other sizes may round the
    # same row's gradient otherwise (a few ulp), so a double-precision network holds them to 1e-12.
    net = _net(0).double()
    one, two = (Oracle(net, task="classification", verbose=0) for _ in range(2))
    one.query(rows.iloc[:3]), two.query(rows.iloc[:3])
    want = METHODS["integrated_gradients"](one, rows, baseline="median", reference=rows)
    got = cluster.attribute(two, rows, client, method="integrated_gradients", rows_per_task=15, baseline="median")
    np.testing.assert_allclose(got.values, want.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.delta, want.delta, rtol=0, atol=1e-12)
    assert got.features == want.features and got.params == want.params
    np.testing.assert_array_equal(got.targets, want.targets)
    # Shapley values: the background drawn once from the whole table, each row's draws seeded by its label.
    want = METHODS["shapley"](one, rows, reference=rows, random_state=2, shapley_method="permutation", n_samples=60)
    got = cluster.attribute(two, rows, client, method="shapley", rows_per_task=15, random_state=2,
                            shapley_method="permutation", n_samples=60)
    np.testing.assert_allclose(got.values, want.values, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.standard_error, want.standard_error, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.base_value, want.base_value, rtol=0, atol=1e-12)
    # SmoothGrad's noise is one stream through the rows (captum's order): it runs whole.
    want = METHODS["smoothgrad"](one, rows, random_state=4, reference=rows)
    got = cluster.attribute(two, rows, client, method="smoothgrad", random_state=4)
    np.testing.assert_array_equal(got.values, want.values)


def test_attribution_summary_equals_one_process(client):
    from pellucid.attribution.summary import summarise

    rows = _table(60, seed=7)
    one, two = _primed()
    dset = distill(one, _table(600, seed=8), strategy="observed", random_state=0)
    tree = DecisionTree(max_leaf_nodes=6, random_state=0).fit(dset)
    kw = dict(methods=["saliency", "integrated_gradients", "occlusion", "shapley"], surrogates=[tree], surrogate_labels=["t"],
              distillation=dset, max_rows=50, random_state=0)
    want = summarise(one, rows, **kw)
    got = cluster.summarise_attributions(two, rows, client, **kw)
    for m in want["methods"] + got["methods"]:
        m.pop("seconds")
    assert got == want


def test_fidelity_over_a_large_holdout_equals_one_process(client):
    from pellucid.fidelity import evaluate

    one, two = _primed()
    dset = distill(one, _table(800, seed=9), strategy="observed", random_state=0)
    tree = DecisionTree(max_leaf_nodes=8, random_state=0).fit(dset)
    hold = _table(40_000, seed=10)
    want = evaluate(tree, one, hold, chunk_rows=5000).to_dict()
    got = cluster.evaluate(tree, two, hold, client, chunk_rows=5000).to_dict()
    # Counts are exact; R² merges sums of squares of partitions (another order of float sums).
    assert got.pop("r2") == pytest.approx(want.pop("r2"), abs=1e-12)
    assert got == want


def test_the_frontier_and_stability_on_a_dask_executor_equal_one_process(client):
    """Executor.map sends every fit and refit to the cluster (the distillation set once); the
    frontier and the stability are the ones one process gives."""
    from pellucid.executor import DaskExecutor, LocalExecutor, make_executor
    from pellucid.fidelity import frontier, stability

    oracle, _ = _pair(3)
    dset = distill(oracle, _table(400, seed=3), strategy=["observed", "perturb"], n=400, random_state=0)
    on_dask = DaskExecutor(client)
    assert make_executor(None, client).client is client and isinstance(make_executor(2), LocalExecutor)
    here = frontier(dset, candidates=["decision_tree"], sizes=(2, 4), verbose=0).table()
    there = frontier(dset, candidates=["decision_tree"], sizes=(2, 4), verbose=0, executor=on_dask).table()
    pd.testing.assert_frame_equal(here.drop(columns="fit_seconds"), there.drop(columns="fit_seconds"))
    tree = DecisionTree(max_leaf_nodes=4).fit(dset)
    a = stability(tree, dset, n_boot=4, random_state=1, verbose=0).to_dict()
    b = stability(tree, dset, n_boot=4, random_state=1, verbose=0, executor=on_dask).to_dict()
    assert a == b
    # Refits sent from a background thread (as explain does while it goes on) too.
    from pellucid.fidelity.stability import start_stabilities

    assert on_dask.runs_elsewhere()
    [c] = start_stabilities([(tree, dset)], n_boot=4, random_state=1, executor=on_dask).result()
    assert c.to_dict() == a
    on_dask.close()  # a client given is the caller's: not closed
    assert client.status == "running"
    assert on_dask.backend()["name"] == "dask" and LocalExecutor().backend() == {"name": "local"}


def test_reasons_on_the_workers_equal_one_process(client):
    """Principal reasons chunk by chunk on the workers: the same tables, value for value, in
    the order of the rows, and the caller's oracle counts the workers' queries."""
    from pellucid.attribution.decision_reasons import explain_chunks, reason_plan

    one, two = _pair(3)
    rows = _table(700, seed=4)
    plan_here = reason_plan(one, rows, adverse_class="z", background_rows=20, random_state=2)
    plan_there = reason_plan(two, rows, adverse_class="z", background_rows=20, random_state=2)
    start_here, start_there = one.n_queries, two.n_queries
    here = pd.concat(list(explain_chunks(plan_here, rows, 250)))
    there = pd.concat(list(cluster.reasons_chunks(plan_there, rows, client, chunk_rows=250)))
    assert there["adverse"].any() and there["reason_1"].notna().any()
    pd.testing.assert_frame_equal(there, here, check_exact=True)
    assert two.n_queries - start_there == one.n_queries - start_here > 0
