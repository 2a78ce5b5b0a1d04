import json

import numpy as np
import pandas as pd
import pytest

from pellucid.errors import ParameterError
from pellucid.fidelity import Frontier, FrontierEntry, evaluate, frontier, pareto_flags
from pellucid.surrogates import SURROGATES, DecisionTree, Surrogate

from .test_stability import step_set, wiggly_set


class Broken(Surrogate):
    """A surrogate that always fails to fit."""

    name = "broken"
    size_param = "max_rules"

    def __init__(self, max_rules: int = 4, random_state: int | None = 0) -> None:
        self.max_rules = max_rules
        self.random_state = random_state

    def _fit(self, train):
        raise RuntimeError(f"cannot fit with max_rules={self.max_rules}")


def entry(name, rules, score, conditions=None, error=None):
    return FrontierEntry(
        candidate=name,
        size=rules,
        n_rules=None if error else rules,
        n_conditions=None if error else (rules if conditions is None else conditions),
        score=None if error else score,
        error=error,
    )


@pytest.fixture
def hand_built():
    return Frontier(
        [
            entry("a", 2, 0.80),
            entry("b", 4, 0.90, conditions=7),
            entry("c", 4, 0.85, conditions=6),  # dominated by b
            entry("k", 4, 0.88, conditions=5),  # dominated by b
            entry("d", 8, 0.90),  # dominated by b: more rules, same score
            entry("e", 8, 0.95),
            entry("f", 3, 0.80),  # dominated by a
            entry("g", 16, 0.95),  # dominated by e
            entry("h", 2, 0.80),  # equal to a: neither dominates the other
            entry("i", 1, 0.99, error="RuntimeError: boom"),
            entry("j", 4, 0.90, conditions=5),  # equal to b in rules and score, fewer conditions
        ],
        task="classification",
    )


def brute_pareto(entries):
    ok = [e for e in entries if e.error is None]
    out = set()
    for e in ok:
        better = [
            o
            for o in ok
            if (o.n_rules, -o.score) != (e.n_rules, -e.score) and o.n_rules <= e.n_rules and o.score >= e.score
        ]
        if not better:
            out.add(e.candidate)
    return out


def test_pareto_set_on_hand_built_entries(hand_built):
    on = {e.candidate for e in hand_built.entries if e.pareto}
    assert on == {"a", "h", "b", "j", "e"}
    assert on == brute_pareto(hand_built.entries)
    assert [e.candidate for e in hand_built.pareto][:2] in (["a", "h"], ["h", "a"])
    assert [e.candidate for e in hand_built.failed] == ["i"]


def test_pareto_flags_on_random_entries():
    rng = np.random.default_rng(0)
    for _ in range(20):
        es = [entry(str(k), int(rng.integers(1, 6)), float(rng.integers(0, 5)) / 4) for k in range(12)]
        assert {e.candidate for e, f in zip(es, pareto_flags(es), strict=True) if f} == brute_pareto(es)


def test_select_semantics(hand_built):
    # Most faithful overall: e and g tie at 0.95, e has fewer rules.
    assert hand_built.select().candidate == "e"
    # Within 4 rules: b and j tie in rules and score; j has fewer conditions.
    assert hand_built.select(max_rules=4).candidate == "j"
    assert hand_built.select(max_rules=3).candidate == "a"
    # Smallest reaching a floor: 0.85 is reached by c, k, b, j (4 rules); fewest conditions
    # (k and j, 5) and then the higher fidelity (j) win.
    assert hand_built.select(min_agreement=0.85).candidate == "j"
    assert hand_built.select(min_agreement=0.86, max_rules=4).candidate == "j"
    assert hand_built.select(min_agreement=0.95).candidate == "e"
    assert hand_built.select(min_agreement=0.8).candidate == "a"
    # The failed entry, with one rule and 0.99, is never chosen.
    assert hand_built.select(max_rules=8, min_agreement=0.9).candidate == "j"


