import itertools
import json

import numpy as np
import pandas as pd
import pytest

from pellucid.errors import NotFittedError, ParameterError
from pellucid.executor import Executor
from pellucid.extraction import Condition, Rule, distill
from pellucid.fidelity import rule_matches, stability
from pellucid.oracle import Oracle
from pellucid.schema import Schema
from pellucid.surrogates import DecisionTree


def step_set(task="classification", n=600, continuous=False, seed=0, step=0.0):
    """x decides alone (x > step), z and c are noise. With integer x every resample holds every
    value, so a two-leaf tree always splits between 0 and 1."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-5, 5, n) if continuous else rng.integers(-5, 6, n)
    df = pd.DataFrame({"x": x, "z": rng.normal(size=n), "c": rng.choice(["a", "b", "c"], n)})
    if task == "classification":
        fn = lambda d: np.where((d["x"] > step).to_numpy()[:, None], [[0.1, 0.9]], [[0.9, 0.1]])  # noqa: E731
        oracle = Oracle(fn, task="classification", classes=["lo", "hi"])
    else:
        oracle = Oracle(lambda d: (d["x"] > step).to_numpy(dtype=float) * 3.0 - 1.0, task="regression")
    return distill(oracle, df, strategy="observed", random_state=seed)


def wiggly_set(task="classification", n=300, seed=0):
    """Three features of equal weight in a wavy score: which splits a small tree takes
    depends on the sample."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"z": rng.normal(size=n), "w": rng.normal(size=n), "v": rng.normal(size=n)})

    def score(d):
        return (np.sin(3 * d["z"]) + np.sin(5 * d["w"]) + np.cos(4 * d["v"])).to_numpy()

    if task == "classification":
        p = lambda d: 1 / (1 + np.exp(-score(d)))  # noqa: E731
        oracle = Oracle(lambda d: np.column_stack([p(d), 1 - p(d)]), task="classification", classes=["a", "b"])
    else:
        oracle = Oracle(score, task="regression")
    return distill(oracle, df, strategy="observed", random_state=seed)


# ---------------------------------------------------------------------------- matching
@pytest.fixture
def schema():
    return Schema.from_frame(
        pd.DataFrame({"x": [0.0, 10.0, 5.0], "c": ["a", "b", "c"], "k": [1, 2, 3]})
    )


def test_thresholds_within_the_tolerance_match(schema):
    # x spans 10, so 5% is 0.5.
    a = Rule((Condition("x", "<=", 3.0),), "yes")
    assert rule_matches(a, Rule((Condition("x", "<=", 3.4),), "yes"), schema)
    assert rule_matches(a, Rule((Condition("x", "<", 2.6),), "yes"), schema)
    assert not rule_matches(a, Rule((Condition("x", "<=", 3.6),), "yes"), schema)
    assert rule_matches(a, Rule((Condition("x", "<=", 3.6),), "yes"), schema, tolerance=0.1)
    assert not rule_matches(a, Rule((Condition("x", "<=", 3.0000001),), "yes"), schema, tolerance=0)
    assert rule_matches(a, a, schema, tolerance=0)


def test_matching_needs_same_outcome_features_and_directions(schema):
    a = Rule((Condition("x", "<=", 3.0), Condition("c", "in", ("a",))), "yes")
    assert not rule_matches(a, Rule(a.conditions, "no"), schema)
    assert not rule_matches(a, Rule((Condition("x", ">", 3.0), Condition("c", "in", ("a",))), "yes"), schema)
    assert not rule_matches(a, Rule((Condition("x", "<=", 3.0),), "yes"), schema)
    assert not rule_matches(a, Rule(a.conditions + (Condition("k", ">", 1.5),), "yes"), schema)
    # Order of conditions and redundant bounds do not matter.
    b = Rule((Condition("c", "in", ("a",)), Condition("x", "<=", 3.2), Condition("x", "<=", 7.0)), "yes")
    assert rule_matches(a, b, schema)


