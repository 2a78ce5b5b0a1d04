"""Beyond per-feature attributions, for the report: global sensitivity over the schema, concept
tests (TCAV) and what each class responds to, gathered as one JSON-ready dict.

:func:`explain` checks the request with :func:`check_request` right after distilling and calls
:func:`analyse` at the end, when asked (``sensitivity=``, ``concepts=``, ``visualise=``); each part is the plain ``to_dict`` of the module that computes it
(:mod:`.sensitivity`, :mod:`.concepts`, :mod:`.visualisation`), so the report shows the numbers
those functions return and nothing computed twice.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .._validation import plain
from ..errors import ParameterError
from ..oracle import Oracle
from ..schema import Schema
from ._base import find_layer, is_scripted

#: Rows of the reference the class searches start from and rank (more only cost time).
REFERENCE_ROWS = 2000


def check_request(oracle: Oracle, *, concepts: Mapping[str, Any] | None = None, concept_layer: Any = None,
                  concept_target: Any = None) -> Any:
    """The class the analysis follows, once the request is known to be possible: ``concept_target``
    if given, else the last class (the positive one of two); None for a regression.

    Called before the long steps of a run, so that a wrong class, a missing or unknown layer or a
    model without layers stops it at once.

    Raises
    ------
    ParameterError
        ``concept_target`` not a class; concepts for a model that is not a torch network, for a
        regressor, without ``concept_layer`` (the message lists the layers) or with an unknown one.
    """
    label = None
    if oracle.task == "classification":
        classes = list(oracle.classes_)
        if concept_target is not None and concept_target not in classes:
            raise ParameterError(f"concept_target {concept_target!r} is not a class of the model; classes: {classes}")
        label = classes[-1] if concept_target is None else concept_target
    if concepts:
        if oracle.kind != "torch":
            raise ParameterError(f"concept tests (TCAV) need a torch network's layers; this model is {oracle.kind}")
        if label is None:
            raise ParameterError("concept tests (TCAV) test a class; this model is a regressor")
        if concept_layer is None:
            names = [name for name, _ in oracle.model.named_modules() if name]
            raise ParameterError(f"concepts need concept_layer, the layer whose activations hold them; layers: {names}")
        find_layer(oracle.model, concept_layer)  # an unknown name is refused with the layers listed
        if is_scripted(oracle):
            raise ParameterError("concept tests (TCAV) hook the layer named by concept_layer, which a TorchScript "
                                 "module does not allow; pass the eager module (file.py:ATTR) to test concepts")
    return label


def analyse(oracle: Oracle, schema: Schema, reference: pd.DataFrame, observed: pd.DataFrame, label: Any, *,
            sensitivity: bool | int = False, concepts: Mapping[str, Any] | None = None,
            concept_layer: Any = None, concept_repeats: int = 20, visualise: bool = False,
            attributions: Mapping[str, Any] | None = None, random_state: int | None = 0) -> dict[str, Any]:
    """The report's ``analysis``: the parts asked for, each ``None`` when not.

    Parameters
    ----------
    oracle : Oracle
    schema : Schema
        The features and their ranges: the domain of the sensitivity analysis and of the
        class search.
    reference : DataFrame
        The user's raw rows (features only): where the class search starts and the top rows
        are ranked (a sample of :data:`REFERENCE_ROWS`).
    observed : DataFrame
        Canonical observed training rows: the random counterexamples of the concept tests and,
        among them, the target rows (those the network gives ``label``).
    label : class label or None
        The class of the concept tests and the sensitivity analysis, from :func:`check_request`.
    sensitivity : bool or int
        Sobol' indices (``n`` = 1024, or the int given) and Morris effects (20 trajectories) of
        the analysed output over the schema's ranges, compared with the attribution methods'
        global importances.
    concepts : mapping, optional
        Concept name -> rule text (``"debt_ratio > 0.6"``) or example rows, tested together with
        :func:`~pellucid.attribution.tcav_many` at ``concept_layer`` (a torch network only).
    visualise : bool
        For each class, the in-schema row that maximises it and the reference rows that do most.
    attributions : dict, optional
        The report's attribution summary, whose global importances the sensitivity is compared with.
    """
    out: dict[str, Any] = {"output": None if label is None else str(label), "sensitivity": None, "concepts": None,
                           "classes": None}
    if sensitivity:
        out["sensitivity"] = _sensitivity(oracle, schema, label, 1024 if sensitivity is True else int(sensitivity),
                                          attributions, random_state)
    if concepts:
        out["concepts"] = _concepts(oracle, concepts, concept_layer, label, observed, concept_repeats, random_state)
    if visualise and oracle.task == "classification":
        out["classes"] = _classes(oracle, schema, reference, random_state)
    return out


def _sensitivity(oracle: Oracle, schema: Schema, label: Any, n: int, attributions: Mapping[str, Any] | None,
                 random_state: int | None) -> dict[str, Any]:
    from .sensitivity import compare_importance, morris, sobol

    s = sobol(oracle, schema, n=n, output=label, random_state=random_state)
    m = morris(oracle, schema, r=20, output=label, random_state=random_state)
    rankings: dict[str, pd.Series] = {"Morris mu*": m.mu_star}
    for method in (attributions or {}).get("methods") or []:
        imp = method.get("importance") or {}
        if imp:
            rankings[str(method.get("label") or method["name"])] = pd.Series(
                {k: 0.0 if v is None else float(v) for k, v in imp.items()})
    comparison = compare_importance(s, rankings, strict=False) if s.total.notna().all() else None
    return {
        "order": [str(f) for f in s.total.sort_values(ascending=False, na_position="last").index],
        "sobol": s.to_dict(),
        "morris": m.to_dict(),
        "comparison": None if comparison is None else plain(comparison.reset_index().to_dict("records")),
    }


def _concepts(oracle: Oracle, concepts: Mapping[str, Any], layer: Any, label: Any, observed: pd.DataFrame,
              repeats: int, random_state: int | None) -> dict[str, Any]:
    from .concepts import tcav_many

    predicted = np.asarray(oracle.predict(observed), dtype=object)
    target_rows = observed[predicted == label]
    if len(target_rows) < 2:
        raise ParameterError(f"the network gives class {label!r} to {len(target_rows)} observed training rows; "
                             "TCAV needs rows of the class it tests")
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = tcav_many(oracle, layer, dict(concepts), observed, target_rows, label, repeats=repeats,
                        random_state=random_state)
    return {
        "layer": str(next(iter(res.values())).layer),
        "target": str(label),
        "repeats": int(repeats),
        "n_target": int(len(target_rows)),
        "seconds": time.perf_counter() - t0,
        "results": [r.to_dict() for r in res.values()],
        "warnings": [str(w.message) for w in caught],
    }


def _classes(oracle: Oracle, schema: Schema, reference: pd.DataFrame, random_state: int | None) -> list[dict[str, Any]]:
    from .visualisation import maximise_row, top_rows

    ref = reference[schema.names]
    if len(ref) > REFERENCE_ROWS:
        ref = ref.sample(REFERENCE_ROWS, random_state=random_state)
    out = []
    for cls in oracle.classes_:
        best = maximise_row(oracle, cls, schema, reference=ref, random_state=random_state)
        top = top_rows(oracle, ref, target=cls, k=3)
        out.append({"class": str(cls), "maximised": best.to_dict(),
                    "top": {**top.to_dict(), "labels": [str(i) for i in top.rows.index]}})
    return out