def test_select_says_what_is_available(hand_built):
    with pytest.raises(ParameterError) as err:
        hand_built.select(max_rules=4, min_agreement=0.99)
    msg = str(err.value)
    assert "at most 4 rules reaches agreement 0.99" in msg
    assert "the best within 4 rules is j (4 rules) at 0.9" in msg
    with pytest.raises(ParameterError, match="at most 1 rules; the smallest is a \\(2 rules\\) at 0.8"):
        hand_built.select(max_rules=1)
    with pytest.raises(ParameterError, match="reaches agreement 0.999; the best is e \\(8 rules\\) at 0.95"):
        hand_built.select(min_agreement=0.999)
    with pytest.raises(ParameterError, match="min_r2 is for a regression"):
        hand_built.select(min_r2=0.5)
    with pytest.raises(ParameterError, match="max_rules.*-1"):
        hand_built.select(max_rules=-1)
    everything_failed = Frontier([entry("x", 1, 0.0, error="ValueError: nope")], task="classification")
    with pytest.raises(ParameterError, match="x \\(size 1\\): ValueError: nope"):
        everything_failed.select()


@pytest.fixture(scope="module")
def wiggly():
    return wiggly_set(n=400)


def test_frontier_fits_each_size_and_measures_on_the_holdout(wiggly):
    d = wiggly
    f = frontier(d, candidates=[DecisionTree], sizes=(8, 2, 4), verbose=0, validation=None)
    assert f.sizes == (2, 4, 8) and f.measure == "agreement"
    assert [(e.candidate, e.size) for e in f.entries] == [("decision_tree", s) for s in (2, 4, 8)]
    for e in f.entries:
        ref = DecisionTree(max_leaf_nodes=e.size, random_state=0).fit(d)
        assert e.score == evaluate(ref, rows=d).agreement
        assert e.n_rules == ref.rules_.n_rules <= e.size
        assert e.n_conditions == ref.rules_.n_conditions
        assert e.fidelity.rows == "holdout"
        # The tree is fitted once, at the largest size; the smaller are read off it.
        assert (e.fit_seconds > 0) if e.size == 8 else (e.fit_seconds == 0)
        np.testing.assert_array_equal(e.surrogate.predict(d.holdout.rows), ref.predict(d.holdout.rows))
    pts = [(e.n_rules, e.score) for e in f.entries]
    want = [not any(q != p and q[0] <= p[0] and q[1] >= p[1] for q in pts) for p in pts]
    assert [e.pareto for e in f.entries] == want
    table = f.table()
    cols = ["candidate", "size", "training", "n_rules", "n_conditions", "agreement", "fit_seconds", "pareto", "error"]
    assert list(table.columns) == cols
    assert table["agreement"].tolist() == [e.score for e in f.entries]
    d_json = json.loads(json.dumps(f.to_dict()))
    assert [x["score"] for x in d_json["entries"]] == [e.score for e in f.entries]
    assert d_json["pareto"] == [i for i, e in enumerate(f.entries) if e.pareto]


def test_each_fit_is_also_made_on_the_observed_rows_alone():
    # Synthetic rows from the marginals break the correlation of z and w that the observed
    # rows have; both views are measured on the same held-out observed rows.
    from pellucid import Oracle, distill

    rng = np.random.default_rng(3)
    z = rng.normal(size=600)
    df = pd.DataFrame({"z": z, "w": z + 0.3 * rng.normal(size=600)})
    oracle = Oracle(lambda d: (np.sin(3 * d["z"]) * d["w"] > 0).to_numpy(dtype=float), task="regression")
    d = distill(oracle, df, strategy=["observed", "marginal"], n=2000, random_state=0)
    f = frontier(d, candidates=["decision_tree"], sizes=(2, 4), verbose=0, validation=None)
    assert [(e.size, e.training) for e in f.entries] == [(2, "distilled"), (4, "distilled"), (2, "observed"), (4, "observed")]
    observed = d.subset(d.source == "observed")
    for e in f.entries:
        data = d if e.training == "distilled" else observed
        assert len(e.data) == len(data) and list(e.data.source) == list(data.source)
        ref = DecisionTree(max_leaf_nodes=e.size, random_state=0).fit(data)
        np.testing.assert_array_equal(e.surrogate.predict(d.holdout.rows), ref.predict(d.holdout.rows))
        assert e.score == evaluate(ref, rows=d).r2  # the same held-out rows for both views
    assert e.fidelity.n == d.holdout.rows.shape[0]
    assert [x["training"] for x in f.to_dict()["entries"]] == ["distilled", "distilled", "observed", "observed"]
    assert "observed rows" in f.entries[-1].label()
    only = frontier(d, candidates=["decision_tree"], sizes=(2,), training="observed", verbose=0)
    assert [e.training for e in only.entries] == ["observed"]
    with pytest.raises(ParameterError, match="training must name one or more of"):
        frontier(d, candidates=["decision_tree"], sizes=(2,), training="synthetic", verbose=0)