def test_category_sets_compare_as_the_categories_admitted(schema):
    a = Rule((Condition("c", "in", ("a", "b")),), "yes")
    assert rule_matches(a, Rule((Condition("c", "not in", ("c",)),), "yes"), schema)
    assert not rule_matches(a, Rule((Condition("c", "in", ("a",)),), "yes"), schema)
    # Missing-value routing is not compared; a missingness-only condition is.
    assert rule_matches(a, Rule((Condition("c", "in", ("a", "b"), missing=True),), "yes"), schema)
    miss = Rule((Condition("x", ">", np.inf, missing=True),), "yes")
    assert rule_matches(miss, miss, schema)
    assert not rule_matches(miss, Rule((Condition("x", "<=", 3.0),), "yes"), schema)


def test_numeric_outcomes_use_the_outcome_tolerance(schema):
    a = Rule((Condition("x", "<=", 3.0),), 1.0)
    b = Rule((Condition("x", "<=", 3.0),), 1.2)
    assert not rule_matches(a, b, schema)
    assert rule_matches(a, b, schema, outcome_tolerance=0.25)


# ---------------------------------------------------------------------------- stability
def test_a_rule_the_data_dictates_is_perfectly_stable():
    d = step_set()
    tree = DecisionTree(max_leaf_nodes=2).fit(d)
    s = stability(tree, d, n_boot=10, verbose=0)
    assert s.rule_stability == 1.0
    assert s.prediction_agreement == 1.0 and s.agreement_with_original == 1.0
    assert [r["share"] for r in s.rules] == [1.0, 1.0]
    assert s.rows == "holdout" and s.n_rows == int(d.is_holdout.sum())
    top = {c["condition"]: c["share"] for c in s.conditions}
    assert top == {"x <=": 1.0, "x >": 1.0}
    assert all(p["fidelity"] == 1.0 for p in s.per_refit)
    assert len(s.refits) == 10 and all(r.name == tree.name for r in s.refits)


def test_a_sample_dependent_tree_is_less_stable():
    stable = stability(DecisionTree(max_leaf_nodes=2).fit(step_set()), step_set(), n_boot=10, verbose=0)
    d = wiggly_set()
    s = stability(DecisionTree(max_leaf_nodes=8).fit(d), d, n_boot=10, verbose=0)
    assert s.rule_stability < 0.9 * stable.rule_stability
    assert s.prediction_agreement < 0.95
    assert 0 <= s.rule_stability <= 1 and 0 <= s.prediction_agreement <= 1
    # Shape (features, directions) reappears at least as often as the full rule.
    assert all(r["shape_share"] >= r["share"] for r in s.rules)


def test_rule_share_follows_the_threshold_tolerance():
    """A continuous x: refits split near the step, not always where the original did. The
    share of refits matching the original's rules is recomputed here from the rules' own
    thresholds, for tolerances between the moves that occur. (The step is not a short
    decimal: at x > 0 every refit's threshold would be the shortest decimal in its gap, 0.)"""
    d = step_set(continuous=True, n=2000, step=0.1234567)
    tree = DecisionTree(max_leaf_nodes=2).fit(d)
    s = stability(tree, d, n_boot=12, verbose=0)
    assert s.rule_stability == 1.0  # moves are far below 5% of the range
    # The thresholds the rules test (the trees' splits moved to the shortest decimal between
    # the training values on either side).
    t0 = tree.rules_.rules[0].conditions[0].value
    moves = np.array([abs(r.rules_.rules[0].conditions[0].value - t0) for r in s.refits])
    span = d.schema["x"].high - d.schema["x"].low
    levels = np.unique(moves)
    assert len(levels) >= 3
    wants = []
    for lo, hi in zip(levels[:-1], levels[1:], strict=True):
        tol = (lo + hi) / 2 / span
        tight = stability(tree, d, n_boot=12, tolerance=tol, verbose=0)
        want = np.mean(moves <= tol * span)
        wants.append(want)
        assert [r["share"] for r in tight.rules] == pytest.approx([want, want])
        assert tight.rule_stability == pytest.approx(want)
        # The shape of the rules comes back every time; only the thresholds move.
        assert all(r["shape_share"] == 1.0 for r in tight.rules)
    assert len(set(wants)) == len(wants) and max(wants) < 1


