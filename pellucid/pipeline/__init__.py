"""The explain run: a validated configuration (:mod:`.config`), one function per stage
(:mod:`.stages`), and :func:`explain`, the loop over them (:mod:`.run`)."""

from .config import RunConfig
from .run import ExplainResult, explain
from .stages import default_surrogates

__all__ = ["ExplainResult", "RunConfig", "default_surrogates", "explain"]