def test_default_candidates_are_the_sized_registered_surrogates():
    d = step_set(n=200)
    f = frontier(d, sizes=(2,), verbose=0)
    want = [name for name, cls in SURROGATES.items() if cls.size_param]
    assert [e.candidate for e in f.entries] == want


def test_a_failing_candidate_is_recorded_not_dropped(wiggly):
    f = frontier(
        wiggly,
        candidates=["decision_tree", ("broken", Broken, {"random_state": 5})],
        sizes=(2, 4),
        verbose=0,
    )
    failed = f.failed
    assert [(e.candidate, e.size) for e in failed] == [("broken", 2), ("broken", 4)]
    assert failed[0].error == "RuntimeError: cannot fit with max_rules=2"
    assert failed[0].params == {"random_state": 5, "max_rules": 2}
    assert not any(e.pareto for e in failed) and all(e.surrogate is None for e in failed)
    assert f.select().candidate == "decision_tree"
    table = f.table()
    assert table.loc[table["candidate"] == "broken", "error"].str.startswith("RuntimeError").all()
    assert f.to_dict()["n_failed"] == 2


def test_regression_frontier_uses_r2():
    d = wiggly_set("regression", n=400)
    f = frontier(d, candidates=[DecisionTree], sizes=(2, 8), verbose=0, validation=None)
    assert f.measure == "r2" and "r2" in f.table().columns
    for e in f.entries:
        ref = DecisionTree(max_leaf_nodes=e.size, random_state=0).fit(d)
        assert e.score == evaluate(ref, rows=d).r2
    best = max(f.entries, key=lambda e: e.score)
    assert f.select().size == best.size
    floor = min(e.score for e in f.entries)
    assert f.select(min_r2=floor) is f.select(min_agreement=floor)
    with pytest.raises(ParameterError, match="reaches R² 1.5"):
        f.select(min_r2=1.5)
    with pytest.raises(ParameterError, match="not both"):
        f.select(min_r2=0.1, min_agreement=0.1)


def test_parallel_fits_give_the_same_frontier(wiggly):
    a = frontier(wiggly, candidates=[DecisionTree], sizes=(2, 4, 8), verbose=0).table()
    b = frontier(wiggly, candidates=[DecisionTree], sizes=(2, 4, 8), n_jobs=2, verbose=0).table()
    pd.testing.assert_frame_equal(a.drop(columns="fit_seconds"), b.drop(columns="fit_seconds"))


def test_fixed_params_and_random_state_reach_the_candidate(wiggly):
    f = frontier(
        wiggly, candidates=[("shallow", DecisionTree, {"max_depth": 1})], sizes=(8,), random_state=3, verbose=0
    )
    (e,) = f.entries
    assert e.params == {"max_depth": 1, "random_state": 3, "max_leaf_nodes": 8}
    assert e.surrogate.name == "shallow" and e.n_rules == 2
    f2 = frontier(
        wiggly, candidates=["decision_tree"], params={"decision_tree": {"max_depth": 1}}, sizes=(8,), verbose=0
    )
    assert f2.entries[0].n_rules == 2


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"candidates": ["no_such_tree"]}, "unknown surrogate 'no_such_tree'"),
        ({"candidates": [int]}, "int is not a pellucid Surrogate"),
        ({"candidates": [("t", DecisionTree, {"max_leaf_nodes": 3})]}, "fixes max_leaf_nodes=3"),
        ({"candidates": [("t", DecisionTree, {"depth": 3})]}, "takes no parameter.*depth"),
        ({"candidates": [DecisionTree, "decision_tree"]}, "repeated: \\['decision_tree'\\]"),
        ({"sizes": (4, 0)}, "sizes.*0"),
        ({"sizes": ()}, "sizes"),
        ({"params": {"nope": {}}}, "nope"),
    ],
)
def test_frontier_argument_errors(kwargs, pattern):
    d = step_set(n=100)
    with pytest.raises(ParameterError, match=pattern):
        frontier(d, **{"candidates": [DecisionTree], **kwargs})