def test_prediction_agreement_by_pairs_of_refits():
    d = wiggly_set()
    tree = DecisionTree(max_leaf_nodes=6).fit(d)
    s = stability(tree, d, n_boot=6, verbose=0)
    X = d.holdout.rows
    preds = [r.predict(X) for r in s.refits]
    pairs = [np.mean(a == b) for a, b in itertools.combinations(preds, 2)]
    assert s.prediction_agreement == pytest.approx(np.mean(pairs))
    orig = tree.predict(X)
    with_orig = [np.mean(p == orig) for p in preds]
    assert s.agreement_with_original == pytest.approx(np.mean(with_orig))
    assert [p["agreement_with_original"] for p in s.per_refit] == pytest.approx(with_orig)
    net = d.holdout.labels
    assert [p["fidelity"] for p in s.per_refit] == pytest.approx([np.mean(p == net) for p in preds])


def test_regression_stability():
    d = step_set("regression")
    s = stability(DecisionTree(max_leaf_nodes=2).fit(d), d, n_boot=8, verbose=0)
    assert s.rule_stability == 1.0 and s.prediction_agreement == pytest.approx(1.0)

    d = wiggly_set("regression")
    tree = DecisionTree(max_leaf_nodes=8).fit(d)
    s = stability(tree, d, n_boot=6, verbose=0)
    X, y = d.holdout.rows, d.holdout.outputs
    preds = [r.predict(X) for r in s.refits]
    var = np.var(y)
    pairs = [1 - np.mean((a - b) ** 2) / var for a, b in itertools.combinations(preds, 2)]
    assert s.prediction_agreement == pytest.approx(np.mean(pairs))
    from sklearn.metrics import r2_score

    assert [p["fidelity"] for p in s.per_refit] == pytest.approx([r2_score(y, p) for p in preds])
    assert s.rule_stability < 1
    json.dumps(s.to_dict())


def test_same_seed_same_result_and_parallel_equals_sequential():
    d = wiggly_set()
    tree = DecisionTree(max_leaf_nodes=6).fit(d)
    a = stability(tree, d, n_boot=5, random_state=3, verbose=0).to_dict()
    b = stability(tree, d, n_boot=5, random_state=3, n_jobs=2, verbose=0).to_dict()
    c = stability(tree, d, n_boot=5, random_state=4, verbose=0).to_dict()
    assert a == b
    assert a["per_refit"] != c["per_refit"]
    assert json.loads(json.dumps(a)) == a


def test_several_surrogates_at_once_equal_each_alone():
    """stabilities() sends every refit of several surrogates (on two sets, one regression)
    through one map; each result is stability() of that surrogate alone."""
    from pellucid.fidelity.stability import stabilities

    d, r = wiggly_set(), wiggly_set("regression", seed=2)
    fits = [(DecisionTree(max_leaf_nodes=4).fit(d), d), (DecisionTree(max_leaf_nodes=7).fit(d), d),
            (DecisionTree(max_leaf_nodes=5).fit(r), r)]
    together = stabilities(fits, n_boot=4, random_state=3, verbose=0)
    for (s, ds), got in zip(fits, together, strict=True):
        assert got.to_dict() == stability(s, ds, n_boot=4, random_state=3, verbose=0).to_dict()
    assert together[0].to_dict()["per_refit"] != together[1].to_dict()["per_refit"]


class _Elsewhere:
    """An executor that says it runs work outside this process and maps in its caller's
    thread (the background thread) once ``go`` is set: the test decides when refits run."""

    client = None

    def __init__(self):
        import threading

        from pellucid.executor import LocalExecutor

        self.go, self.ran, self._here = threading.Event(), [], LocalExecutor(None)

    def runs_elsewhere(self):
        return True

    def share(self, obj):
        return obj

    def map(self, fn, calls):
        assert self.go.wait(30)
        import threading

        self.ran.append(threading.current_thread().name)
        return self._here.map(fn, calls)


def test_refits_started_in_the_background_equal_those_waited_for():
    """start_stabilities() returns before the refits run, the caller's thread goes on, and
    result() gives what stabilities() gives; in worker processes too."""
    from pellucid.executor import LocalExecutor
    from pellucid.fidelity.stability import stabilities, start_stabilities

    d, r = wiggly_set(), wiggly_set("regression", seed=2)
    fits = [(DecisionTree(max_leaf_nodes=4).fit(d), d), (DecisionTree(max_leaf_nodes=5).fit(r), r)]
    want = [s.to_dict() for s in stabilities(fits, n_boot=4, random_state=3, verbose=0)]
    later = _Elsewhere()
    pending = start_stabilities(fits, n_boot=4, random_state=3, executor=later)
    assert later.ran == [] and pending.seconds is None  # nothing ran yet: the caller goes on
    later.go.set()
    assert [s.to_dict() for s in pending.result()] == want
    assert later.ran == ["pellucid-stability"] and pending.seconds > 0
    in_workers = start_stabilities(fits, n_boot=4, random_state=3, executor=LocalExecutor(2))
    assert [s.to_dict() for s in in_workers.result()] == want


