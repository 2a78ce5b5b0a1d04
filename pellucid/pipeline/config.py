"""The options of an explain run, checked once, before any work.

:class:`RunConfig` holds every option of :func:`pellucid.explain` and ``pellucid explain``
that can be checked without the data, and checks them when it is made: a run never finds a
bad option after minutes of work. Its messages name what the user typed: within the command
line's run (:func:`pellucid._validation.command_line`) the flag (``--n-jobs must be ...``),
elsewhere the parameter (``n_jobs must be ...``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from numbers import Real
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .. import _validation as fmt
from ..errors import ParameterError

#: Most rows a run holds in memory at once, and most synthetic rows it streams.
MAX_ROWS_IN_MEMORY = 2**31 - 1
MAX_ROWS_STREAMED = 10**10
#: numpy's seeds are 32-bit unsigned integers.
MAX_SEED = 2**32 - 1


def _integer(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


@dataclass(frozen=True)
class RunConfig:
    """The checked options of one explain run (see :func:`pellucid.explain` for each).

    Make it with :meth:`check`; a field that is not given keeps ``explain``'s default.
    """

    strategy: Any = ("observed", "perturb", "marginal")
    n: int | None = None
    sizes: tuple[int, ...] = (4, 8, 16, 32)
    surrogates: tuple[str, ...] | None = None
    max_rules: int = 12
    min_agreement: float | None = None
    n_boot: int = 10
    n_jobs: int | None = None
    attributions: Any = None
    attribution_rows: int = 300
    holdout: float = 0.25
    random_state: int | None = 0
    out_dir: Path | None = Path("pellucid-report")
    stream_to: Path | None = None
    keep: int | None = None
    sample: int | str | None = None
    overwrite: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def check(cls, **options: Any) -> "RunConfig":
        """Check ``options`` and return them as a configuration.

        Parameters
        ----------
        **options
            Options of :func:`pellucid.explain`; those this class does not know are kept in
            ``extra`` unchecked.

        Raises
        ------
        ParameterError
            Naming the option as the user typed it, its value and what it must be.
        """

        def name(param: str) -> str:
            return fmt.arg(param).removesuffix("=")

        def bad(param: str, what: str) -> ParameterError:
            return ParameterError(f"{name(param)} {what}, got {options[param]!r}")

        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in options.items() if k in known}
        extra = {k: v for k, v in options.items() if k not in known}

        if "sizes" in values:
            sizes = values["sizes"]
            ok = isinstance(sizes, Sequence) and not isinstance(sizes, str) and len(sizes) > 0
            if not ok or not all(_integer(s) and s >= 2 for s in sizes):
                raise bad("sizes", "must be rule budgets of 2 or more")
            values["sizes"] = tuple(sorted({int(s) for s in sizes}))
        if "max_rules" in values and not (_integer(values["max_rules"]) and values["max_rules"] >= 1):
            raise bad("max_rules", "must be a whole number of rules, 1 or more")
        floor = values.get("min_agreement")
        if floor is not None and not (isinstance(floor, Real) and not isinstance(floor, bool)
                                      and math.isfinite(floor) and 0 < floor <= 1):
            raise bad("min_agreement", "must be a fidelity floor above 0 and at most 1 (agreement, or R² for a regression)")
        n_boot = values.get("n_boot", 10)
        if not (_integer(n_boot) and (n_boot == 0 or n_boot >= 2)):
            raise bad("n_boot", "must be 0 (no stability) or at least 2 refits")
        n_jobs = values.get("n_jobs")
        if n_jobs is not None and not (_integer(n_jobs) and (n_jobs >= 1 or n_jobs == -1)):
            raise bad("n_jobs", "must be a number of processes, 1 or more (or -1: one per core)")
        seed = values.get("random_state", 0)
        if seed is not None and not (_integer(seed) and 0 <= seed <= MAX_SEED):
            raise bad("random_state", f"must be a whole number from 0 to {MAX_SEED}")
        rows = values.get("attribution_rows", 300)
        if not (_integer(rows) and rows >= 1):
            raise bad("attribution_rows", "must be a positive whole number of rows")
        holdout = values.get("holdout", 0.25)
        if not (isinstance(holdout, Real) and not isinstance(holdout, bool) and 0 < holdout < 1):
            raise bad("holdout", "must be a share of the observed rows between 0 and 1")
        stream_to, keep = values.get("stream_to"), values.get("keep")
        if keep is not None:
            if stream_to is None:
                raise ParameterError(f"{name('keep')} says how many streamed rows to hold in memory; "
                                     f"it needs {name('stream_to')} FILE")
            if not (_integer(keep) and keep >= 1):
                raise bad("keep", "must be a positive whole number of rows")
        n = values.get("n")
        if n is not None:
            most = MAX_ROWS_STREAMED if stream_to is not None else MAX_ROWS_IN_MEMORY
            if not (_integer(n) and n >= 1):
                raise bad("n", "must be a positive whole number of synthetic rows")
            if n > most:
                hint = ("" if stream_to is not None else
                        f"; to go beyond {MAX_ROWS_IN_MEMORY:,} rows stream them with {name('stream_to')} FILE "
                        f"{name('keep')} N")
                raise ParameterError(f"{name('n')} {n:,} synthetic rows is more than one run makes "
                                     f"({most:,}{' streamed' if stream_to is not None else ' in memory'}){hint}")
        sample = values.get("sample")
        if sample is not None and sample != "auto" and not (_integer(sample) and sample >= 1):
            raise bad("sample", "must be a positive number of rows or 'auto'")
        for key in ("out_dir", "stream_to"):
            if values.get(key) is not None:
                values[key] = Path(values[key])
        if values.get("surrogates") is not None:
            values["surrogates"] = tuple(values["surrogates"])
        return cls(**values, extra=extra)

    def options(self) -> dict[str, Any]:
        """The options as keyword arguments of :func:`pellucid.explain`."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out.update(self.extra)
        return out