# ---------------------------------------------------------------------------- validation rows
def test_selection_is_made_on_validation_rows_never_on_the_held_out_rows():
    from pellucid.fidelity.frontier import validation_split

    d = wiggly_set(n=600, seed=4)
    fit_set, val = validation_split(d, 0.2, random_state=0)
    train_obs = int(((d.source == "observed") & ~d.is_holdout).sum())
    # Held back from the observed training rows only; the held-out rows stay where they were.
    assert len(val) == round(0.2 * train_obs) and (val.source == "observed").all() and not val.is_holdout.any()
    assert len(fit_set) + len(val) == len(d) and fit_set.is_holdout.sum() == d.is_holdout.sum()
    assert not set(val.origin) & set(fit_set.origin[fit_set.origin >= 0])
    f = frontier(d, candidates=["decision_tree"], sizes=(2, 4, 8, 16), training="distilled", verbose=0)
    assert f.to_dict()["validation_rows"] == len(val)
    for e in f.entries:
        # Fitted without the validation rows, scored on them as well as on the held-out rows.
        ref = DecisionTree(max_leaf_nodes=e.size, random_state=0).fit(fit_set)
        labels = np.asarray(val.classes, dtype=object)[val.outputs.argmax(axis=1)]
        assert e.validation_score == pytest.approx(np.mean(ref.predict(val.rows) == labels))
        assert e.score == evaluate(ref, rows=d).agreement
    chosen = f.select()
    assert chosen.validation_score == max(e.validation_score for e in f.entries)
    # Hand the entries held-out scores that disagree with their validation scores: the choice
    # follows validation.
    best_val = max(f.entries, key=lambda e: (e.validation_score, -e.n_rules))
    for e in f.entries:
        e.score = 1.0 if e is not best_val else 0.0
    assert f.select() is best_val
    none = frontier(d, candidates=["decision_tree"], sizes=(4,), training="distilled", verbose=0, validation=None)
    assert none.entries[0].validation_score is None and none.to_dict()["validation_rows"] is None
    with pytest.raises(ParameterError, match="validation must be a share"):
        frontier(d, candidates=["decision_tree"], sizes=(4,), verbose=0, validation=1.5)


def test_stability_refits_go_to_worker_processes_only_when_they_would_take_long(monkeypatch):
    """With no n_jobs, the refits run in worker processes, one per core, when one after another
    they are estimated (by the entries' fits, a read-off entry by its larger fit) to take more
    than REFITS_WORTH_WORKERS seconds; otherwise where the run's work runs."""
    import os

    from pellucid.executor import LocalExecutor
    from pellucid.pipeline import stages

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    small, big = entry("figs", 4, 0.9), entry("figs", 32, 0.95)
    # 4 rules read off the 32-rule fit: 10 refits of the small entry alone are estimated at
    # three quarters of the threshold, of both at one and a half times it.
    small.fit_seconds, big.fit_seconds = 0.0, 0.075 * stages.REFITS_WORTH_WORKERS
    front = Frontier([small, big], task="classification")
    here = LocalExecutor(None)
    assert stages.refit_executor(front, [small], 10, here) is here
    chosen = stages.refit_executor(front, [small, big], 10, here)
    assert isinstance(chosen, LocalExecutor) and chosen.n_jobs == 2 and chosen.runs_elsewhere()
    assert stages.refit_executor(front, [small, big], 0, here) is here
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert stages.refit_executor(front, [small, big], 10, here) is here
    # Workers already started (the frontier's) take any refits: nothing left to repay.
    started = LocalExecutor(2)
    assert stages.refit_executor(front, [small], 10, started) is started