def test_refits_in_the_background_check_now_and_raise_their_error_when_collected(monkeypatch):
    from pellucid.executor import LocalExecutor
    from pellucid.fidelity.stability import start_stabilities

    d = wiggly_set()
    tree = DecisionTree(max_leaf_nodes=4).fit(d)
    with pytest.raises(ParameterError, match="outside this process"):
        start_stabilities([(tree, d)], n_boot=4, executor=LocalExecutor(None))
    with pytest.raises(ParameterError, match="n_boot must be"):
        start_stabilities([(tree, d)], n_boot=1, executor=_Elsewhere())
    with pytest.raises(NotFittedError):
        start_stabilities([(DecisionTree(), d)], n_boot=4, executor=_Elsewhere())

    def broken(self, train):
        raise RuntimeError("refit failed on purpose")

    monkeypatch.setattr(DecisionTree, "fit", broken)
    later = _Elsewhere()
    pending = start_stabilities([(tree, d)], n_boot=3, executor=later)
    later.go.set()
    with pytest.raises(RuntimeError, match="on purpose"):
        pending.result()


def test_holdout_rows_never_enter_a_refit():
    d = step_set()
    tree = DecisionTree(max_leaf_nodes=2).fit(d)
    s = stability(tree, d, n_boot=4, verbose=0)
    assert d.is_holdout.any()
    for r in s.refits:
        # The weight a refit saw is its row count: as many rows as the training part holds.
        assert r.estimator_.tree_.weighted_n_node_samples[0] == (~d.is_holdout).sum()


def test_unseeded_surrogates_are_seeded_from_random_state():
    d = wiggly_set()
    tree = DecisionTree(max_leaf_nodes=6, random_state=None).fit(d)
    s = stability(tree, d, n_boot=3, verbose=0)
    seeds = [r.random_state for r in s.refits]
    assert all(isinstance(x, int) for x in seeds) and len(set(seeds)) == 3
    kept = stability(DecisionTree(max_leaf_nodes=6, random_state=7).fit(d), d, n_boot=3, verbose=0)
    assert [r.random_state for r in kept.refits] == [7, 7, 7]


def test_stability_errors():
    d = step_set()
    with pytest.raises(NotFittedError):
        stability(DecisionTree(), d, verbose=0)
    tree = DecisionTree(max_leaf_nodes=2).fit(d)
    with pytest.raises(ParameterError, match="n_boot.*1"):
        stability(tree, d, n_boot=1)
    with pytest.raises(ParameterError, match="tolerance.*-0.1"):
        stability(tree, d, tolerance=-0.1)
    with pytest.raises(ParameterError, match="DistillationSet"):
        stability(tree, d.rows)
    with pytest.raises(ParameterError, match="fitted for classification.*regression"):
        stability(tree, step_set("regression"))


# ---------------------------------------------------------------------------- intervals
def _wilson(p, n, z=1.959963984540054):
    """The textbook Wilson score interval of a proportion p measured over n trials."""
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def test_shares_of_refits_have_wilson_intervals_over_the_refits():
    from scipy.stats import binomtest

    d = wiggly_set()
    s = stability(DecisionTree(max_leaf_nodes=8).fit(d), d, n_boot=10, verbose=0)
    for entry, keys in [(r, ("share", "shape_share")) for r in s.rules] + [(c, ("share",)) for c in s.conditions]:
        for key in keys:
            ci = binomtest(round(entry[key] * 10), 10).proportion_ci(method="wilson")
            assert entry[key + "_ci"] == pytest.approx([ci.low, ci.high], abs=1e-12)
    assert s.rule_stability_ci == pytest.approx(_wilson(s.rule_stability, 10), abs=1e-12)
    assert s.agreement_with_original_ci == pytest.approx(_wilson(s.agreement_with_original, 10), abs=1e-12)
    assert s.prediction_agreement_ci == pytest.approx(_wilson(s.prediction_agreement, 5), abs=1e-12)
    for key in ("rule_stability", "prediction_agreement", "agreement_with_original"):
        lo, hi = getattr(s, key + "_ci")
        assert lo <= getattr(s, key) <= hi
    methods = s.to_dict()["intervals"]["methods"]
    assert methods["rules.share"] == methods["conditions.share"] == "Wilson score over the 10 refits"
    assert s.to_dict()["intervals"]["level"] == 0.95


