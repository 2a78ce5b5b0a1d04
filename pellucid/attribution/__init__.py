"""Attributions of a network's outputs to the user's raw features."""

from ._base import Attribution, Prepared, prepare

__all__ = ["Attribution", "Prepared", "prepare"]
