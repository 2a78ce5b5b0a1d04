"""What every local explainer (:data:`~pellucid.surrogates.LOCAL_EXPLAINERS`: LIME, anchors)
shares: one check of the rows to explain and of the reference table they are explained against.

A local explainer is called as ``explainer(model, rows, reference, ...)``; both tables are
checked here, once, before any query, with errors that name the column and the rows.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..errors import SchemaError
from ..schema import Schema

__all__ = ["check_local_rows"]


def check_local_rows(rows: Any, reference: Any, *, what: str = "rows to explain"
                     ) -> tuple[Schema, pd.DataFrame, pd.DataFrame]:
    """Validate the rows to explain against the reference table.

    Parameters
    ----------
    rows : DataFrame
        Raw rows to explain: no column the reference lacks, every column it has.
    reference : DataFrame
        Raw rows standing for the population (typically the training table); its schema
        (``Schema.from_frame``) is the one both tables are checked against.
    what : str
        How errors name the rows ("rows to explain", "row", ...).

    Returns
    -------
    schema : Schema
        Of the reference.
    reference, rows : DataFrame
        In canonical form (``Schema.validate``; a column of the rows may be all missing), with
        their own index.

    Raises
    ------
    SchemaError
        A table that is not a DataFrame (a Series for one row included), an empty table,
        columns of the rows that the reference lacks or the other way round (named), or a
        category of the rows the reference never shows (named, with the rows' index labels).
    """
    if not isinstance(reference, pd.DataFrame):
        raise SchemaError(f"reference must be a pandas DataFrame of raw rows; got {type(reference).__name__}")
    if isinstance(rows, pd.Series):
        raise SchemaError(f"the {what} must be a DataFrame; for one row use frame.iloc[[i]] (a Series has no columns)")
    if not isinstance(rows, pd.DataFrame):
        raise SchemaError(f"the {what} must be a pandas DataFrame of raw rows; got {type(rows).__name__}")
    if len(reference) == 0:
        raise SchemaError("the reference is empty (0 rows)")
    schema = Schema.from_frame(reference)
    names = set(schema.names)
    unknown = [str(c) for c in rows.columns if str(c) not in names]
    if unknown:
        many = len(unknown) > 1
        raise SchemaError(f"the {what} {'have' if many else 'has'} column{'s' if many else ''} {unknown} that the "
                          f"reference does not have (it has {schema.names[:20]}); drop {'them' if many else 'it'} or "
                          "add them to the reference")
    if len(rows) == 0:
        raise SchemaError(f"the {what} are empty (0 rows)")
    present = set(map(str, rows.columns))
    absent = [n for n in schema.names if n not in present]
    if absent:
        raise SchemaError(f"the {what} {'is' if len(rows) == 1 else 'are'} missing column{'s' if len(absent) > 1 else ''}"
                          f" {absent} that the reference has (they have {sorted(present)[:20]})")
    cols = {str(c): c for c in rows.columns}
    for f in schema:  # unseen categories: name the rows, not just the count
        if f.is_categorical:
            v = rows[cols[f.name]]
            v = v.astype(object) if isinstance(v.dtype, pd.CategoricalDtype) else v
            known = list(f.categories or ())
            bad = v.notna() & ~v.isin(known)
            if bad.any():
                where = list(rows.index[bad.to_numpy()][:10])
                raise SchemaError(
                    f"column {f.name!r} of the {what} holds categor{'ies' if bad.sum() > 1 else 'y'} never "
                    f"seen in the reference: {[str(x) for x in pd.unique(v[bad])[:10]]} in {int(bad.sum())} row(s) "
                    f"(index {where}{'...' if bad.sum() > 10 else ''}); known: {[str(c) for c in known[:20]]}")
    ref = schema.validate(reference, what="reference")
    canon = schema.validate(rows, what=what, allow_empty_columns=True)
    return schema, ref, canon