def test_regression_agreement_intervals_resample_the_refits():
    d = wiggly_set("regression")
    tree = DecisionTree(max_leaf_nodes=6).fit(d)
    s = stability(tree, d, n_boot=8, random_state=3, verbose=0)
    X = d.holdout.rows
    values = np.vstack([r.predict(X).astype(float) for r in s.refits])
    orig = tree.predict(X).astype(float)
    var = np.var(d.holdout.outputs)
    with_orig = 1 - ((values - orig) ** 2).mean(axis=1) / var
    idx = np.random.default_rng(3).integers(0, 8, size=(200, 8))
    orig_reps = [with_orig[i].mean() for i in idx]
    pair_reps = []
    for i in idx:
        msd = [np.mean((values[a] - values[b]) ** 2) for a, b in itertools.combinations(i, 2) if a != b]
        pair_reps.append(1 - np.mean(msd) / var)
    for key, reps in (("agreement_with_original", orig_reps), ("prediction_agreement", pair_reps)):
        lo, hi = np.quantile(reps, [0.025, 0.975])
        est = getattr(s, key)
        assert getattr(s, key + "_ci") == pytest.approx([min(lo, est), max(hi, est)], rel=1e-9)
    assert s.to_dict()["intervals"]["methods"]["prediction_agreement"].startswith(
        "percentile bootstrap, 200 resamples of the 8 refits, seed 3")


class _Counting(Executor):
    """An in-process executor that counts the calls it is given."""

    def __init__(self):
        from pellucid.executor import LocalExecutor

        self._here, self.calls = LocalExecutor(None), 0

    def map(self, fn, calls):
        calls = list(calls)
        self.calls += len(calls)
        return self._here.map(fn, calls)


def test_fits_of_one_learner_at_several_sizes_share_each_refit_and_measure_as_alone():
    """Fits that differ only in size, of a learner that grows one rule at a time, on the same
    set: one refit per resample at the largest size, the smaller read off it; each stability
    is what stability() gives for that fit alone (seeded learners and resamples alike)."""
    from pellucid.fidelity.stability import stabilities
    from pellucid.surrogates import FIGS, Scorecard

    d, r = wiggly_set(n=400), wiggly_set(n=300, seed=4)
    fits = [(DecisionTree(max_leaf_nodes=k, random_state=None).fit(d), d) for k in (6, 3, 4)]
    fits += [(DecisionTree(max_leaf_nodes=4, random_state=None).fit(r), r),  # another set: its own refits
             (DecisionTree(max_leaf_nodes=5, min_samples_leaf=9).fit(d), d),  # other parameters: its own
             (FIGS(max_rules=3).fit(d), d), (FIGS(max_rules=7).fit(d), d),
             (Scorecard(max_terms=3).fit(d), d), (Scorecard(max_terms=5).fit(d), d)]  # no path: one each
    counting = _Counting()
    got = [s.to_dict() for s in stabilities(fits, n_boot=3, random_state=2, verbose=0, executor=counting)]
    assert counting.calls == 3 * 6  # trees on d, tree on r, the other tree, FIGS, two scorecards
    alone = [stability(s, ds, n_boot=3, random_state=2, verbose=0).to_dict() for s, ds in fits]
    assert got == alone
    # The sizes really differ in what came back: a shared refit was read at each size.
    assert len({json.dumps(a["rules"], default=str) for a in alone[:3]}) == 3


