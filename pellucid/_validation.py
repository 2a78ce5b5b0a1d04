"""Checks and formats that every layer shares, written once.

It also says how an argument is named in an error message (:func:`arg`): an error names
what the user typed, ``--target`` at the command line, ``target=`` in Python.

Today this module holds the one number formatter of the project: every number a person reads
(the report page, the console, rule texts, exports) is written by the functions below, so the
same value reads the same everywhere. Two kinds of number are told apart:

* **exact values**: thresholds, weights, points, a row's own value. They are written in full
  (:func:`exact`, the shortest decimal that reads back as the same float), because a reader
  tests rows against them: what is printed is what is tested.
* **estimates**: agreement, coverage, precision, R², importances. They are written to a fixed
  number of digits (:func:`pct`, :func:`sig`, :func:`fixed`), rounded half up from their
  shortest decimal, the way a person rounds the number written in ``report.json``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterator, Mapping

import numpy as np

#: What the page writes where there is no value.
DASH = "—"
#: The minus sign of printed numbers (a real minus, not a hyphen).
MINUS = "−"


def _decimal(x: float) -> Decimal:
    # The shortest decimal that reads back as x (Python's repr), as a Decimal.
    return Decimal(repr(float(x)))


def _plain(d: Decimal) -> str:
    """A Decimal in positional notation, without exponent and without trailing zeros."""
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _finite(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def exact(x: float, integer: bool = False) -> str:
    """An exact value in full: the shortest decimal that reads back as the same float.

    ``27.19`` -> ``27.19``, ``0.5985`` -> ``0.5985``, ``1e-07`` -> ``0.0000001``; an integer
    kind whose value is whole -> ``61``; infinities -> ``inf`` / ``-inf``.
    """
    f = float(x)
    if math.isinf(f):
        return "inf" if f > 0 else "-inf"
    if math.isnan(f):
        return "nan"
    if integer and f.is_integer():
        return str(int(f))
    if f.is_integer() and abs(f) < 1e16:
        return str(int(f))
    return _plain(_decimal(f))


def shortest_between(lo: float, hi: float, *, closed: str = "right") -> float:
    """The number with the fewest significant digits in the gap between two finite values.

    ``closed="right"``: the shortest ``t`` with ``lo < t <= hi``; ``closed="left"``: with
    ``lo <= t < hi``. Used to move a split between two observed values to the shortest decimal
    that splits them the same way, so that the printed threshold is the tested one.
    """
    lo, hi = float(lo), float(hi)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"shortest_between needs finite lo < hi, got {lo!r} and {hi!r}")

    def inside(t: float) -> bool:
        return (lo < t <= hi) if closed == "right" else (lo <= t < hi)

    # The coarsest decimal grid with a point in the gap gives the shortest decimal: try
    # steps of 10^e from above the values' size down.
    top = max(abs(lo), abs(hi))
    e = math.floor(math.log10(top)) + 1
    while True:
        step = Decimal(1).scaleb(e)
        k = (_decimal(lo) / step).to_integral_value(rounding="ROUND_FLOOR")
        for j in (k, k + 1):
            t = float(j * step)
            if inside(t):
                return t
        if step < Decimal(1).scaleb(-340):  # pragma: no cover - a gap always holds a float
            return hi if closed == "right" else lo
        e -= 1


def sig(x: float | None, digits: int = 4) -> str:
    """An estimate to ``digits`` significant digits, in positional notation for everyday sizes
    (scientific from 1e7 up and below 1e-4), trailing zeros dropped: ``1878.04`` -> ``1878``."""
    f = _finite(x)
    if f is None:
        return DASH if x is None else str(x)
    if f == 0:
        return "0"
    d = abs(_decimal(f))
    q = d.quantize(Decimal(1).scaleb(d.adjusted() - digits + 1), rounding=ROUND_HALF_UP)
    sign = MINUS if f < 0 else ""
    if q >= Decimal("1e7") or q < Decimal("1e-4"):
        mant = q.scaleb(-q.adjusted())
        return f"{sign}{_plain(mant)}e{q.adjusted():+d}"
    return sign + _plain(q)


def fixed(x: float | None, decimals: int = 3) -> str:
    """An estimate with fixed decimals (R², F1, a correlation): ``0.98765`` -> ``0.988``."""
    f = _finite(x)
    if f is None:
        return DASH if x is None else str(x)
    q = _decimal(f).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    s = format(q, "f")
    return s.lstrip("-") if q == 0 else _minus(s)


def pct(p: float | None, decimals: int = 1) -> str:
    """A share as a percentage: ``0.9825`` -> ``98.3%``, ``None`` -> an em dash."""
    f = _finite(p)
    if f is None:
        return DASH
    q = (_decimal(f) * 100).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    s = format(q, "f")
    return (s.lstrip("-") if q == 0 else _minus(s)) + "%"


def interval(ci: Any, *, as_pct: bool = True, decimals: int = 1, digits: int | None = None) -> str:
    """An interval: ``[0.905, 0.955]`` -> ``90.5%–95.5%``; with ``as_pct=False``,
    ``fixed`` decimals (or ``sig`` digits) -> ``0.905–0.955``."""
    if not ci or len(ci) != 2 or _finite(ci[0]) is None or _finite(ci[1]) is None:
        return DASH
    if as_pct:
        return f"{pct(ci[0], decimals)}–{pct(ci[1], decimals)}"
    f = (lambda v: sig(v, digits)) if digits is not None else (lambda v: fixed(v, decimals))
    return f"{f(ci[0])} to {f(ci[1])}"


def against(x: float, threshold: float, digits: int = 2) -> str:
    """``x`` as a decimal with at least ``digits`` decimals, and more where fewer would put it
    on the other side of ``threshold`` (or on it): 0.9549 against 0.95 -> ``0.9549``, never
    ``0.95``, so a printed comparison says what the numbers do."""
    f, t = float(x), float(threshold)
    for d in range(digits, 17):
        s = fixed(f, d)
        v = float(s.replace(MINUS, "-"))
        if (v > t) == (f > t) and (v < t) == (f < t) and (v == t) == (f == t):
            return s
    return exact(f)


def count(n: Any) -> str:
    """A count with thousands separators: ``12345`` -> ``12,345``."""
    if n is None:
        return DASH
    if isinstance(n, bool) or not isinstance(n, (int, float)) and not hasattr(n, "__index__"):
        return value(n)
    return _minus(f"{int(n):,}")


def signed(x: float | None, digits: int = 4) -> str:
    """A weight with its sign: ``0.5`` -> ``+0.5``, ``-1.25`` -> ``−1.25`` (exact values are
    written in full: see :func:`exact`)."""
    f = _finite(x)
    if f is None:
        return DASH
    body = exact(abs(f)) if digits is None else sig(abs(f), digits)
    return ("+" if f >= 0 else MINUS) + body


def points(x: Any) -> str:
    """Scorecard points with their sign: ``12`` -> ``+12``, ``-5`` -> ``−5``."""
    f = _finite(x)
    if f is None:
        return DASH
    v = int(round(f))
    return f"+{v}" if v >= 0 else f"{MINUS}{-v}"


def seconds(x: float | None) -> str:
    """A duration in seconds, minutes when long."""
    f = _finite(x)
    if f is None:
        return DASH
    return f"{f:.1f} s" if f < 120 else f"{f / 60:.1f} min"


def duration(x: float | None) -> str:
    """A short duration (a fit): ``0.0123`` -> ``12 ms``, ``2.5`` -> ``2.5 s``."""
    f = _finite(x)
    if f is None:
        return DASH
    if f < 0.001:
        return "<1 ms"
    if f < 1:
        return f"{1000 * f:.0f} ms"
    return seconds(f)


def value(v: Any, kind: str | None = None) -> str:
    """Any JSON value as one line of text: a row's value of a feature of ``kind`` (integers
    whole, numbers exact), lists joined, mappings as ``key: value``."""
    if v is None:
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if kind in ("integer", "binary", "ordinal") and v.is_integer():
            return str(int(v))
        return sig(v, 6) if kind is None else exact(v)
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    if isinstance(v, Mapping):
        return "; ".join(f"{k}: {value(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ", ".join(value(x) for x in v)
    return str(v)


def row(label: Any) -> str:
    """A row's identity as an error names it: ``17`` (a row number of a file, a position),
    ``'A-17'`` (a value of the id column, or any other label)."""
    if hasattr(label, "item") and not isinstance(label, (str, bytes)):
        label = label.item()  # numpy scalars
    return str(label) if isinstance(label, int) and not isinstance(label, bool) else repr(label)


def _minus(s: str) -> str:
    return MINUS + s[1:] if s.startswith("-") else s


# ---------------------------------------------------------------------- argument names
#: Parameters whose command-line flag is not ``--`` + the name with dashes.
_FLAGS = {"out_dir": "--out", "local_rows": "--explain-rows", "random_state": "--seed", "concepts": "--concept",
          "groups": "--group"}
_AT_CLI: contextvars.ContextVar[bool] = contextvars.ContextVar("pellucid_at_cli", default=False)


@contextlib.contextmanager
def command_line() -> Iterator[None]:
    """Within this block, :func:`arg` names arguments as command-line flags (the CLI's run)."""
    token = _AT_CLI.set(True)
    try:
        yield
    finally:
        _AT_CLI.reset(token)


def at_cli() -> bool:
    """Whether the run was started by the ``pellucid`` command (see :func:`command_line`)."""
    return _AT_CLI.get()


def arg(param: str) -> str:
    """How the user typed the argument ``param``: ``--target`` at the command line (within
    :func:`command_line`), ``target=`` in Python."""
    if _AT_CLI.get():
        return _FLAGS.get(param, "--" + param.replace("_", "-"))
    return f"{param}="


# ---------------------------------------------------------------------- parameter constraints
# After scikit-learn's ``_parameter_constraints`` / ``validate_params``: a class (or function)
# says once, as data, what each parameter may be; one function checks and words the error.
# A constraint is an :class:`Interval`, :class:`Options`, a type, ``None``, one of the strings
# ``"boolean"``, ``"random_state"``, ``"no_validation"``, or a callable ``value -> bool`` (its
# docstring's first line says what it accepts).


class Interval:
    """Numbers of ``kind`` (``numbers.Integral`` or ``numbers.Real``) between ``left`` and
    ``right`` (``None``: unbounded), ``closed`` at ``"left"``, ``"right"``, ``"both"`` or
    ``"neither"``. Booleans are never numbers here, and a real must be finite."""

    def __init__(self, kind: type, left: float | None, right: float | None, *, closed: str = "both") -> None:
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(f"closed must be 'left', 'right', 'both' or 'neither', got {closed!r}")
        self.kind, self.left, self.right, self.closed = kind, left, right, closed

    def accepts(self, v: Any) -> bool:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, self.kind):
            return False
        if not isinstance(v, numbers.Integral) and not math.isfinite(float(v)):
            return False
        if self.left is not None and (v < self.left or (v == self.left and self.closed in ("right", "neither"))):
            return False
        if self.right is not None and (v > self.right or (v == self.right and self.closed in ("left", "neither"))):
            return False
        return True

    def __str__(self) -> str:
        what = "a whole number" if issubclass(self.kind, numbers.Integral) else "a number"
        lo, hi = self.left, self.right
        lo_in, hi_in = self.closed in ("left", "both"), self.closed in ("right", "both")
        if lo is None and hi is None:
            return what if issubclass(self.kind, numbers.Integral) else "a finite number"
        if hi is None:
            return f"{what} of {exact(lo)} or more" if lo_in else f"{what} above {exact(lo)}"
        if lo is None:
            return f"{what} of {exact(hi)} or less" if hi_in else f"{what} below {exact(hi)}"
        if lo_in and hi_in and issubclass(self.kind, numbers.Integral) and hi - lo == 1:
            return f"{exact(lo)} or {exact(hi)}"
        if lo_in and hi_in:
            return f"{what} from {exact(lo)} to {exact(hi)}"
        low = f"of {exact(lo)} or more" if lo_in else f"above {exact(lo)}"
        high = f"at most {exact(hi)}" if hi_in else f"below {exact(hi)}"
        return f"{what} {low} and {high}"

    def __repr__(self) -> str:
        return f"Interval({self.kind.__name__}, {self.left!r}, {self.right!r}, closed={self.closed!r})"


