"""One exception type per kind of mistake a user can make.

Every error pellucid raises on purpose derives from :class:`PellucidError`, so a caller (the
CLI above all) can tell "the input is wrong" from "pellucid has a bug". The messages name the
column, the file, the shape or the value at fault.
"""

from __future__ import annotations


class PellucidError(Exception):
    """Base class of every error pellucid raises about its input."""


class SchemaError(PellucidError, ValueError):
    """A table does not match its schema: a missing or all-missing column, an unseen
    category, a wrong dtype, infinite values, or no rows at all."""


class ModelError(PellucidError, TypeError):
    """The object given as a model cannot be queried (not a model, wrong kind of object)."""


class ModelOutputError(PellucidError, ValueError):
    """The model answered, but with something unusable: wrong shape or row count,
    non-finite values, probabilities that do not sum to one."""


class ModelLoadError(PellucidError, ValueError):
    """A model (or preprocessing) specification could not be resolved or loaded."""


class DataFileError(PellucidError, ValueError):
    """A data file is missing, unreadable, of an unknown format, or lacks a named column."""


class ParameterError(PellucidError, ValueError):
    """An argument is outside what the function accepts (unknown strategy, n <= 0, ...)."""


class NotFittedError(PellucidError, AttributeError):
    """A surrogate was used before ``fit``."""


class SurrogateError(PellucidError, RuntimeError):
    """A surrogate's learner failed or ran out of time, or the rules read back from it do not
    reproduce its own predictions (pellucid never ships rules that say something other than
    what is measured)."""


class ReportError(PellucidError, RuntimeError):
    """A report could not be turned into another format: the program that does it (headless
    Chromium for PDF) is missing, failed or ran out of time."""


class PellucidWarning(UserWarning):
    """Something worth knowing that does not stop the run (e.g. an encoded column that
    depends on several raw features)."""


__all__ = [
    "PellucidError",
    "SchemaError",
    "ModelError",
    "ModelOutputError",
    "ModelLoadError",
    "DataFileError",
    "ParameterError",
    "NotFittedError",
    "SurrogateError",
    "ReportError",
    "PellucidWarning",
]