def test_entries_listed_whatever_the_tie_are_read_off_the_tied_entries_refits():
    """The run measures tied entries before its choice and the listed ones after. An entry the
    report lists whatever the tie decides (a Pareto entry within the budget) that shares its
    refits with a tied entry (one learner, one set, another size) is measured with the ties,
    read off their refits: one refit group fewer, the same stabilities."""
    from pellucid.fidelity import Frontier, FrontierEntry
    from pellucid.pipeline.config import RunConfig
    from pellucid.pipeline.stages import choose
    from pellucid.surrogates import FIGS

    d = wiggly_set(n=400)

    def entry(surrogate, score, name):
        s = surrogate.fit(d)
        n = len(s.rules_.rules)
        return FrontierEntry(candidate=name, size=n, score=score, n_rules=n, n_conditions=n, surrogate=s, data=d,
                             training="distilled")

    tree4 = entry(DecisionTree(max_leaf_nodes=4, random_state=None), 0.95, "decision_tree")
    figs4 = entry(FIGS(max_rules=4), 0.95, "figs")
    tree4.n_rules = tree4.n_conditions = figs4.n_rules = figs4.n_conditions = 4  # an exact tie
    tree3 = entry(DecisionTree(max_leaf_nodes=3, random_state=None), 0.90, "decision_tree")  # Pareto, shares
    other = entry(DecisionTree(max_leaf_nodes=2, min_samples_leaf=9), 0.80, "decision_tree")  # Pareto, its own
    front = Frontier([tree4, figs4, tree3, other], "classification")
    assert front.ties(max_rules=12) == [tree4, figs4] and tree3.pareto and other.pareto
    counting = _Counting()
    choice = choose(front, None, RunConfig(n_boot=3, max_rules=12, random_state=2), counting)
    # Ties: the trees on d at 4 and 3 leaves in one group, FIGS; then the other tree alone.
    assert counting.calls == 3 * 3
    for e in choice.listed:
        alone = stability(e.surrogate, d, n_boot=3, random_state=2, verbose=0).to_dict()
        assert choice.stability[id(e)].to_dict() == alone, e.name
    assert {id(e) for e in (tree3, other)} <= {id(e) for e in choice.listed}


def test_refits_are_predicted_on_rows_checked_once(monkeypatch):
    """The held-out rows are a distillation set's, already as its schema checks them: neither
    the surrogate nor its refits check them again (predict_each with the set's schema). Rows
    from elsewhere are checked once per schema, and every prediction is what the surrogate's
    own predict gives."""
    from pellucid.surrogates.base import predict_each

    dset = wiggly_set()
    tree = DecisionTree(max_leaf_nodes=4, random_state=0).fit(dset)
    other = DecisionTree(max_leaf_nodes=3, random_state=0).fit(step_set())  # another schema

    class Constant:  # not a pellucid surrogate: asked by its own predict
        def predict(self, X):
            return np.full(len(X), "a", dtype=object)

    X = dset.holdout.rows
    want = [tree.predict(X), Constant().predict(X), other.predict(step_set().holdout.rows)]
    checked = []
    validate = Schema.validate
    monkeypatch.setattr(Schema, "validate", lambda self, df, **kw: checked.append(len(df)) or validate(self, df, **kw))
    res = stability(tree, dset, n_boot=4, random_state=0, verbose=0)
    assert checked == []
    got = predict_each([tree, *res.refits], X, schema=dset.schema)
    assert checked == []
    for refit, pred in zip([tree, *res.refits], got, strict=True):
        np.testing.assert_array_equal(pred, refit.rules_.predict(X))
    for refit in res.refits:
        assert refit.schema_ == tree.schema_
    checked.clear()
    got = predict_each([tree, Constant(), *res.refits], X)
    assert checked == [len(X)]
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    for refit, pred in zip(res.refits, got[2:], strict=True):
        monkeypatch.setattr(Schema, "validate", validate)
        np.testing.assert_array_equal(pred, refit.predict(X))
    rows = step_set().holdout.rows
    both = rows.assign(w=0.0, v=0.0)
    monkeypatch.setattr(Schema, "validate", lambda self, df, **kw: checked.append(len(df)) or validate(self, df, **kw))
    checked.clear()
    got = predict_each([tree, other, tree], both)
    assert checked == [len(rows)] * 2  # two schemas, two checks
    np.testing.assert_array_equal(got[1], want[2])
    np.testing.assert_array_equal(got[0], got[2])
