"""One reading of ``target`` for every explainer."""

import numpy as np
import pytest
import torch

from pellucid._targets import target_indices
from pellucid.errors import ParameterError


def test_labels_indices_and_per_row_targets():
    labels = ["good", "bad"]
    np.testing.assert_array_equal(target_indices("bad", 3, 2, labels), [1, 1, 1])
    np.testing.assert_array_equal(target_indices(["bad", "good", 1], 3, 2, labels), [1, 0, 1])
    np.testing.assert_array_equal(target_indices(torch.tensor([0, 1]), 2, 2, None), [0, 1])
    np.testing.assert_array_equal(target_indices([1], 4, 2, None, broadcast_one=True), [1, 1, 1, 1])
    with pytest.raises(ParameterError, match="1 entries for 4 rows"):
        target_indices([1], 4, 2, None)
    with pytest.raises(ParameterError, match="not one of the classes"):
        target_indices("ugly", 2, 2, labels)
    with pytest.raises(ParameterError, match="output index in 0..1"):
        target_indices(2, 2, 2, None)


def test_booleans_match_boolean_labels_only():
    # True equals 1 in Python; as a target it names the class True, never output index 1.
    np.testing.assert_array_equal(target_indices(True, 2, 2, [True, False]), [0, 0])
    np.testing.assert_array_equal(target_indices(1, 2, 2, [True, False]), [1, 1])
    with pytest.raises(ParameterError):
        target_indices(True, 2, 2, None)
    with pytest.raises(ParameterError):
        target_indices(True, 2, 2, [0, 1])