def test_the_frontier_goes_to_worker_processes_from_its_cells_when_no_n_jobs_is_given(monkeypatch):
    """With no n_jobs and two cores or more, the frontier's fits go to one worker process per
    core where the training rows hold FRONTIER_WORTH_WORKERS cells (rows × raw features) or
    more; otherwise, or with n_jobs, a cluster or one core, where the run's work runs."""
    import os
    from types import SimpleNamespace

    from pellucid.executor import Executor, LocalExecutor
    from pellucid.pipeline import stages
    from pellucid.pipeline.config import RunConfig

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    d = wiggly_set()
    cells = int((~d.is_holdout).sum()) * len(d.schema.features)
    here, default = LocalExecutor(None), RunConfig.check()
    monkeypatch.setattr(stages, "FRONTIER_WORTH_WORKERS", cells)
    chosen = stages.frontier_executor(d, default, here)
    assert isinstance(chosen, LocalExecutor) and chosen.n_jobs == 2
    monkeypatch.setattr(stages, "FRONTIER_WORTH_WORKERS", cells + 1)
    assert stages.frontier_executor(d, default, here) is here
    monkeypatch.setattr(stages, "FRONTIER_WORTH_WORKERS", 0)
    assert stages.frontier_executor(d, RunConfig.check(n_jobs=1), here) is here
    cluster = Executor()
    cluster.client = SimpleNamespace()
    assert stages.frontier_executor(d, default, cluster) is cluster
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert stages.frontier_executor(d, default, here) is here


def test_refits_in_worker_processes_run_beside_the_rest_of_the_run_and_change_nothing(monkeypatch):
    """Refits sent to worker processes run in the background while explain goes on (torch
    left one thread meanwhile, restored after); the report is the one of a run that refitted
    in this process, and run.timings says what the run waited for them."""
    import os

    import torch

    import pellucid
    from pellucid.pipeline import stages

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.uniform(-5, 5, 400), "z": rng.normal(size=400), "c": rng.choice(list("abc"), 400)})

    def oracle():  # a fresh one per run: an Oracle counts the rows it was asked about
        return pellucid.Oracle(lambda d: np.where((d["x"] + d["z"] > 0).to_numpy()[:, None], [[0.2, 0.8]], [[0.7, 0.3]]),
                               task="classification", classes=["lo", "hi"])

    options = dict(out_dir=None, sizes=(2, 4), surrogates=["decision_tree", "figs"], n_boot=3, attributions=False,
                   local=False, verbose=0)
    here = pellucid.explain(oracle(), df, n_jobs=1, **options)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(stages, "REFITS_WORTH_WORKERS", -1.0)  # any refits: worker processes
    threads, seen = torch.get_num_threads(), []
    real = stages.explain_locally
    monkeypatch.setattr(stages, "explain_locally", lambda *a, **k: seen.append(torch.get_num_threads()) or real(*a, **k))
    there = pellucid.explain(oracle(), df, **options)
    assert seen == [1] and torch.get_num_threads() == threads
    a, b = dict(here.payload), dict(there.payload)
    run_here, run_there = a.pop("run"), b.pop("run")
    assert a == b
    measured = [s["stability"] for s in a["surrogates"] if s.get("stability")]
    assert measured and all(m["n_boot"] == 3 for m in measured)
    assert "stability_wait" not in run_here["timings"]["stages"]
    stages_there = run_there["timings"]["stages"]
    assert 0 <= stages_there["stability_wait"] <= stages_there["stability"]


def test_a_run_that_stops_stops_its_background_refits(monkeypatch):
    """A stage after the choice fails while refits run in worker processes: the run raises
    its error, and neither the thread waiting for the refits nor its workers outlive it."""
    import os
    import threading

    import pellucid
    from pellucid.pipeline import stages

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.uniform(-5, 5, 400), "z": rng.normal(size=400)})
    oracle = pellucid.Oracle(lambda d: np.where((d["x"] + d["z"] > 0).to_numpy()[:, None], [[0.2, 0.8]], [[0.7, 0.3]]),
                             task="classification", classes=["lo", "hi"])
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(stages, "REFITS_WORTH_WORKERS", -1.0)  # any refits: worker processes
    stopped = []
    real = stages.abandon_refits
    monkeypatch.setattr(stages, "abandon_refits", lambda choice: stopped.append(choice.pending is not None) or real(choice))

    def broken(*a, **k):
        raise RuntimeError("a later stage failed")

    monkeypatch.setattr(stages, "explain_locally", broken)
    with pytest.raises(RuntimeError, match="a later stage failed"):
        pellucid.explain(oracle, df, out_dir=None, sizes=(2, 4), surrogates=["decision_tree"], n_boot=20,
                         attributions=False, verbose=0)
    assert stopped == [True]  # refits were under way in the background when the run stopped
    assert not [t for t in threading.enumerate() if t.name == "pellucid-stability" and t.is_alive()]


