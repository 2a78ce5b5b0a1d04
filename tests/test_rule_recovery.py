"""Extracted rules land on the truth: the demo network was trained on labels made by known
threshold rules (pellucid.demo), and the rules pellucid selects from the frontier test those
features at thresholds within 5% of each feature's range of the true ones
(benchmarks/threshold_recovery.py measures this over seeds and a second network)."""

import numpy as np

from pellucid import distill
from pellucid.extraction.rules import NUMERIC_OPS
from pellucid.fidelity import frontier

# Feature -> true threshold; delinquencies is integer, so ">= 3" is any split in (2, 3].
TRUTH = {"debt_ratio": (0.6, 0.6), "income": (40.0, 40.0), "delinquencies": (2.0, 3.0)}


def test_thresholds_of_the_selected_rules_are_within_5pct_of_the_truth(audit):
    oracle, X, _, _ = audit
    dset = distill(oracle, X, strategy=["observed", "perturb", "marginal", "boundary"], n=20000, random_state=0)
    chosen = frontier(dset, candidates=["decision_tree"], sizes=(8,), random_state=0).select(max_rules=8)
    found: dict[str, list[float]] = {}
    for rule in chosen.surrogate.rules_.rules:
        for c in rule.conditions:
            if c.op in NUMERIC_OPS and np.isfinite(c.value):
                found.setdefault(c.feature, []).append(c.value)
    for feat, (lo, hi) in TRUTH.items():
        f = dset.schema[feat]
        assert feat in found, f"the rules never test {feat}: {chosen.surrogate.rules_.text()}"
        # Distance from the true split interval, as a share of the observed range.
        err = min(max(lo - v, v - hi, 0.0) for v in found[feat]) / (f.high - f.low)
        assert err <= 0.05, (feat, found[feat])
    # Features that play no part in the truth are not what the rules are about.
    assert not {"region", "tenure_months", "dependents"} & set(found)
