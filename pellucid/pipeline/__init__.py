"""The explain run: a validated run configuration (:mod:`pellucid.pipeline.config`) checked
before any work."""

from .config import RunConfig

__all__ = ["RunConfig"]