def test_torch_leaves_the_workers_their_cores_only_while_local_refits_run(monkeypatch):
    import os
    from types import SimpleNamespace

    import torch

    from pellucid.executor import Executor, LocalExecutor
    from pellucid.pipeline import stages

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    threads = torch.get_num_threads()
    cluster = Executor()
    cluster.client = object()  # an executor whose workers are a cluster's

    def inside(executor):
        pending = None if executor is None else ([], SimpleNamespace(executor=executor))
        choice = stages.Choice(chosen=None, listed=[], same_rules={}, pending=pending)
        with stages.sharing_cores(choice):
            return torch.get_num_threads()

    try:
        torch.set_num_threads(4)
        assert inside(LocalExecutor(3)) == 1  # 4 cores, 3 workers
        assert inside(LocalExecutor(2)) == 2
        assert inside(LocalExecutor(-1)) == 1  # joblib's -1: a worker per core
        assert inside(cluster) == 4  # a cluster's workers are elsewhere
        assert inside(None) == 4  # nothing in the background
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(threads)


def _attribution_run(credit, credit_net, **extra):
    import pellucid
    from pellucid.demo import CLASSES

    X, _ = credit
    net, pre = credit_net
    oracle = pellucid.Oracle(net, preprocess=pre, classes=list(CLASSES))  # a fresh one: it counts its queries
    return pellucid.explain(oracle, X.iloc[:600], out_dir=None, sizes=(2, 4), surrogates=["decision_tree", "figs"],
                            n_boot=2, attributions=["integrated_gradients", "shapley"], attribution_rows=40, local=False,
                            n_jobs=1, verbose=0, **extra)


def test_attributions_measured_beside_the_frontier_are_those_measured_after_it(credit, credit_net, monkeypatch):
    """The attribution methods run on a thread while the frontier is fitted: the report is the
    one of a run that measured them after the frontier; torch's thread count is 1 during the
    frontier and restored after, and no thread of the run is left."""
    import threading

    import torch

    from pellucid.pipeline import stages

    threads, during = torch.get_num_threads(), []
    real_frontier = stages.fit_frontier

    def frontier(*a, **k):
        during.append((torch.get_num_threads(), {t.name for t in threading.enumerate()}))
        return real_frontier(*a, **k)

    monkeypatch.setattr(stages, "fit_frontier", frontier)
    early = _attribution_run(credit, credit_net)
    assert during[0][0] == 1 and "pellucid-attributions" in during[0][1]
    assert torch.get_num_threads() == threads
    assert "pellucid-attributions" not in {t.name for t in threading.enumerate()}
    assert "attribution_early" in early.timings
    monkeypatch.setattr(stages, "attribute_early", lambda *a, **k: None)
    late = _attribution_run(credit, credit_net)
    assert "attribution_early" not in late.timings
    a, b = dict(early.payload), dict(late.payload)
    a.pop("run"), b.pop("run")
    assert a["attributions"]["shapley"] is not None
    assert a == b


def test_an_error_of_the_attributions_beside_the_frontier_is_the_runs_and_leaves_no_thread(credit, credit_net,
                                                                                      monkeypatch):
    import threading

    import torch

    from pellucid.attribution import summary

    def broken(*a, **k):
        raise ValueError("attributions failed on purpose")

    threads = torch.get_num_threads()
    monkeypatch.setattr(summary, "measure", broken)
    with pytest.raises(ValueError, match="on purpose"):
        _attribution_run(credit, credit_net)
    assert torch.get_num_threads() == threads
    assert "pellucid-attributions" not in {t.name for t in threading.enumerate()}
