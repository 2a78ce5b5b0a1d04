"""Fidelity of surrogates to the network: agreement, R², per class, per rule, complexity."""

from .metrics import Fidelity, evaluate, wilson_interval

__all__ = ["Fidelity", "evaluate", "wilson_interval"]