class Options:
    """One of a few values (compared with ``==``; booleans are not taken for 0 and 1)."""

    def __init__(self, options: Any) -> None:
        self.options = tuple(options)

    def accepts(self, v: Any) -> bool:
        if isinstance(v, (bool, np.bool_)) and not any(isinstance(o, bool) for o in self.options):
            return False
        try:
            return any(bool(v == o) for o in self.options)
        except (TypeError, ValueError):  # an array, or a value that cannot be compared
            return False

    def __str__(self) -> str:
        words = [repr(o) for o in self.options]
        return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"

    def __repr__(self) -> str:
        return f"Options({self.options!r})"


def _accepts(constraint: Any, v: Any) -> bool:
    if constraint is None:
        return v is None
    if isinstance(constraint, (Interval, Options)):
        return constraint.accepts(v)
    if constraint == "boolean":
        return isinstance(v, (bool, np.bool_))
    if constraint == "random_state":
        return v is None or isinstance(v, np.random.RandomState) or Interval(numbers.Integral, 0, 2**32 - 1).accepts(v)
    if constraint == "no_validation":
        return True
    if isinstance(constraint, type):
        return isinstance(v, constraint)
    if callable(constraint):
        return bool(constraint(v))
    raise TypeError(f"unknown parameter constraint {constraint!r}")  # a bug in pellucid, not the user's


