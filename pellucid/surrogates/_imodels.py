"""What every surrogate backed by imodels needs around its learner's fit.

imodels' learners draw from numpy's and Python's global random states (the greedy rule
list's and FIGS's scikit-learn stumps, which have no ``random_state``; BRL's chains) and
talk through warnings. :func:`learner_context` seeds those states for the fit and leaves them
as they were, so the same seed gives the same rules in every process.
"""

from __future__ import annotations

import contextlib
import random
import warnings
from typing import Iterator

import numpy as np


@contextlib.contextmanager
def learner_context(seed: int | None = None) -> Iterator[None]:
    """Quiet the learners' warnings and leave numpy's and Python's global random states as
    they were. imodels' rule lists draw from the global states (the greedy list's stumps,
    BRL's chains); with ``seed`` they are seeded for the fit, so the same seed gives the
    same rules."""
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        if seed is not None:
            np.random.seed(seed)
            random.seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
