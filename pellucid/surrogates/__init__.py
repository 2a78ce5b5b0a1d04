"""Interpretable surrogates fitted to a network through a DistillationSet.

A surrogate is added by writing a module with a :class:`Surrogate` subclass and registering
it in :data:`SURROGATES` below.
"""

from .base import CategoryOrderEncoder, Surrogate
from .tree import DecisionTree

#: name -> class, for the CLI and reports.
SURROGATES: dict[str, type[Surrogate]] = {
    DecisionTree.name: DecisionTree,
}

__all__ = ["Surrogate", "CategoryOrderEncoder", "DecisionTree", "SURROGATES"]