def _describe(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, (Interval, Options)):
        return str(constraint)
    if constraint == "boolean":
        return "True or False"
    if constraint == "random_state":
        return "None, a seed (a whole number from 0 to 4294967295) or a numpy RandomState"
    if isinstance(constraint, type):
        return f"a {constraint.__name__}"
    doc = (getattr(constraint, "__doc__", None) or "").strip().splitlines()
    return doc[0].rstrip(".") if doc else getattr(constraint, "__name__", repr(constraint))


def describe_constraints(constraints: Any) -> str:
    """What a list of constraints accepts, in words: ``a whole number of 1 or more or None``."""
    if not isinstance(constraints, (list, tuple)):
        constraints = [constraints]
    words = [_describe(c) for c in constraints if c is not None]
    if None in constraints:
        words.append("None")
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} or {words[-1]}"


def validate_params(owner: str, params: Mapping[str, Any], constraints: Mapping[str, Any]) -> None:
    """Check each of ``params`` that has an entry in ``constraints`` (a list of constraints,
    any of which accepts it).

    Raises
    ------
    ParameterError
        On the first parameter none of whose constraints accepts its value, in one line that
        names ``owner`` (the class or function), the parameter, what it must be and the value:
        ``SkopeRules: max_rules must be a whole number of 1 or more, got 0``.
    """
    from .errors import ParameterError

    for name, v in params.items():
        if name not in constraints:
            continue
        allowed = constraints[name]
        if not isinstance(allowed, (list, tuple)):
            allowed = [allowed]
        if any(_accepts(c, v) for c in allowed):
            continue
        raise ParameterError(f"{owner}: {name} must be {describe_constraints(allowed)}, got {v!r}")


