"""The reason distillation exists: at the same number of leaves, a tree fitted to the network's
answers on observed *and* synthetic rows agrees with the network more than one fitted on the
observed rows alone (benchmarks/distillation_gain.py measures this over seeds and sizes)."""

import numpy as np
import pytest

from pellucid import DecisionTree, distill


@pytest.mark.parametrize("leaves", [16, 32])
def test_distilled_tree_agrees_more_at_equal_size(audit, leaves):
    oracle, X, fresh, labels = audit
    observed = DecisionTree(max_leaf_nodes=leaves).fit(distill(oracle, X, strategy="observed"))
    distilled = DecisionTree(max_leaf_nodes=leaves).fit(distill(oracle, X, n=20000))
    assert observed.complexity()["n_leaves"] == distilled.complexity()["n_leaves"] == leaves
    a_obs = np.mean(observed.predict(fresh) == labels)
    a_dis = np.mean(distilled.predict(fresh) == labels)
    assert a_dis > a_obs + 0.003, (a_obs, a_dis)