def check_random_state(seed: Any, name: str = "random_state") -> np.random.Generator:
    """A numpy Generator from ``seed``: None (fresh entropy), a whole number of 0 or more, a
    SeedSequence, or a Generator (returned as it is).

    Raises
    ------
    ParameterError
        For anything else.
    """
    from .errors import ParameterError

    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, np.random.SeedSequence) or Interval(numbers.Integral, 0, None).accepts(seed):
        return np.random.default_rng(seed)
    raise ParameterError(
        f"{name} must be None, a whole number of 0 or more, a numpy SeedSequence or Generator, got {seed!r}"
    )


def as_oracle(model: Any, **options: Any) -> Any:
    """``model`` if it is a :class:`pellucid.oracle.Oracle`, else ``Oracle(model, **options)``
    (quiet unless ``verbose`` is given): the one place a model becomes an Oracle."""
    from .oracle import Oracle

    if isinstance(model, Oracle):
        return model
    return Oracle(model, **{"verbose": 0, **options})


# ---------------------------------------------------------------------- plain JSON
def plain(value: Any, *, nonfinite: str = "null", other: Any = str, depth: int | None = None) -> Any:
    """``value`` in the types JSON holds, recursively: mappings (keys as text), lists (from
    tuples, sets and numpy arrays), numpy scalars as Python's, ``None``, booleans, numbers, text.

    ``nonfinite`` says what NaN and infinities become: ``"null"`` (None: report.json has
    no NaN), ``"text"`` (``"nan"``, ``"inf"``, ``"-inf"``, which ``float`` reads back: rule
    exports) or ``"keep"`` (the float itself). ``other`` turns any other object into
    something JSON holds (``str``, ``repr``, ...); ``None`` leaves it as it is. With ``depth``,
    containers nested deeper than ``depth`` levels are given to ``other`` whole (``depth=1``: a
    mapping of parameters whose list or dict values are written as one text each).
    """
    container = isinstance(value, (Mapping, list, tuple, set, frozenset, np.ndarray))
    if container and depth is not None and depth <= 0 and other is not None:
        return other(value)
    kw = {"nonfinite": nonfinite, "other": other, "depth": None if depth is None else depth - 1}
    if isinstance(value, Mapping):
        return {str(k): plain(v, **kw) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v, **kw) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v, **kw) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        if nonfinite == "null":
            return None
        if nonfinite == "text":
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return value
    if value is None or isinstance(value, (bool, int, float, str)) or other is None:
        return value
    return other(value)


def number(v: Any) -> float | None:
    """A finite float, or None (missing, non-numeric, NaN or infinite)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
